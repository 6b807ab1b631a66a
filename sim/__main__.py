"""Command line: `python -m sim serve ...` runs the MEXC emulator, `python -m sim telegram ...` the fake Bot API.

Why argparse sub-commands: other processes (supervisor/demo.py, perf/, the tests) start these
commands and read one JSON ready line; `--help` at each level is the reference for every flag
and its default, so the flags are described here once, next to where they are parsed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sim.faults import parse_fault_spec
from sim.rest_account import DEFAULT_API_KEY, DEFAULT_API_SECRET
from sim.ws_server import Limits

_LIMITS = Limits()


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    """Every `serve` flag, with its help and default."""
    net = p.add_argument_group("listening")
    net.add_argument("--host", default="127.0.0.1", help="address to listen on; loopback only unless --allow-non-loopback (default: %(default)s)")
    net.add_argument("--port", type=int, default=0, help="TCP port for /ws, /api/v3 and /_sim; 0 picks a free one (default: %(default)s)")
    net.add_argument("--allow-non-loopback", action="store_true", help="allow a non-loopback --host, refused with exit 2 otherwise (default: off)")
    market = p.add_argument_group("market")
    market.add_argument("--pairs", type=int, default=200, help="number of generated pairs (default: %(default)s)")
    market.add_argument("--seed", type=int, default=1, help="seed; the whole market is deterministic from it (default: %(default)s)")
    market.add_argument("--rate", type=float, default=None, help="target total frames/s, deal and depth windows together (default: 3 x pairs)")
    market.add_argument("--scenario", default=None, metavar="FILE", help="scenario YAML: scripted pumps, spikes, quiet pairs, listings; see sim/scenarios/README.md (default: none)")
    market.add_argument("--replay", default=None, metavar="DUMP", help="Parquet tick dump (ts_ms, symbol, price, qty, side) served instead of the generated market (default: none)")
    market.add_argument("--speed", type=float, default=1.0, help="exchange time per wall time; 5 shows the same market 5x faster (default: %(default)s)")
    rest = p.add_argument_group("REST")
    rest.add_argument("--api-key", default=DEFAULT_API_KEY, help="API key the signed endpoints accept (default: %(default)s)")
    rest.add_argument("--api-secret", default=DEFAULT_API_SECRET, help="HMAC-SHA256 secret the signed endpoints check (default: %(default)s)")
    rest.add_argument("--usdt-balance", type=float, default=1000.0, help="the test account's free USDT (default: %(default)s)")
    rest.add_argument("--weight-budget", type=int, default=500, help="REST weight per client and endpoint per 10 s before 429 (default: %(default)s)")
    rest.add_argument("--ban-base-s", type=float, default=120.0, help="length of the first 418 ban in seconds; doubles per repeat (default: %(default)s)")
    ws = p.add_argument_group("WebSocket limits (MEXC's)")
    ws.add_argument("--no-sub-timeout-s", type=float, default=_LIMITS.no_sub_timeout_s, help="close a connection with no subscription after this many seconds (default: %(default)s)")
    ws.add_argument("--no-data-timeout-s", type=float, default=_LIMITS.no_data_timeout_s, help="close a connection with no data pushed and no client PING after this many seconds (default: %(default)s)")
    ws.add_argument("--max-conn-life-s", type=float, default=_LIMITS.max_conn_life_s, help="close any connection after this many seconds (default: %(default)s)")
    ws.add_argument("--max-client-msg-per-s", type=int, default=_LIMITS.max_client_msg_per_s, help="close a client that sends more messages than this within one second (default: %(default)s)")
    ws.add_argument("--max-streams-per-conn", type=int, default=_LIMITS.max_streams_per_conn, help="live subscriptions per connection; later ones are acked but never fed (default: %(default)s)")
    fut = p.add_argument_group("futures (contract API: /edge, /api/v1/contract, /_sim/futures)")
    fut.add_argument("--futures-contracts", type=int, default=50, help="number of perpetual contracts; 0 turns the futures API off (default: %(default)s)")
    fut.add_argument("--futures-scenario", default=None, metavar="FILE",
                     help="YAML with a futures_anomalies list (the --scenario file may hold one too); see sim/scenarios/README.md (default: none)")
    fut.add_argument("--futures-ping-timeout-s", type=float, default=60.0,
                     help="close a futures WebSocket this many seconds after the client's last ping (default: %(default)s)")
    faults = p.add_argument_group("faults")
    faults.add_argument("--fault", action="append", default=[], metavar="SPEC",
                        help='fault injected at start, JSON \'{"kind":"drop_every","seconds":60}\' or kind:key=value,... '
                             "e.g. drop_every:seconds=60; repeatable; kinds in sim/README.md (default: none)")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: `serve` with every flag, `telegram` handed to its own parser."""
    parser = argparse.ArgumentParser(prog="python -m sim", description="MEXC spot V3 emulator and fake Telegram Bot API, on loopback.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{serve,telegram}")
    serve = commands.add_parser(
        "serve",
        help="run the MEXC emulator (WebSocket, REST, /_sim control); prints one JSON ready line, exits 0 on SIGTERM/SIGINT",
        description="MEXC spot V3 and contract (futures) emulator on loopback. Prints {\"ws\": ..., \"rest\": ..., "
        "\"futures_ws\": ..., \"futures_rest\": ...} when ready (futures keys only with --futures-contracts > 0); runs until "
        "SIGTERM/SIGINT (exit 0); bad options or a refused host exit 2 with a message on stderr.",
    )
    _serve_arguments(serve)
    commands.add_parser(
        "telegram",
        add_help=False,  # its own parser (sim/fake_telegram.py) answers --help with --port and --token
        help="run the fake Telegram Bot API; prints {\"base_url\": ..., \"control\": ...} (see python -m sim telegram --help)",
    )
    return parser


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
        allow_non_loopback=args.allow_non_loopback, futures_contracts=args.futures_contracts,
        futures_scenario=args.futures_scenario, futures_ping_timeout_s=args.futures_ping_timeout_s,
    )  # fmt: skip
    faults = [parse_fault_spec(spec) for spec in args.fault]
    emulator = Emulator(options)

    async def inject_faults() -> None:
        for fault in faults:
            await emulator.inject(fault.pop("kind"), **fault)

    return await serve_until_stopped(emulator, inject_faults)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["telegram"]:  # everything after the word belongs to the fake Bot API's own parser
        from sim.fake_telegram import main as telegram_main

        return telegram_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_serve(args))
    except (ValueError, TypeError, OSError) as exc:
        print(f"sim: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
