"""Push frames: MEXC's PushDataV3ApiWrapper bytes for each channel, from the generated classes.

Why apart from the connections (sim/ws_server.py): encoding is a pure function of the market and
the update, and other consumers want the emulator's exact bytes without a server, e.g. the
lock-step replay (replay/lockstep.py) and the engine tests feed them straight into ShardEngine.
sendTime is always the end of the 100 ms window (field 6), never createTime, as MEXC sends it.
"""

from __future__ import annotations

from typing import Any, Protocol

from sim.channels import WS_KLINE_INTERVALS
from sim.proto import mexc_push_pb2 as pb
from sim.updates import PairUpdate

_HOUR8_MS = 8 * 3_600_000
Level = tuple[float, float]


class FrameMarket(Protocol):
    """What encoding reads from a market (the generated Market and ReplayMarket both have it)."""

    def fmt_price(self, symbol: str, value: float) -> str: ...
    def fmt_qty(self, symbol: str, value: float) -> str: ...
    def depth_snapshot(self, symbol: str, limit: int) -> tuple[int, list[Level], list[Level]]: ...
    def klines(self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int) -> list[list]: ...


def _wrapper(channel: str, symbol: str, send_time: int) -> pb.PushDataV3ApiWrapper:
    return pb.PushDataV3ApiWrapper(channel=channel, symbol=symbol, sendTime=send_time)


class FrameEncoder:
    """Encodes one market's pushes; prices and quantities as strings at the pair's precision."""

    def __init__(self, market: FrameMarket) -> None:
        self.market = market

    def deals(self, channel: str, update: PairUpdate) -> bytes:
        """An aggre.deals push (body 314) with the update's trades; no trades makes a clock push."""
        w = _wrapper(channel, update.symbol, update.window_end_ms)
        body = w.publicAggreDeals
        body.eventType = channel.rsplit("@", 1)[0]
        fp, fq, sym = self.market.fmt_price, self.market.fmt_qty, update.symbol
        for n, t in enumerate(update.trades):
            # MEXC's tradeId is an opaque string (mexc-api.md §1.5); unique per pair is all we promise.
            body.deals.add(price=fp(sym, t.price), quantity=fq(sym, t.qty), tradeType=t.side, time=t.time_ms,
                           tradeId=f"{update.window_end_ms}{n:04d}X0")  # fmt: skip
        return w.SerializeToString()

    def depth(self, channel: str, update: PairUpdate) -> bytes:
        """An aggre.depth push (body 313): the update's level changes and their version range."""
        assert update.depth is not None
        w = _wrapper(channel, update.symbol, update.window_end_ms)
        body = w.publicAggreDepths
        fp, fq, sym = self.market.fmt_price, self.market.fmt_qty, update.symbol
        for p, q in update.depth.asks:
            body.asks.add(price=fp(sym, p), quantity=fq(sym, q))
        for p, q in update.depth.bids:
            body.bids.add(price=fp(sym, p), quantity=fq(sym, q))
        body.eventType = channel.rsplit("@", 1)[0]
        body.fromVersion = str(update.depth.from_version)
        body.toVersion = str(update.depth.to_version)
        return w.SerializeToString()

    def book_ticker(self, channel: str, symbol: str, bbo: tuple[float, float, float, float], send_time: int) -> bytes:
        """An aggre.bookTicker push (body 315): best bid/ask and the depth stream's version."""
        bid, bq, ask, aq = bbo
        w = _wrapper(channel, symbol, send_time)
        fp, fq = self.market.fmt_price, self.market.fmt_qty
        b = w.publicAggreBookTicker
        b.bidPrice, b.bidQuantity, b.askPrice, b.askQuantity = fp(symbol, bid), fq(symbol, bq), fp(symbol, ask), fq(symbol, aq)
        b.version = str(self.market.depth_snapshot(symbol, 0)[0])
        return w.SerializeToString()

    def limit_depth(self, channel: str, symbol: str, version: int, bids: list[Level], asks: list[Level], send_time: int) -> bytes:
        """A limit.depth push (body 303): the top N levels; version on the diff-depth axis."""
        w = _wrapper(channel, symbol, send_time)
        fp, fq = self.market.fmt_price, self.market.fmt_qty
        body = w.publicLimitDepths
        for p, q in asks:
            body.asks.add(price=fp(symbol, p), quantity=fq(symbol, q))
        for p, q in bids:
            body.bids.add(price=fp(symbol, p), quantity=fq(symbol, q))
        body.eventType = "spot@public.limit.depth.v3.api.pb"
        body.version = str(version)
        return w.SerializeToString()

    def kline(self, channel: str, symbol: str, interval: str, now_ms: int) -> bytes | None:
        """A kline push (body 308) of the current candle; window times in seconds. None before listing."""
        row = self._kline_row(symbol, interval)
        if row is None:
            return None
        w = _wrapper(channel, symbol, now_ms)
        k = w.publicSpotKline
        k.interval, k.windowStart, k.windowEnd = interval, row[0] // 1000, (row[6] + 1) // 1000
        k.openingPrice, k.highestPrice, k.lowestPrice, k.closingPrice, k.volume, k.amount = row[1], row[2], row[3], row[4], row[5], row[7]
        return w.SerializeToString()

    def _kline_row(self, symbol: str, interval: str) -> list | None:
        if interval != "Hour8":
            rows = self.market.klines(symbol, WS_KLINE_INTERVALS[interval], None, None, 1)
            return rows[-1] if rows else None
        # MEXC's WS has Hour8 but REST has no 8h: two 4h candles inside the same 8 h bucket make one.
        rows = self.market.klines(symbol, "4h", None, None, 2)
        if not rows:
            return None
        last = rows[-1]
        start = last[0] - last[0] % _HOUR8_MS
        parts = [r for r in rows if r[0] >= start]
        fp = self.market.fmt_price
        first = parts[0]
        return [start, first[1], fp(symbol, max(float(r[2]) for r in parts)), fp(symbol, min(float(r[3]) for r in parts)), last[4],
                self.market.fmt_qty(symbol, sum(float(r[5]) for r in parts)), start + _HOUR8_MS - 1, f"{sum(float(r[7]) for r in parts):.4f}"]  # fmt: skip

    def mini_ticker(self, symbol: str, price: float, ticker_24h: dict[str, Any]) -> pb.PublicMiniTickerV3Api:
        """One miniTickers item: the live price and a (possibly cached) ticker/24hr answer."""
        open_ = float(ticker_24h["openPrice"]) or price
        rate = f"{(price - open_) / open_:.4f}" if open_ else "0"
        fp = self.market.fmt_price
        return pb.PublicMiniTickerV3Api(
            symbol=symbol, price=fp(symbol, price), rate=rate, zonedRate=rate, high=fp(symbol, max(price, float(ticker_24h["highPrice"]))),
            low=fp(symbol, min(price, float(ticker_24h["lowPrice"]))), volume=ticker_24h["quoteVolume"], quantity=ticker_24h["volume"],
        )  # fmt: skip

    @staticmethod
    def mini_tickers(channel: str, items: list[pb.PublicMiniTickerV3Api], send_time: int) -> bytes:
        """A miniTickers push (body 310): no symbol field, every item in one frame."""
        w = pb.PushDataV3ApiWrapper(channel=channel, sendTime=send_time)
        w.publicMiniTickers.items.extend(items)
        return w.SerializeToString()
