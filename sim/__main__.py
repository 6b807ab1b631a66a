"""`python -m sim serve ...` runs the MEXC emulator; `python -m sim telegram ...` the fake Bot API."""

from __future__ import annotations

import argparse
import asyncio
import sys

from sim.faults import parse_fault_spec
from sim.rest_server import DEFAULT_API_KEY, DEFAULT_API_SECRET
from sim.ws_server import Limits


def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim serve", description="MEXC spot V3 emulator on loopback.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--pairs", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", type=float, default=None, help="target total frames/s (default 3 x pairs)")
    p.add_argument("--scenario", default=None, help="scenario YAML (see sim/scenarios/README.md)")
    p.add_argument("--replay", default=None, help="Parquet tick dump to replay instead of generating")
    p.add_argument("--speed", type=float, default=1.0, help="exchange time per wall time (1 = real time)")
    p.add_argument("--api-key", default=DEFAULT_API_KEY)
    p.add_argument("--api-secret", default=DEFAULT_API_SECRET)
    p.add_argument("--usdt-balance", type=float, default=1000.0)
    p.add_argument("--weight-budget", type=int, default=500, help="REST weight per endpoint per 10 s")
    p.add_argument("--ban-base-s", type=float, default=120.0, help="first 418 ban length; doubles per repeat")
    p.add_argument("--no-sub-timeout-s", type=float, default=30.0)
    p.add_argument("--no-data-timeout-s", type=float, default=60.0)
    p.add_argument("--max-conn-life-s", type=float, default=86_400.0)
    p.add_argument("--max-client-msg-per-s", type=int, default=100)
    p.add_argument("--max-streams-per-conn", type=int, default=30)
    p.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help='fault at start: JSON \'{"kind":"drop_every","seconds":60}\' or drop_every:seconds=60 (repeatable)')  # fmt: skip
    p.add_argument("--allow-non-loopback", action="store_true")
    return p


async def _serve(args: argparse.Namespace) -> int:
    from sim.server import Emulator, EmulatorOptions, serve_until_stopped

    limits = Limits(
        max_streams_per_conn=args.max_streams_per_conn,
        no_sub_timeout_s=args.no_sub_timeout_s,
        no_data_timeout_s=args.no_data_timeout_s,
        max_client_msg_per_s=args.max_client_msg_per_s,
        max_conn_life_s=args.max_conn_life_s,
    )
    options = EmulatorOptions(
        host=args.host, port=args.port, pairs=args.pairs, seed=args.seed, rate=args.rate, scenario=args.scenario,
        replay=args.replay, speed=args.speed, api_key=args.api_key, api_secret=args.api_secret,
        usdt_balance=args.usdt_balance, weight_budget=args.weight_budget, ban_base_s=args.ban_base_s, limits=limits,
        allow_non_loopback=args.allow_non_loopback,
    )  # fmt: skip
    faults = [parse_fault_spec(spec) for spec in args.fault]
    emulator = Emulator(options)

    async def inject_faults() -> None:
        for fault in faults:
            await emulator.inject(fault.pop("kind"), **fault)

    return await serve_until_stopped(emulator, inject_faults)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m sim {serve,telegram} [options]   (see python -m sim serve --help)")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        args = _serve_parser().parse_args(rest)
        try:
            return asyncio.run(_serve(args))
        except (ValueError, TypeError, OSError) as exc:
            print(f"sim: {exc}", file=sys.stderr)
            return 2
    if command == "telegram":
        from sim.fake_telegram import main as telegram_main

        return telegram_main(rest)
    print(f"sim: unknown command {command!r} (serve, telegram)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
