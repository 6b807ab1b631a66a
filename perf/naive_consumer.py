"""The baseline bench_load compares with: the feed consumed the way most people would build it.

One asyncio process, the `websockets` client, protobuf `ParseFromString` + `MessageToDict` (what
ccxt-style and hummingbot-style connectors do), a dict order book per pair and one-second bars in
Python lists. It does the same work per frame as a shard (apply deals to the bar, apply depth diffs
to the book, close bars and compute the Alpha-1 volume/price features once a second) so CPU per
1,000 frames compares like for like. It is deliberately ordinary, not deliberately slow.

Run by perf/bench_load.py as a subprocess: prints one JSON line when subscribed and, on SIGTERM,
one JSON line with its counters.
Usage: python -m perf.naive_consumer --ws URL --rest URL [--pairs N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
import urllib.request
from collections import deque
from typing import Any

import websockets
from google.protobuf.json_format import MessageToDict

from sim.proto import mexc_push_pb2 as pb


class NaivePair:
    """Book as two dicts and 1 s bars kept for 6 h: the textbook layout."""

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.bar_second = 0
        self.bar: dict[str, float] = {"vol": 0.0, "quote": 0.0, "last": 0.0, "buy": 0.0}
        self.bars: deque[dict[str, float]] = deque(maxlen=6 * 3600)

    def on_deals(self, deals: list[dict[str, Any]]) -> None:
        for deal in deals:
            second = int(deal["time"]) // 1000
            if second != self.bar_second:
                self.close_bar(second)
            price, qty = float(deal["price"]), float(deal["quantity"])
            self.bar["vol"] += qty
            self.bar["quote"] += price * qty
            self.bar["last"] = price
            if deal.get("tradeType") == 1:
                self.bar["buy"] += qty

    def on_depth(self, body: dict[str, Any]) -> None:
        for side, book in (("bids", self.bids), ("asks", self.asks)):
            for level in body.get(side, []):
                price, qty = float(level["price"]), float(level["quantity"])
                if qty == 0.0:
                    book.pop(price, None)
                else:
                    book[price] = qty

    def close_bar(self, second: int) -> None:
        self.bars.append(self.bar)
        self.bar = {"vol": 0.0, "quote": 0.0, "last": self.bar["last"], "buy": 0.0}
        self.bar_second = second
        self.features()

    def features(self) -> dict[str, float]:
        last5 = list(self.bars)[-300:]
        vol5 = sum(b["vol"] for b in last5)
        quote5 = sum(b["quote"] for b in last5)
        minutes = [sum(b["vol"] for b in last5[i : i + 60]) for i in range(0, len(last5), 60)]
        best_bid = max(self.bids) if self.bids else 0.0
        best_ask = min(self.asks) if self.asks else 0.0
        mid = (best_bid + best_ask) / 2 if best_bid and best_ask else 0.0
        band_bid = sum(q for p, q in self.bids.items() if mid and p >= mid * 0.999)
        band_ask = sum(q for p, q in self.asks.items() if mid and p <= mid * 1.001)
        vwap = quote5 / vol5 if vol5 else 0.0
        return {
            "vc": max(minutes) / vol5 if vol5 else 0.0,
            "pm": (self.bar["last"] - vwap) / vwap if vwap else 0.0,
            "obi": (band_bid - band_ask) / (band_bid + band_ask) if band_bid + band_ask else 0.0,
            "spread": (best_ask - best_bid) / mid if mid else 0.0,
        }


async def consume(ws_url: str, rest_url: str, pairs: int, streams_per_conn: int) -> dict[str, Any]:
    info = json.loads(urllib.request.urlopen(rest_url + "/api/v3/exchangeInfo", timeout=30).read())
    symbols = [s["symbol"] for s in info["symbols"] if s["status"] == "1" and s["symbol"].endswith("USDT")][:pairs]
    channels = [
        c
        for s in symbols
        for c in (f"spot@public.aggre.deals.v3.api.pb@100ms@{s}", f"spot@public.aggre.depth.v3.api.pb@100ms@{s}")
    ]
    groups = [channels[i : i + streams_per_conn] for i in range(0, len(channels), streams_per_conn)]
    state: dict[str, NaivePair] = {s: NaivePair() for s in symbols}
    counters: dict[str, float] = {"frames": 0, "errors": 0, "links": len(groups), "delay_ms_max": 0.0}
    stop = asyncio.Event()

    def handle(raw: bytes) -> None:
        msg = pb.PushDataV3ApiWrapper()
        msg.ParseFromString(raw)
        data = MessageToDict(msg)
        # How far behind the feed this consumer is: now minus the frame's sendTime (same machine clock).
        delay = time.time() * 1000 - int(data.get("sendTime", 0) or 0)
        if delay > counters["delay_ms_max"] and data.get("sendTime"):
            counters["delay_ms_max"] = delay
        pair = state.get(data.get("symbol", ""))
        if pair is None:
            return
        if "publicAggreDeals" in data:
            pair.on_deals(data["publicAggreDeals"].get("deals", []))
        elif "publicAggreDepths" in data:
            pair.on_depth(data["publicAggreDepths"])

    async def link(group: list[str]) -> None:
        async with websockets.connect(ws_url, max_size=2**22, ping_interval=None) as ws:
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": group}))
            while not stop.is_set():
                try:
                    msg = await asyncio.wait_for(ws.recv(), 1.0)
                except TimeoutError:
                    continue
                if isinstance(msg, bytes):
                    counters["frames"] += 1
                    try:
                        handle(msg)
                    except Exception:  # noqa: BLE001 - a baseline counts, it does not crash
                        counters["errors"] += 1

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def report() -> None:  # SIGUSR1: counters so far (bench_load reads them at the window's edges)
        print(json.dumps({**counters, "at": time.monotonic()}), flush=True)
        counters["delay_ms_max"] = 0.0

    loop.add_signal_handler(signal.SIGUSR1, report)
    tasks = [asyncio.create_task(link(g)) for g in groups]
    print(json.dumps({"ready": True, "links": len(groups), "pairs": len(symbols)}), flush=True)
    await stop.wait()
    await asyncio.gather(*tasks, return_exceptions=True)
    return counters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ws", required=True)
    parser.add_argument("--rest", required=True)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--streams-per-conn", type=int, default=30)
    args = parser.parse_args(argv)
    started = time.monotonic()
    counters = asyncio.run(consume(args.ws, args.rest, args.pairs, args.streams_per_conn))
    counters["seconds"] = time.monotonic() - started
    print(json.dumps(counters), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
