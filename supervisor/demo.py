"""`make demo`: the whole scanner against the built-in MEXC emulator, offline, on 127.0.0.1.

Why the emulator runs faster than real time here: Alpha-1 needs several minutes of a pump
before VC < 0.5 can hold (the volume must be spread over minutes), so at 1x a newcomer would wait
three minutes for the first card. Every feature is driven by exchange time, so running the
market at --speed 5 shows the same signal, just sooner. Pass --speed 1 for real time.

Where the signal goes: with `--telegram` the demo also starts the fake Bot API
(`python -m sim telegram`) on 127.0.0.1 and points the scanner at it with a demo token and one
allowed user, so the card, its Buy/Skip buttons and the commands can be tried from a shell (see
the README). Without it, a TG_TOKEN in the caller's environment is kept (with TG_BASE_URL and
ALLOWED_IDS: the documented way to aim the demo at a Bot API of one's own); with no token at all
the signal is printed to stdout as a JSON line.

What the demo creates it removes: the temporary data directory is deleted when the demo stops,
by Ctrl-C and SIGTERM too, unless the caller chose the directory with --data-dir.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parent.parent
# Not a secret: the fake Bot API accepts only this token, and it never leaves 127.0.0.1.
DEMO_TG_TOKEN = "100000:DEMO-TOKEN-fake-bot-api"
DEMO_USER_ID = 4242


class _Stop(Exception):
    """SIGTERM arrived: unwind through the `finally` blocks like Ctrl-C does."""


def _start(cmd: list[str], what: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start a loopback helper that prints one JSON ready line, and return it with that line.

    The child gets its own process group so a Ctrl-C in the terminal reaches only the demo, which
    then stops the scanner first (it may still be writing) and its helpers after it, in order.
    """
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(5)
        raise SystemExit(f"{what} failed to start (exit code {proc.returncode})")
    return proc, json.loads(line)


def start_emulator(pairs: int, speed: float, scenario: Path, seed: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start `python -m sim serve` and wait for its JSON ready line."""
    cmd = [
        sys.executable, "-m", "sim", "serve", "--host", "127.0.0.1", "--port", "0",
        "--pairs", str(pairs), "--speed", str(speed), "--scenario", str(scenario), "--seed", str(seed),
    ]  # fmt: skip
    return _start(cmd, "emulator")


def start_fake_telegram(port: int, user_id: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start `python -m sim telegram` (the fake Bot API) and wait for its ready line."""
    cmd = [sys.executable, "-m", "sim", "telegram", "--port", str(port), "--token", DEMO_TG_TOKEN, "--user-id", str(user_id)]
    return _start(cmd, "fake Telegram Bot API")


def _stop(proc: subprocess.Popen[str] | None, timeout: float) -> int | None:
    """SIGTERM, wait, then SIGKILL: nothing the demo started outlives it."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supervisor --demo", description="Run the scanner against the emulator.")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--speed", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scenario", type=Path, default=REPO / "sim" / "scenarios" / "demo.yaml")
    parser.add_argument("--data-dir", default=None, help="where the demo's SQLite goes (default: a temp dir, removed on exit)")
    parser.add_argument("--telegram", action="store_true",
                        help="also start the fake Telegram Bot API on 127.0.0.1 and send the cards there")  # fmt: skip
    parser.add_argument("--telegram-port", type=int, default=8081, help="--telegram: the fake Bot API's port (0: any free one)")
    parser.add_argument("--telegram-user", type=int, default=DEMO_USER_ID, help="--telegram: the one allowed Telegram user id")
    args = parser.parse_args(argv)

    stopping = False

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:  # a second SIGTERM must not cut the clean-up short
            stopping = True
            raise _Stop

    signal.signal(signal.SIGTERM, on_sigterm)
    created = None if args.data_dir else tempfile.mkdtemp(prefix="scanner-demo-")
    data_dir = args.data_dir or created
    assert data_dir is not None
    emulator = telegram = scanner = None
    code = 0
    try:
        emulator, ready = start_emulator(args.pairs, args.speed, args.scenario, args.seed)
        env = dict(os.environ)
        env.update(MEXC_WS_URL=ready["ws"], MEXC_REST_URL=ready["rest"], SCANNER_DATA_DIR=data_dir, METRICS_PORT=env.get("METRICS_PORT", "8000"),
                   MEXC_FUTURES_WS_URL=ready["futures_ws"], MEXC_FUTURES_REST_URL=ready["futures_rest"])  # fmt: skip
        if args.telegram:
            telegram, tg = start_fake_telegram(args.telegram_port, args.telegram_user)
            env.update(TG_TOKEN=DEMO_TG_TOKEN, TG_BASE_URL=tg["base_url"], ALLOWED_IDS=str(args.telegram_user))
            where = f"cards go to the fake Bot API {tg['base_url']} (control: {tg['control']}, user {args.telegram_user})"
        elif env.get("TG_TOKEN"):
            where = f"cards go to the Bot API at {env.get('TG_BASE_URL') or 'api.telegram.org'} (TG_TOKEN from the environment)"
        else:
            env.pop("TG_TOKEN", None)  # set but empty: the same as unset
            where = "signals are printed to stdout as JSON lines (--telegram: to a fake Bot API)"
        print(f"# emulator on {ready['ws']} / {ready['rest']}, data in {data_dir}; {where}; Ctrl-C stops", file=sys.stderr, flush=True)
        if args.telegram:  # the README's "The demo with Telegram", with this run's address
            ctl = tg["control"].removeprefix("http://")
            hints = [f"""curl -s {ctl}/inject -d '{{"kind":"message","text":"/status"}}'   # send /status""",
                     f"""curl -s {ctl}/inject -d '{{"kind":"press","button":"Skip"}}'     # press Skip on the newest card""",
                     f"curl -s {ctl}/transcript   # read the chat"]  # fmt: skip
            print("".join(f"#   {h}\n" for h in hints), end="", file=sys.stderr, flush=True)
        scanner = subprocess.Popen([sys.executable, "-m", "supervisor", "--config", str(REPO / "config.demo.yaml")], cwd=REPO, env=env,
                                   start_new_session=True)  # fmt: skip
        code = scanner.wait()
    except (KeyboardInterrupt, _Stop):
        stopping = True
        code = _stop(scanner, 20) or 0
    finally:
        stopping = True
        for proc in (scanner, telegram, emulator):
            _stop(proc, 10)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
