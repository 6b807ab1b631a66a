"""Plain-Python twin of core/engine.pyx: frames in, feature rows out, same rules."""

from __future__ import annotations

from typing import Any

from core.decode import DecodeError
from core.reference.book import GAP, SYNCED, ReferenceBook
from core.reference.decode import BODY_AGGRE_DEALS, BODY_AGGRE_DEPTH, decode_frame
from core.reference.features import compute_row, precheck
from core.reference.windows import ReferenceWindows

DEPTH_BAND_BPS = 3.0
CANDIDATE_PM_MIN = 0.01
CANDIDATE_VOL_MULT = 3.0
CANDIDATE_VSR_MIN = 3.0


class _Pair:
    def __init__(self, pair_id: int, symbol: str) -> None:
        self.pair_id, self.symbol = pair_id, symbol
        self.book, self.windows = ReferenceBook(), ReferenceWindows()
        self.listing_ms, self.last_recv_ns, self.dirty = -1, 0, False
        self.last_deals_send_ms = -1


class ReferenceEngine:
    def __init__(self, candidates: bool = True) -> None:
        self.candidates = candidates
        self.pairs: dict[str, _Pair] = {}
        self.rows: list[dict[str, Any]] = []
        self.exchange_ms = 0
        self.decode_errors = 0
        self.resyncs: list[str] = []

    def add_pair(self, pair_id: int, symbol: str) -> None:
        self.pairs.setdefault(symbol, _Pair(pair_id, symbol))

    def set_listing(self, symbol: str, listing_ms: int) -> None:
        self.pairs[symbol].listing_ms = listing_ms

    def seed_klines(self, symbol: str, rows: list) -> None:
        self.pairs[symbol].windows.seed_klines(rows)

    def apply_snapshot(self, symbol: str, last_id: int, bids: list, asks: list) -> bool:
        return self.pairs[symbol].book.apply_snapshot(last_id, bids, asks) == SYNCED

    def _advance(self, p: _Pair, now_ms: int) -> None:
        if p.windows.advance(now_ms) <= 0:
            return
        bar_end = (now_ms // 1000) * 1000
        if p.book.synced and p.book.bids:
            p.windows.record_bid_depth(bar_end, p.book.size_within(True, DEPTH_BAND_BPS))
        if not p.dirty:
            return
        p.dirty = False
        self.rows.append(compute_row(p.book, p.windows, bar_end, p.listing_ms, p.last_recv_ns, p.pair_id))

    def on_frame(self, data: bytes, recv_ns: int) -> int:
        try:
            f = decode_frame(data)
        except DecodeError:
            self.decode_errors += 1
            return 0
        if f["body"] not in (BODY_AGGRE_DEALS, BODY_AGGRE_DEPTH):
            return 0
        p = self.pairs.get(f["symbol"])
        if p is None:
            return 0
        need = 0
        if f["body"] == BODY_AGGRE_DEALS:
            if 0 <= f["send_time_ms"] <= p.last_deals_send_ms:
                return 0  # a repeated push (overlapping links)
            p.last_deals_send_ms = f["send_time_ms"]
            for price, qty, side, time_ms in f["deals"]:
                self.exchange_ms = max(self.exchange_ms, time_ms)
                self._advance(p, time_ms)
                p.windows.on_trade(price, qty, side, time_ms)
                p.dirty = True
            p.last_recv_ns = recv_ns
            if self.candidates and f["deals"] and precheck(p.windows, CANDIDATE_PM_MIN, CANDIDATE_VOL_MULT, CANDIDATE_VSR_MIN):
                bar_end = (p.windows.bar_sec + 1) * 1000
                self.rows.append(compute_row(p.book, p.windows, bar_end, p.listing_ms, recv_ns, p.pair_id, candidate=True))
        elif p.book.apply_diff(f["from_version"], f["to_version"], f["bids"], f["asks"]) == GAP:
            self.resyncs.append(p.symbol)
            need = 1
        self.exchange_ms = max(self.exchange_ms, f["send_time_ms"])
        if f["send_time_ms"] > 0:
            self._advance(p, f["send_time_ms"])
        return need

    def tick(self) -> None:
        for p in self.pairs.values():
            if p.dirty and self.exchange_ms > 0:
                self._advance(p, self.exchange_ms)
