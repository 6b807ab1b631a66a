"""`python -m sim --help` lists the sub-commands and `python -m sim serve --help` every flag with its help and default."""

from __future__ import annotations

import argparse
import subprocess
import sys

from sim.__main__ import build_parser


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True, timeout=60)


def _serve_parser() -> argparse.ArgumentParser:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices["serve"]


def test_top_level_help_lists_the_sub_commands_with_help() -> None:
    out = _run("--help")
    assert out.returncode == 0, out.stderr
    for command, words in (("serve", "MEXC emulator"), ("telegram", "fake Telegram Bot API")):
        line = next(line for line in out.stdout.splitlines() if line.strip().startswith(command))
        assert words in line


def test_serve_help_lists_every_flag_with_help_and_default() -> None:
    out = _run("serve", "--help")
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())  # argparse wraps lines; compare on single spaces
    flags = [a for a in _serve_parser()._actions if a.option_strings and a.dest != "help"]
    assert len(flags) == 23  # the 20 flags the CLI had before the rewrite, and the futures side's 3
    for action in flags:
        assert action.help and "default" in action.help, action.option_strings
        assert action.option_strings[0] in text
    for expected in ("--pairs PAIRS", "(default: 200)", "(default: 3 x pairs)", "(default: mx0-test-key)", "(default: 30)"):
        assert expected in text


def test_no_command_and_an_unknown_one_exit_2() -> None:
    assert _run().returncode == 2
    bad = _run("bogus")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
