"""One WebSocket to MEXC's contract endpoint: last, fair and index price of every perpetual, books on demand.

Why in venues/ and not shards/: shards are the spot hot path (protobuf frames decoded by Cython
into the ring, core/ imports). This link carries a few JSON text frames per second (push.tickers
every 2 s holds all ~1,200 contracts; a handful of depth.full books), needs nothing of core, and
everything in it is MEXC protocol knowledge: endpoint, ping rule, channel names, ack shapes.
The supervisor (or any process) runs it as a task and hands the callbacks to the detector.

Why aiohttp and not picows/websockets: aiohttp already carries the REST session (ContractRest),
its client WebSocket reads text frames with a receive timeout (the idle timeout for free), and at
this rate the per-frame cost is irrelevant.

Why push.tickers alone is enough for last vs fair: its documented fields include lastPrice,
fairPrice and indexPrice (mexc-api.md §5.1), so one subscription covers every contract. Per-symbol
fair/index channels would need ~2,400 subscriptions against an undocumented per-connection cap.
Books (`sub.depth.full`, top 20) are subscribed only for the symbols set_books() names, capped by
max_subscriptions. Fair and index pushes are still understood (merged with the last known values)
so a caller may subscribe them later without touching the parser.

What the feed promises its caller:
- on_ticker(symbol, t_ms, last, fair, index) for every parsed ticker of a contract in the universe;
- `open_interest[symbol]`: the contract's last holdVol (open interest, contracts; NaN when its rows
  carry none), current when on_ticker is called for it;
- on_book(symbol, t_ms, bids, asks) for every depth.full push (levels (price, contracts), best first);
- on_gap(symbol_or_all, t_ms) when data stops being trustworthy: ALL ("*") when a link that
  delivered data drops (t_ms = the last frame's wall time, so an open episode ends where the data
  ended), a symbol when it leaves the universe (delisted, paused);
- it never raises out of run() for anything the network or the exchange sends; malformed frames,
  error acks and callback errors are counted and logged once per kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aiohttp

from venues.mexc import futures as fx
from venues.mexc.futures_rest import ContractRest, fetch_contracts
from venues.mexc.rest import RestError

log = logging.getLogger("scanner.futures")

ALL = "*"
OnTicker = Callable[[str, int, float, float, float], None]
OnBook = Callable[[str, int, list[fx.Level], list[fx.Level]], None]
OnGap = Callable[[str, int], None]
OnUniverse = Callable[[set[str], set[str]], None]
_BRACKETED = re.compile(r"\[([A-Za-z0-9_]+)\]")
COUNTERS = ("frames", "parse_errors", "row_errors", "tickers", "books", "pongs", "pings", "acks", "error_acks",
            "unknown_channels", "callback_errors", "reconnects", "connects", "idle_timeouts", "gaps",
            "universe_refreshes", "universe_errors", "subscriptions_sent", "internal_errors")  # fmt: skip


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class FuturesFeed:
    """Keeps one contract WebSocket alive and turns its pushes into callbacks.

    ws_url: the contract endpoint (fx.WS_URL, or an emulator's). rest: a ContractRest for the
    universe refresh (None: no refresh, every contract in push.tickers passes). ping_interval_s must
    stay ≤ 20 (the server closes 60 s after the last client ping, even while streaming).
    idle_timeout_s: no frame for that long means a dead link (tickers come every 2 s, pongs every
    ping). Backoff is exponential from backoff_min_s to backoff_max_s with full jitter, reset after a
    link that delivered data.
    """

    def __init__(self, ws_url: str, on_ticker: OnTicker, *, rest: ContractRest | None = None,
                 on_book: OnBook | None = None, on_gap: OnGap | None = None, on_universe: OnUniverse | None = None,
                 quote: str = "USDT", ping_interval_s: float = 15.0, idle_timeout_s: float = 30.0,
                 backoff_min_s: float = 0.5, backoff_max_s: float = 30.0, universe_refresh_s: float = 300.0,
                 universe_retry_s: float = 30.0, connect_timeout_s: float = 15.0, book_limit: int = 20, max_subscriptions: int = 40,
                 clock_ms: Callable[[], int] = _wall_ms, rng: random.Random | None = None) -> None:  # fmt: skip
        if not 0 < ping_interval_s <= 20:
            raise ValueError(f"ping_interval_s {ping_interval_s} must be in (0, 20]: the server drops silent clients")
        if not 0 < backoff_min_s <= backoff_max_s:
            raise ValueError(f"backoff {backoff_min_s}..{backoff_max_s} s is not a range")
        if book_limit not in fx.DEPTH_FULL_LIMITS:
            raise ValueError(f"book_limit {book_limit} is not one of {fx.DEPTH_FULL_LIMITS}")
        self.ws_url = ws_url
        self.rest = rest
        self.on_ticker, self.on_book, self.on_gap, self.on_universe = on_ticker, on_book, on_gap, on_universe
        self.open_interest: dict[str, float] = {}  # symbol -> last holdVol of push.tickers
        self.quote = quote
        self.ping_interval_s = ping_interval_s
        self.idle_timeout_s = idle_timeout_s
        self.backoff_min_s, self.backoff_max_s = backoff_min_s, backoff_max_s
        self.universe_refresh_s, self.universe_retry_s = universe_refresh_s, universe_retry_s
        self.book_limit = book_limit
        self.max_subscriptions = max_subscriptions
        self.clock_ms = clock_ms
        self.connect_timeout_s = connect_timeout_s
        self.rng = rng or random.Random()
        self.counts: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.universe: frozenset[str] | None = None
        self.connected = False
        self._books: set[str] = set()  # wanted book symbols (capped, within the universe)
        self._refused: set[str] = set()  # symbols the exchange said do not exist
        self._prices: dict[str, list[float]] = {}  # symbol → [last, fair, index], to merge single-price pushes
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._session: aiohttp.ClientSession | None = None
        self._stop = asyncio.Event()
        self._logged: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_frame_ms = 0
        self._data_since_gap = False

    # --- public ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, subscribe, read; reconnect with backoff; until stop() (one run per feed). Refreshes the universe beside it."""
        refresher = asyncio.create_task(self._refresh_loop()) if self.rest is not None else None
        self._session = aiohttp.ClientSession()
        delay = self.backoff_min_s
        try:
            while not self._stop.is_set():
                delivered = await self._connect_once()
                if self._stop.is_set():
                    break
                self.counts["reconnects"] += 1
                delay = self.backoff_min_s if delivered else min(delay * 2, self.backoff_max_s)
                pause = self.rng.uniform(self.backoff_min_s, delay)  # full jitter, never below the minimum
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), pause)
        finally:
            if refresher is not None:
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refresher
            await self._session.close()
            self._session = None

    async def stop(self) -> None:
        """End run(): close the link (no gap is reported for a deliberate stop)."""
        self._stop.set()
        self._data_since_gap = False
        if self._ws is not None:
            await self._ws.close()

    def set_books(self, symbols: Iterable[str]) -> None:
        """The symbols whose top-N book the caller wants; the difference is (un)subscribed now if connected.

        Capped at max_subscriptions - 1 (one slot is push.tickers), in sorted order, so what is dropped
        is predictable; symbols outside the universe or refused by the exchange are left out.
        """
        wanted = sorted(
            s for s in set(symbols) if s not in self._refused and (self.universe is None or s in self.universe)
        )
        cap = max(self.max_subscriptions - 1, 0)
        if len(wanted) > cap:
            self._log_once(
                "books-cap", "book symbols over the subscription cap; extra ones dropped", wanted=len(wanted), cap=cap
            )
        new = set(wanted[:cap])
        added, removed = new - self._books, self._books - new
        self._books = new
        if self._ws is not None and not self._ws.closed:
            messages = [fx.depth_full_sub(s, self.book_limit) for s in sorted(added)]
            for s in sorted(removed):
                messages += fx.unsub_messages("depth.full", {"symbol": s})
            task = asyncio.get_running_loop().create_task(self._send_all(self._ws, messages))
            self._tasks.add(task)  # held until done: the loop keeps only weak references to tasks
            task.add_done_callback(self._tasks.discard)

    @property
    def books(self) -> frozenset[str]:
        return frozenset(self._books)

    def metrics(self) -> dict[str, float]:
        """Counters and gauges named for Prometheus (`futures_*`), e.g. for the supervisor's extra collector."""
        out = {f"futures_{name}_total": float(value) for name, value in self.counts.items()}
        out["futures_link_up"] = 1.0 if self.connected else 0.0
        out["futures_universe_size"] = float(len(self.universe or ()))
        out["futures_books_subscribed"] = float(len(self._books))
        age = (self.clock_ms() - self._last_frame_ms) / 1000 if self._last_frame_ms else float("nan")
        out["futures_last_frame_age_seconds"] = age
        return out

    # --- the link --------------------------------------------------------------------------------

    async def _connect_once(self) -> bool:
        """One connection's life; True when it delivered data (the backoff starts over)."""
        assert self._session is not None
        delivered_before = self.counts["tickers"] + self.counts["books"]
        try:
            connecting = self._session.ws_connect(self.ws_url, autoping=True, heartbeat=None, max_msg_size=16 * 2**20,
                                                  timeout=aiohttp.ClientWSTimeout(ws_close=5.0))  # fmt: skip
            async with await asyncio.wait_for(connecting, self.connect_timeout_s) as ws:
                self._ws = ws
                self.connected = True
                self.counts["connects"] += 1
                log.info("futures link up", extra={"url": self.ws_url, "books": len(self._books)})
                pinger = asyncio.create_task(self._ping_loop(ws))
                try:
                    await self._send_all(ws, self._subscriptions())
                    await self._read(ws)
                finally:
                    pinger.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pinger
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._log_once(f"connect-{type(exc).__name__}", "futures link failed", error=str(exc)[:200])
        except Exception:
            # A bug of ours on some frame: logged with its traceback and counted, and the link starts
            # over (with backoff) rather than the scanner losing its futures side for good.
            self.counts["internal_errors"] += 1
            if "internal" not in self._logged:
                self._logged.add("internal")
                log.exception("futures feed failed; reconnecting")
        finally:
            self._ws = None
            self.connected = False
            self._gap_all()
        return self.counts["tickers"] + self.counts["books"] > delivered_before

    def _subscriptions(self) -> list[dict[str, Any]]:
        return [fx.tickers_sub()] + [fx.depth_full_sub(s, self.book_limit) for s in sorted(self._books)]

    async def _send_all(self, ws: aiohttp.ClientWebSocketResponse, messages: list[dict[str, Any]]) -> None:
        try:
            for message in messages:
                await ws.send_str(json.dumps(message, separators=(",", ":")))
                self.counts["subscriptions_sent"] += 1
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            self._log_once("send-failed", "futures send failed (the link is going down)", error=str(exc)[:200])

    async def _ping_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        ping = json.dumps(fx.PING)
        while not ws.closed:
            await asyncio.sleep(self.ping_interval_s)
            try:
                await ws.send_str(ping)
            except (aiohttp.ClientError, ConnectionError, RuntimeError):
                return
            self.counts["pings"] += 1

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            try:
                msg = await ws.receive(timeout=self.idle_timeout_s)
            except TimeoutError:
                self.counts["idle_timeouts"] += 1
                self._log_once("idle", "futures link idle; reconnecting", idle_s=self.idle_timeout_s)
                return
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                self._handle(msg.data)
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                              aiohttp.WSMsgType.ERROR):  # fmt: skip
                if not self._stop.is_set():
                    self._log_once(f"closed-{msg.type.name}", "futures link closed by peer", data=str(msg.data)[:200])
                return

    # --- frames ----------------------------------------------------------------------------------

    def _handle(self, raw: str | bytes) -> None:
        """One frame → counters and callbacks; nothing raised out of here."""
        self.counts["frames"] += 1
        self._last_frame_ms = self.clock_ms()
        try:
            message = fx.parse_message(raw)
            channel = message.channel
            if channel == fx.TICKERS:
                tickers, errors = fx.parse_tickers(message)
                for error in errors:
                    self._row_error(error)
                for ticker in tickers:
                    self._ticker(ticker)
            elif channel == fx.TICKER:
                self._ticker(fx.parse_ticker(message))
            elif channel in (fx.FAIR_PRICE, fx.INDEX_PRICE):
                self._price(fx.parse_price(message), 1 if channel == fx.FAIR_PRICE else 2)
            elif channel == fx.DEPTH_FULL:
                self._book(fx.parse_depth(message))
            elif channel == fx.PONG:
                self.counts["pongs"] += 1
            elif channel.startswith("rs."):
                self._ack(message)
            else:
                self.counts["unknown_channels"] += 1
                self._log_once(f"channel-{channel[:40]}", "futures push on an unexpected channel", channel=channel[:80])
        except ValueError as exc:
            self.counts["parse_errors"] += 1
            kind = str(exc).split(":", 1)[0][:60]
            self._log_once(f"parse-{kind}", "malformed futures frame (counted, skipped)", error=str(exc)[:200])

    def _row_error(self, error: str) -> None:
        self.counts["row_errors"] += 1
        detail = error.split(":", 1)[-1].split()
        self._log_once(
            "row-" + (detail[0][:30] if detail else "?"), "malformed ticker row (skipped)", error=error[:200]
        )

    def _ticker(self, ticker: fx.Ticker) -> None:
        if self.universe is not None and ticker.symbol not in self.universe:
            return
        self._prices[ticker.symbol] = [ticker.last, ticker.fair, ticker.index]
        self.open_interest[ticker.symbol] = ticker.hold_vol
        self._emit_ticker(ticker.symbol, ticker.t_ms)

    def _price(self, price: fx.Price, slot: int) -> None:
        values = self._prices.get(price.symbol)
        if values is None or (self.universe is not None and price.symbol not in self.universe):
            return  # nothing to merge with yet: the next push.tickers brings all three
        values[slot] = price.price
        self._emit_ticker(price.symbol, price.t_ms)

    def _emit_ticker(self, symbol: str, t_ms: int) -> None:
        last, fair, index = self._prices[symbol]
        self.counts["tickers"] += 1
        self._data_since_gap = True
        try:
            self.on_ticker(symbol, t_ms, last, fair, index)
        except Exception:
            self._callback_error("on_ticker")

    def _book(self, depth: fx.Depth) -> None:
        if depth.symbol not in self._books:
            return  # a late push after unsubscribing
        self.counts["books"] += 1
        self._data_since_gap = True
        if self.on_book is not None:
            try:
                self.on_book(depth.symbol, depth.t_ms, depth.bids, depth.asks)
            except Exception:
                self._callback_error("on_book")

    def _ack(self, message: fx.Message) -> None:
        if message.channel != fx.ERROR and fx.ack_ok(message):
            self.counts["acks"] += 1
            return
        self.counts["error_acks"] += 1
        text = fx.error_text(message)
        refused = {s for s in _BRACKETED.findall(text) if s in self._books}
        if refused and "exist" in text.lower():
            # The ack names no symbol, but this error does: stop asking for a book that does not exist.
            self._refused |= refused
            self._books -= refused
        self._log_once(f"ack-{message.channel[:30]}-{_BRACKETED.sub('[…]', text)[:60]}", "futures error ack",
                       channel=message.channel[:40], text=text)  # fmt: skip

    def _callback_error(self, name: str) -> None:
        self.counts["callback_errors"] += 1
        if name not in self._logged:
            self._logged.add(name)
            log.exception("futures callback failed (counted; the link goes on)", extra={"callback": name})

    def _gap_all(self) -> None:
        if not self._data_since_gap or self._stop.is_set():
            return  # nothing delivered since the last gap, or a deliberate stop (not a gap in the data)
        self._data_since_gap = False
        self._gap(ALL, self._last_frame_ms or self.clock_ms())

    def _gap(self, symbol: str, t_ms: int) -> None:
        self.counts["gaps"] += 1
        if self.on_gap is not None:
            try:
                self.on_gap(symbol, t_ms)
            except Exception:
                self._callback_error("on_gap")

    def _log_once(self, kind: str, what: str, /, **extra: Any) -> None:
        if kind in self._logged:
            return
        self._logged.add(kind)
        log.warning(what, extra={"kind": kind, **extra})

    # --- universe --------------------------------------------------------------------------------

    async def _refresh_loop(self) -> None:
        while True:
            wait = self.universe_refresh_s if await self.refresh_universe() else self.universe_retry_s
            await asyncio.sleep(wait)

    async def refresh_universe(self, fetch: Callable[[], Awaitable[list[str]]] | None = None) -> bool:
        """Fetch the active perpetuals; new ones pass from now on, dropped ones get a gap and lose their book."""
        rest = self.rest
        if fetch is None:
            if rest is None:
                raise ValueError("refresh_universe needs a ContractRest or a fetch function")

            async def fetch() -> list[str]:
                assert rest is not None
                return await fetch_contracts(rest, self.quote)

        try:
            symbols = set(await fetch())
        except (RestError, ValueError) as exc:
            self.counts["universe_errors"] += 1
            self._log_once("universe", "futures universe refresh failed; keeping the last one", error=str(exc)[:200])
            return False
        if not symbols:
            self.counts["universe_errors"] += 1
            self._log_once("universe-empty", "futures universe came back empty; keeping the last one")
            return False
        self._logged.discard("universe")
        self.counts["universe_refreshes"] += 1
        before = set(self.universe) if self.universe is not None else set(self._prices)
        added, removed = symbols - before, before - symbols
        self.universe = frozenset(symbols)
        now = self.clock_ms()
        for symbol in sorted(removed):
            if self._prices.pop(symbol, None) is not None:
                self._gap(symbol, now)
        self._refused -= added  # a relisted contract may be asked for again
        if removed & self._books:
            self.set_books(self._books)
        if added or removed:
            log.info(
                "futures universe changed", extra={"added": len(added), "removed": len(removed), "size": len(symbols)}
            )
            if self.on_universe is not None:
                try:
                    self.on_universe(added, removed)
                except Exception:
                    self._callback_error("on_universe")
        return True
