"""The baseline perf/bench_futures.py compares with: the contract feed consumed the plain way.

One asyncio process, the `websockets` client and the standard `json` module, a dict per contract
(last, fair, index, a deque of recent last prices) and the four strategies' conditions written out
in Python on every ticker entry — what a first version of the original futures detector does. It
subscribes to exactly what the service's futures child subscribes to (`sub.tickers`, plus the same
books, by default none: the service books only contracts near strategy 4's ratio), so CPU per
ticker entry compares like for like. It also times `json.loads` alone, which is how the bench
decides whether the standard library's JSON is the cost on this path.

Run by perf/bench_futures.py as a subprocess: prints one JSON line when subscribed and, on
SIGUSR1, one JSON line with its counters.
Usage: python -m perf.naive_futures --ws URL [--books SYMBOL,...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections import deque
from typing import Any

import websockets

LOOKBACK_S = 60.0  # strategy 3's baseline window, the longest look-back of the four


class NaiveContract:
    """Prices of one contract and its recent last prices: the textbook layout."""

    def __init__(self) -> None:
        self.last = self.fair = self.index = 0.0
        self.history: deque[tuple[float, float, float]] = deque()  # (t_s, last, fair)

    def update(self, t_s: float, last: float, fair: float, index: float) -> list[int]:
        """Store one ticker and return the strategies whose condition holds (defaults of issue #17)."""
        self.last, self.fair, self.index = last, fair, index
        self.history.append((t_s, last, fair))
        while self.history and self.history[0][0] < t_s - LOOKBACK_S:
            self.history.popleft()
        if fair <= 0:
            return []
        ratio = last / fair
        hits = []
        if ratio >= 1.5 and last - fair >= 0.0001 and last >= 0.01:
            hits.append(1)
        ago = [p for t, p, _ in self.history if t <= t_s - 5.0]
        if ratio >= 1.3 and ago and ago[-1] > 0 and last / ago[-1] >= 1.2:
            hits.append(2)
        lasts = [p for _, p, _ in self.history]
        fairs = [f for _, _, f in self.history]
        base = sum(lasts) / len(lasts)
        if ratio >= 1.2 and base > 0 and last / base >= 1.5 and min(fairs) > 0 and (max(fairs) - min(fairs)) / min(fairs) <= 0.05:
            hits.append(3)
        return hits


async def consume(ws_url: str, books: list[str], ready: dict[str, Any]) -> None:
    state: dict[str, NaiveContract] = {}
    counters: dict[str, float] = {"frames": 0, "tickers": 0, "books": 0, "hits": 0, "json_s": 0.0}

    def report(*_: Any) -> None:
        print(json.dumps(counters), flush=True)

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, report)
    async with websockets.connect(ws_url, max_size=2**24, ping_interval=None, open_timeout=60) as ws:
        await ws.send(json.dumps({"method": "sub.tickers", "param": {}}))
        for symbol in books:
            await ws.send(json.dumps({"method": "sub.depth.full", "param": {"symbol": symbol, "limit": 20}}))

        async def ping() -> None:
            while True:
                await asyncio.sleep(15)
                await ws.send(json.dumps({"method": "ping"}))

        pinger = asyncio.create_task(ping())
        print(json.dumps(ready), flush=True)
        try:
            async for raw in ws:
                t0 = time.thread_time()  # CPU time: a preempted parse must not count the wait
                msg = json.loads(raw)
                counters["json_s"] += time.thread_time() - t0
                counters["frames"] += 1
                channel = msg.get("channel", "")
                if channel == "push.tickers":
                    now = time.time()
                    for t in msg.get("data") or []:
                        contract = state.get(t["symbol"])
                        if contract is None:
                            contract = state[t["symbol"]] = NaiveContract()
                        hits = contract.update(now, float(t["lastPrice"]), float(t.get("fairPrice") or 0), float(t.get("indexPrice") or 0))
                        counters["tickers"] += 1
                        counters["hits"] += len(hits)
                elif channel == "push.depth.full":
                    counters["books"] += 1
        finally:
            pinger.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ws", required=True, help="the contract WebSocket (loopback emulator)")
    parser.add_argument("--books", default="", help="comma-separated contracts to also book (20 levels)")
    args = parser.parse_args(argv)
    books = [s for s in args.books.split(",") if s]
    try:
        asyncio.run(consume(args.ws, books, {"ready": True, "books": len(books)}))
    except (KeyboardInterrupt, websockets.ConnectionClosed):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
