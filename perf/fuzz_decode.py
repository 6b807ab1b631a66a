"""Fuzz the frame decoder: random bytes and mutated real frames, compiled vs plain-Python twin.

Every input must give the same outcome in core.decode and core.reference.decode: the same decoded
values, or DecodeError with the same message (what and at which offset). Any other exception, a
mismatch, a crash (the process dies: faulthandler prints where) or a hang (a watchdog kills the
run when one batch takes longer than --hang-seconds) fails the run.

Inputs: a quarter raw random bytes (biased towards protobuf-looking tag bytes), a quarter
well-framed frames with fuzzed decimal and version strings, the rest mutations of a corpus of real
frames — emulator frames plus every body kind built like MEXC's — by bit and
byte flips, truncation, insertion, deletion, duplication, splicing, overlong varints and
inflated lengths. Some inputs are passed as bytearray or memoryview to cover the buffer path.

Usage: python -m perf.fuzz_decode [--inputs 1000000] [--seed 1] [--hang-seconds 60] [--json OUT]
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import random
import sys
import time
from collections import Counter
from typing import Any

from core.decode import DecodeError, FrameDecoder
from core.reference.decode import decode_frame
from perf.bench_core import decode_frames, make_frames
from sim.proto import mexc_push_pb2 as pb

BATCH = 10_000
_INTERESTING = bytes([0x00, 0x01, 0x02, 0x07, 0x08, 0x0A, 0x12, 0x13, 0x1A, 0x22, 0x30, 0x7F, 0x80, 0xD2, 0xDA, 0xFF])


def corpus() -> list[bytes]:
    """Real-looking frames of every kind the decoder reads or skips."""
    frames, _, _ = make_frames(30, 10)
    out = frames[:300]
    for kind, items in (("deals", (1, 5)), ("depth", (1, 20)), ("book_ticker", (1, 1))):
        out += decode_frames(kind, 100, items, seed=11)
    kline = pb.PushDataV3ApiWrapper(channel="spot@public.kline.v3.api.pb@BTCUSDT@Min1", symbol="BTCUSDT", sendTime=1)
    kline.publicSpotKline.interval, kline.publicSpotKline.closingPrice = "Min1", "80535.88"
    mini = pb.PushDataV3ApiWrapper(channel="spot@public.miniTickers.v3.api.pb@UTC+8", sendTime=2)
    mini.publicMiniTickers.items.add(symbol="PEPEUSDT", price="0.000012", rate="0.05")
    limit = pb.PushDataV3ApiWrapper(channel="spot@public.limit.depth.v3.api.pb@BTCUSDT@5", symbol="BTCUSDT", createTime=5)
    limit.publicLimitDepths.bids.add(price="80535.88", quantity="1e-5")
    limit.publicLimitDepths.version = "81721676217"
    return out + [kline.SerializeToString(), mini.SerializeToString(), limit.SerializeToString()]


def _varint(v: int) -> bytes:
    out = bytearray()
    while v > 0x7F:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def mutate(rng: random.Random, frame: bytes, others: list[bytes]) -> bytes:
    data = bytearray(frame)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 5))):
        op = rng.randrange(10)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and data:
            data[min(pos, len(data) - 1)] = rng.choice(_INTERESTING) if rng.random() < 0.5 else rng.randrange(256)
        elif op == 2:
            del data[pos:]
        elif op == 3:
            data[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 4:
            del data[pos : pos + rng.randint(1, 16)]
        elif op == 5 and data:
            a = rng.randrange(len(data))
            data[pos:pos] = data[a : a + rng.randint(1, 32)]
        elif op == 6:
            other = rng.choice(others)
            data = data[:pos] + other[rng.randrange(len(other) + 1) :]
        elif op == 7:  # an overlong or 64-bit-overflowing varint
            data[pos:pos] = b"\xff" * rng.randint(8, 11) + bytes([rng.choice((0x00, 0x01, 0x02, 0x7F))])
        elif op == 8:  # a length far past the end of the message
            data[pos:pos] = _varint(rng.randrange(1, 64) << 3 | 2) + _varint(rng.choice((len(data), 2**31, 2**63)))
        else:  # a decimal or version character changed, or a run of digits added (long/overflowing values)
            digits = [i for i, b in enumerate(data) if 0x2E <= b <= 0x39]
            if digits and rng.random() < 0.5:
                data[rng.choice(digits)] = rng.choice(b"eE+-.x \x00/9")
            elif digits:
                at = rng.choice(digits)
                data[at:at] = bytes(rng.choice(b"0123456789") for _ in range(rng.randint(1, 70)))
    return bytes(data)


def _text(rng: random.Random) -> str:
    """A price/quantity/version string: mostly valid, sometimes long, odd or garbage."""
    r = rng.random()
    if r < 0.55:
        return f"{rng.uniform(0, 10 ** rng.randint(-8, 9)):.{rng.randint(0, 12)}f}"
    if r < 0.75:
        return str(rng.randrange(10 ** rng.randint(1, 25)))
    if r < 0.87:
        return f"{rng.randint(1, 10**6)}e{rng.randint(-330, 330)}"
    if r < 0.95:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(15, 70))) + rng.choice(["", ".5", ".", "e-3"])
    return "".join(rng.choice("0123456789.-+eE x_") for _ in range(rng.randint(0, 12)))


def structured(rng: random.Random) -> bytes:
    """A well-framed frame whose strings are fuzzed: reaches the decimal and version parsers."""
    w = pb.PushDataV3ApiWrapper(channel="spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT", symbol="BTCUSDT", sendTime=rng.randrange(2**63))
    kind = rng.randrange(4)
    if kind == 0:
        for _ in range(rng.randint(1, 5)):
            w.publicAggreDeals.deals.add(price=_text(rng), quantity=_text(rng), tradeType=rng.randint(-3, 3), time=rng.randrange(-(2**63), 2**63))
    elif kind == 1:
        body = w.publicAggreDepths
        for _ in range(rng.randint(1, 10)):
            rng.choice((body.bids, body.asks)).add(price=_text(rng), quantity=_text(rng))
        body.fromVersion, body.toVersion = _text(rng), _text(rng)
    elif kind == 2:
        t = w.publicAggreBookTicker
        t.bidPrice, t.bidQuantity, t.askPrice, t.askQuantity, t.version = (_text(rng) for _ in range(5))
    else:
        w.publicLimitDepths.asks.add(price=_text(rng), quantity=_text(rng))
        w.publicLimitDepths.version = _text(rng)
    return w.SerializeToString()


def random_bytes(rng: random.Random) -> bytes:
    n = rng.randint(0, 96)
    if rng.random() < 0.5:
        return rng.randbytes(n)
    return bytes(rng.choice(_INTERESTING) if rng.random() < 0.6 else rng.randrange(256) for _ in range(n))


def outcome(fn: Any, data: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(data)
    except DecodeError as exc:
        return "DecodeError", str(exc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hang-seconds", type=float, default=60.0, help="watchdog per batch of 10,000 inputs")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    faulthandler.enable()
    rng = random.Random(args.seed)
    seeds = corpus()
    decoder = FrameDecoder()

    def compiled(data: Any) -> dict[str, Any]:
        decoder.decode(data)
        return decoder.to_dict()

    kinds: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    mismatches: list[str] = []
    worst = 0.0
    start = time.perf_counter()
    for i in range(args.inputs):
        if i % BATCH == 0:
            faulthandler.dump_traceback_later(args.hang_seconds, exit=True)
        if i % 4 == 0:
            data = random_bytes(rng)
        elif i % 4 == 1:
            data = structured(rng)
        else:
            data = mutate(rng, rng.choice(seeds), seeds)
        wrapped: Any = data if i % 8 else (bytearray(data) if i % 16 else memoryview(data))
        t0 = time.perf_counter()
        mine = outcome(compiled, wrapped)
        worst = max(worst, time.perf_counter() - t0)
        twin = outcome(decode_frame, data)
        if mine != twin:
            mismatches.append(data.hex())
            print(f"MISMATCH {data.hex()}\n  compiled: {mine}\n  twin:     {twin}", file=sys.stderr)
        if mine[0] == "ok":
            kinds[str(mine[1]["body"])] += 1
        else:
            errors[mine[1].split(" at offset")[0]] += 1
    faulthandler.cancel_dump_traceback_later()
    elapsed = time.perf_counter() - start
    decoded = sum(kinds.values())
    result = {"inputs": args.inputs, "seed": args.seed, "corpus_frames": len(seeds), "decoded": decoded,
              "decoded_by_body": dict(kinds.most_common()), "decode_errors": sum(errors.values()),
              "errors_by_kind": dict(errors.most_common()), "mismatches": len(mismatches), "mismatch_inputs": mismatches[:20],
              "crashes": 0, "hangs": 0, "slowest_decode_s": worst, "elapsed_s": elapsed}  # fmt: skip
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text)
    print(f"\n{'outcome':<58}{'inputs':>10}")
    for name, n in [*((f"decoded, body {k}", v) for k, v in kinds.most_common()), *errors.most_common()]:
        print(f"{name:<58}{n:>10}")
    print(f"\n{args.inputs} inputs in {elapsed:.0f} s: {decoded} decoded, {result['decode_errors']} DecodeError, "
          f"{len(mismatches)} mismatches vs the twin, no crash, no hang, slowest decode {worst * 1e6:.0f} µs")  # fmt: skip
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
