"""Long fuzz runs of the text/JSON parsers: config loader, /cfg set_value, depth/kline/scout REST
parsers and callback_data validation. Each target either returns or raises its one documented
error; anything else, or a mutation of the config passed to set_value, fails the run.

Usage: python -m perf.fuzz_parsers [--inputs 200000] [--seed 1] [--json OUT]
Prints a JSON summary and a table (inputs, errors-as-documented, failures, seconds per target).
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from common.config import ConfigError, config_from_mapping, set_value
from common.signal import is_valid_signal_id
from venues.mexc.market import parse_exchange_info, parse_levels, parse_seed, parse_tickers, parse_update_id
from venues.mexc.rest import RestError

_ATOMS: list[Any] = [None, True, False, 0, -1, 10**400, -(10**400), 1e308, float("nan"), float("inf"), "", "NaN", "inf", "1e400",
                     "<html>502</html>", "${TG_TOKEN}", "${NOPE}", "${X:-3}", "0x1f", "1_0", "é", "١", "\x00", "buy:", "BTCUSDT"]  # fmt: skip
_KEYS = ["mexc", "scanner", "ws", "telegram", "trading", "metrics", "logging", "storage", "scout", "bids", "asks", "lastUpdateId",
         "symbols", "symbol", "status", "quoteVolume", "data", "prob_threshold", "live", "port", "allowed_ids", 1, None, True]  # fmt: skip


def _value(rng: random.Random, depth: int = 0) -> Any:
    r = rng.random()
    if depth > 3 or r < 0.5:
        return (
            rng.choice(_ATOMS)
            if rng.random() < 0.7
            else "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(8)))
        )
    if r < 0.75:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {rng.choice(_KEYS): _value(rng, depth + 1) for _ in range(rng.randrange(5))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=200_000, help="inputs per target")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the summary here")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    env = {"TG_TOKEN": "1:x", "X": ""}
    base = config_from_mapping({}, environ=env)
    frozen = copy.deepcopy(base)
    dotted = [f"{s}.{k}" for s, keys in base.to_public_dict().items() for k in keys]

    def cfg_set() -> None:
        key = rng.choice(dotted) if rng.random() < 0.8 else str(_value(rng))
        set_value(base, key, str(_value(rng)))

    def callback() -> None:
        data = "".join(rng.choice("ABC019-:\n١é ") for _ in range(rng.randrange(64)))
        if is_valid_signal_id(data) and not data.isascii():
            raise AssertionError(f"non-ASCII id accepted: {data!r}")

    targets: dict[str, tuple[Callable[[], Any], tuple[type[BaseException], ...]]] = {
        "config_from_mapping": (lambda: config_from_mapping(_value(rng), environ=env), (ConfigError,)),
        "cfg_set_value": (cfg_set, (ConfigError,)),
        "depth_snapshot": (lambda: (parse_levels(_value(rng), "bids"), parse_update_id(_value(rng))), (ValueError,)),
        "kline_seed": (lambda: parse_seed(_value(rng), _value(rng)), (ValueError,)),
        "scout_exchange_info": (lambda: parse_exchange_info(_value(rng), _value(rng)), (RestError,)),
        "scout_tickers": (lambda: parse_tickers(_value(rng)), (RestError,)),
        "callback_data": (callback, ()),
    }
    results: dict[str, dict[str, Any]] = {}
    failed = False
    for name, (fn, expected) in targets.items():
        start = time.perf_counter()
        refused = failures = 0
        first_failure = ""
        for _ in range(args.inputs):
            try:
                fn()
            except expected:
                refused += 1
            except Exception as exc:  # noqa: BLE001 - any other exception is the finding
                failures += 1
                first_failure = first_failure or f"{type(exc).__name__}: {str(exc)[:120]}"
        results[name] = {"inputs": args.inputs, "refused": refused, "failures": failures, "seconds": round(time.perf_counter() - start, 2),
                         "first_failure": first_failure}  # fmt: skip
        failed = failed or failures > 0
    if base != frozen:
        failed = True
        results["cfg_set_value"]["first_failure"] = "set_value mutated the config it was given"
    summary = {"seed": args.seed, "inputs_per_target": args.inputs, "ok": not failed, "targets": results}
    print(json.dumps(summary))
    print(f"{'target':<22}{'inputs':>10}{'refused':>10}{'failures':>10}{'s':>8}")
    for name, r in results.items():
        print(f"{name:<22}{r['inputs']:>10}{r['refused']:>10}{r['failures']:>10}{r['seconds']:>8}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
