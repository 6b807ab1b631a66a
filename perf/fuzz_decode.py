"""Fuzz the frame decoder: random bytes and mutated real frames, compiled vs plain-Python twin.

Every input must either decode to the same values in both or raise DecodeError in both; no crash,
no hang, no other exception. Usage: python -m perf.fuzz_decode [--inputs 1000000] [--seed 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

from core.decode import DecodeError, FrameDecoder
from core.reference.decode import decode_frame
from perf.bench_core import make_frames


def mutate(rng: random.Random, frame: bytes) -> bytes:
    data = bytearray(frame)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        if op == 0 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif op == 1 and data:
            del data[rng.randrange(len(data)) :]
        elif op == 2:
            pos = rng.randrange(len(data) + 1)
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3 and len(data) > 2:
            a = rng.randrange(len(data))
            b = rng.randrange(a, len(data))
            data[a:b] = data[a:b][::-1]
        else:
            data[rng.randrange(len(data) + 1) : 0] = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"
    return bytes(data)


def outcome(fn, data: bytes):  # type: ignore[no-untyped-def]
    try:
        return fn(data)
    except DecodeError:
        return "DecodeError"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    corpus, _, _ = make_frames(50, 20)
    decoder = FrameDecoder()

    def fast(data: bytes) -> dict:
        decoder.decode(data)
        return decoder.to_dict()

    start = time.perf_counter()
    errors = mismatches = 0
    worst = 0.0
    for i in range(args.inputs):
        if i % 4 == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
        else:
            data = mutate(rng, rng.choice(corpus))
        t0 = time.perf_counter()
        mine = outcome(fast, data)
        worst = max(worst, time.perf_counter() - t0)
        errors += mine == "DecodeError"
        if mine != outcome(decode_frame, data):
            mismatches += 1
            print("MISMATCH", data.hex(), file=sys.stderr)
    elapsed = time.perf_counter() - start
    result = {"inputs": args.inputs, "seed": args.seed, "decode_errors": errors, "decoded": args.inputs - errors, "mismatches": mismatches,
              "crashes": 0, "slowest_decode_s": worst, "elapsed_s": elapsed}  # fmt: skip
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    print(f"\n{args.inputs} inputs: {errors} DecodeError, {args.inputs - errors} decoded, {mismatches} mismatches vs reference, "
          f"slowest {worst * 1e6:.0f} µs, {elapsed:.0f} s")  # fmt: skip
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
