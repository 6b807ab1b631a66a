"""`make demo`: the whole scanner against the built-in MEXC emulator, offline, on 127.0.0.1.

Why the emulator runs faster than real time here: Alpha-1 needs several minutes of a pump
before VC < 0.5 can hold (the volume must be spread over minutes), so at 1x a newcomer would wait
three minutes for the first card. Every feature is driven by exchange time, so running the
market at --speed 5 shows the same signal, just sooner. Pass --speed 1 for real time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def start_emulator(pairs: int, speed: float, scenario: Path, seed: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start `python -m sim serve` and wait for its JSON ready line."""
    cmd = [
        sys.executable, "-m", "sim", "serve", "--host", "127.0.0.1", "--port", "0",
        "--pairs", str(pairs), "--speed", str(speed), "--scenario", str(scenario), "--seed", str(seed),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(5)
        raise SystemExit(f"emulator failed to start (exit code {proc.returncode})")
    return proc, json.loads(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supervisor.demo", description="Run the scanner against the emulator.")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--speed", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scenario", type=Path, default=REPO / "sim" / "scenarios" / "demo.yaml")
    parser.add_argument("--data-dir", default=None, help="where the demo's SQLite goes (default: a temp dir)")
    args = parser.parse_args(argv)

    emulator, ready = start_emulator(args.pairs, args.speed, args.scenario, args.seed)
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="scanner-demo-")
    env = dict(os.environ)
    env.update(
        MEXC_WS_URL=ready["ws"],
        MEXC_REST_URL=ready["rest"],
        SCANNER_DATA_DIR=data_dir,
        METRICS_PORT=env.get("METRICS_PORT", "8000"),
    )
    # The demo prints signals to stdout; a Telegram token in the caller's shell must not leak into it.
    env.pop("TG_TOKEN", None)
    print(f"# emulator on {ready['ws']} / {ready['rest']}, data in {data_dir}; Ctrl-C stops", file=sys.stderr, flush=True)
    scanner = subprocess.Popen([sys.executable, "-m", "supervisor", "--config", str(REPO / "config.demo.yaml")], cwd=REPO, env=env)
    try:
        return scanner.wait()
    except KeyboardInterrupt:
        scanner.send_signal(signal.SIGTERM)
        return scanner.wait(15)
    finally:
        emulator.send_signal(signal.SIGTERM)
        try:
            emulator.wait(10)
        except subprocess.TimeoutExpired:
            emulator.kill()


if __name__ == "__main__":
    sys.exit(main())
