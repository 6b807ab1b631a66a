"""The futures (contract) side of the MEXC venue: strict parsers, the REST envelope, and the feed
against a small fake contract endpoint on 127.0.0.1 (acks, pushes, garbage, drops, pings, delistings).

Why an in-test fake and not sim/: the emulator's futures side is being built in parallel; these
tests pin the client to the documented protocol (mexc-api.md §5) and nothing else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from hypothesis import given, settings
from hypothesis import strategies as st

from venues.mexc import futures as fx
from venues.mexc.futures_feed import ALL, FuturesFeed
from venues.mexc.futures_rest import (
    ContractRest,
    active_symbols,
    fetch_contracts,
    fetch_depth,
    fetch_tickers,
    parse_contracts,
    unwrap,
)
from venues.mexc.rest import RestError

T0 = 1_790_000_000_000


def _contract(
    symbol: str, state: int = 0, quote: str = "USDT", settle: str = "USDT", future_type: int = 1
) -> dict[str, Any]:
    return {"symbol": symbol, "baseCoin": symbol.split("_")[0], "quoteCoin": quote, "settleCoin": settle, "state": state,
            "futureType": future_type, "apiAllowed": True, "priceUnit": 0.0001, "contractSize": 1}  # fmt: skip


def _row(symbol: str, last: float, fair: float, index: float, t: int = T0) -> dict[str, Any]:
    return {"symbol": symbol, "lastPrice": last, "fairPrice": fair, "indexPrice": index, "timestamp": t, "volume24": 1}


def _tickers(*rows: dict[str, Any]) -> str:
    return json.dumps({"channel": "push.tickers", "data": list(rows), "ts": T0})


# --- parsers ---------------------------------------------------------------------------------------


def test_messages_follow_the_documented_shapes() -> None:
    assert fx.tickers_sub() == {"method": "sub.tickers", "param": {}, "gzip": False}
    assert fx.depth_full_sub("BTC_USDT") == {
        "method": "sub.depth.full",
        "param": {"symbol": "BTC_USDT", "limit": 20},
        "gzip": False,
    }
    assert [m["method"] for m in fx.unsub_messages("depth.full", {"symbol": "BTC_USDT"})] == [
        "unsub.depth.full",
        "usub.depth.full",
    ]
    assert fx.unsub_messages("ticker", {"symbol": "X"}) == [{"method": "unsub.ticker", "param": {"symbol": "X"}}]
    assert fx.PING == {"method": "ping"}
    with pytest.raises(ValueError):
        fx.depth_full_sub("BTC_USDT", 50)


def test_pushes_parse_into_typed_records() -> None:
    tickers, errors = fx.parse_tickers(fx.parse_message(_tickers(_row("BTC_USDT", 100.5, 100.0, 99.9), {"symbol": "NEW_USDT",
                                       "lastPrice": 0, "fairPrice": 1, "indexPrice": 1, "timestamp": T0})))  # fmt: skip
    assert tickers == [fx.Ticker("BTC_USDT", T0, 100.5, 100.0, 99.9)]
    assert errors == ["push.tickers NEW_USDT: lastPrice 0.0 is not a positive price"]
    no_time = fx.parse_message(
        json.dumps({"channel": "push.tickers", "data": [{**_row("A_USDT", 1, 1, 1), "timestamp": None}], "ts": 7})
    )
    assert fx.parse_tickers(no_time)[0][0].t_ms == 7  # the frame's ts when the row has none
    one = fx.parse_message(
        json.dumps({"channel": "push.ticker", "data": {**_row("BTC_USDT", 1, 2, 3), "bid1": 1}, "symbol": "BTC_USDT"})
    )
    assert fx.parse_ticker(one) == fx.Ticker("BTC_USDT", T0, 1.0, 2.0, 3.0)
    fair = fx.parse_message(
        json.dumps({"channel": "push.fair.price", "data": {"symbol": "BTC_USDT", "price": 64000.5}, "ts": T0})
    )
    assert fx.parse_price(fair) == fx.Price("BTC_USDT", T0, 64000.5)
    depth = {"channel": "push.depth.full", "symbol": "BTC_USDT", "ts": T0,
             "data": {"asks": [[101.0, 5, 1], [102.0, 7, 2]], "bids": [[100.0, 3, 1]], "version": 42}}  # fmt: skip
    book = fx.parse_depth(fx.parse_message(json.dumps(depth)))
    assert (book.symbol, book.t_ms, book.version, book.asks, book.bids, book.full) == ("BTC_USDT", T0, 42, [(101.0, 5.0), (102.0, 7.0)],
                                                                                        [(100.0, 3.0)], True)  # fmt: skip
    assert fx.parse_depth(fx.parse_message(json.dumps({**depth, "channel": "push.depth"}))).full is False
    assert fx.parse_pong(fx.parse_message('{"channel":"pong","data":1790000000000}')) == T0
    assert fx.parse_message(gzip.compress(_tickers().encode())).channel == "push.tickers"  # a binary frame is inflated
    ack = fx.parse_message('{"channel":"rs.sub.tickers","data":"success","ts":1}')
    assert fx.ack_ok(ack) and not fx.ack_ok(fx.parse_message('{"channel":"rs.sub.depth.full","data":"fail"}'))


@pytest.mark.parametrize(
    "frame, match",
    [
        ("not json{", "not JSON"),
        ('{"data": []}', "no channel"),
        (
            '{"channel":"push.ticker","data":{"symbol":"A_USDT","lastPrice":"NaN","fairPrice":1,"indexPrice":1,"timestamp":1}}',
            "not finite",
        ),
        (
            '{"channel":"push.ticker","data":{"symbol":"A_USDT","lastPrice":-1,"fairPrice":1,"indexPrice":1,"timestamp":1}}',
            "positive",
        ),
        (
            '{"channel":"push.ticker","data":{"symbol":"A_USDT","lastPrice":1,"indexPrice":1,"timestamp":1}}',
            "missing fairPrice",
        ),
        (
            '{"channel":"push.ticker","data":{"symbol":"A_USDT","lastPrice":1,"fairPrice":1e999,"indexPrice":1,"timestamp":1}}',
            "finite",
        ),
        ('{"channel":"push.ticker","data":{"lastPrice":1,"fairPrice":1,"indexPrice":1,"timestamp":1}}', "symbol"),
        (
            '{"channel":"push.ticker","data":{"symbol":"A","lastPrice":1,"fairPrice":1,"indexPrice":1,"timestamp":1.5}}',
            "integer",
        ),
        ('{"channel":"push.fair.price","data":{"symbol":"A_USDT","price":true},"ts":1}', "not a number"),
        (
            '{"channel":"push.depth.full","data":{"asks":[[1,-2,1]],"bids":[],"version":1},"symbol":"A","ts":1}',
            "negative",
        ),
        ('{"channel":"push.depth.full","data":{"asks":[],"bids":[],"version":-1},"symbol":"A","ts":1}', "out of range"),
        ('{"channel":"push.depth.full","data":{"asks":[],"bids":[]},"symbol":"A","ts":1}', "missing version"),
        ('{"channel":"push.tickers","data":{"symbol":"A"},"ts":1}', "not a list"),
    ],
)
def test_malformed_pushes_are_a_value_error_naming_the_field(frame: str, match: str) -> None:
    def parse() -> object:
        message = fx.parse_message(frame)
        return {"push.ticker": fx.parse_ticker, "push.fair.price": fx.parse_price, "push.depth.full": fx.parse_depth,
                "push.tickers": fx.parse_tickers}[message.channel](message)  # fmt: skip

    with pytest.raises(ValueError, match=match):
        parse()


_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**400), max_value=10**400), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.sampled_from(["NaN", "inf", "-1", "1e400", "0.5", "success", "BTC_USDT", "12"]),
)  # fmt: skip
_keys = st.sampled_from(
    ["symbol", "lastPrice", "fairPrice", "indexPrice", "timestamp", "price", "asks", "bids", "version", "ct", "x"]
)
_json = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys | st.text(max_size=4), inner, max_size=6),
                     max_leaves=30)  # fmt: skip
_channels = st.sampled_from(["push.tickers", "push.ticker", "push.fair.price", "push.index.price", "push.depth", "push.depth.full",
                             "pong", "rs.sub.tickers", "rs.error", "push.deal", ""])  # fmt: skip


@settings(max_examples=800, deadline=None)
@given(channel=_channels, data=_json, ts=_scalar, symbol=_scalar)
def test_push_parsers_raise_nothing_but_value_error(channel: str, data: Any, ts: Any, symbol: Any) -> None:
    frame = json.dumps({"channel": channel, "data": data, "ts": ts, "symbol": symbol}, allow_nan=True)
    try:
        message = fx.parse_message(frame)
    except ValueError:
        return
    parsers: list[Callable[[fx.Message], Any]] = [
        fx.parse_tickers,
        fx.parse_ticker,
        fx.parse_price,
        fx.parse_depth,
        fx.parse_pong,
    ]
    for parse in parsers:
        try:
            out = parse(message)
        except ValueError:
            continue
        records = out[0] if isinstance(out, tuple) else [out]
        for record in records:
            if isinstance(record, fx.Ticker):
                assert all(math.isfinite(p) and p > 0 for p in (record.last, record.fair, record.index))
            elif isinstance(record, fx.Depth):
                assert all(
                    math.isfinite(p) and p > 0 and math.isfinite(q) and q >= 0 for p, q in record.bids + record.asks
                )
    fx.ack_ok(message)
    assert isinstance(fx.error_text(message), str)


@settings(max_examples=500, deadline=None)
@given(raw=st.one_of(st.text(max_size=40), st.binary(max_size=40), _json.map(lambda v: json.dumps(v, allow_nan=True))))
def test_any_frame_is_a_message_or_a_value_error(raw: str | bytes) -> None:
    try:
        fx.parse_message(raw)
    except ValueError:
        pass


@settings(max_examples=800, deadline=None)
@given(body=_json)
def test_envelope_and_contract_parsing_raise_nothing_but_rest_error(body: Any) -> None:
    for call in (lambda: unwrap(body, "h", "x"), lambda: parse_contracts(body, "h")):
        try:
            call()
        except RestError:
            pass


def test_envelope_errors_name_the_host_and_the_exchange_code() -> None:
    assert unwrap({"success": True, "code": 0, "data": [1]}, "h", "x") == [1]
    with pytest.raises(
        RestError, match=r"code 1001 from 127\.0\.0\.1:9: contract/detail: Contract doesn't exist"
    ) as info:
        unwrap(
            {"success": False, "code": 1001, "message": "Contract doesn't exist"},
            "127.0.0.1:9",
            "contract/detail",
        )
    assert info.value.code == 1001 and info.value.host == "127.0.0.1:9"
    with pytest.raises(RestError, match="excessive request frequency"):
        unwrap({"success": False, "code": 510}, "h", "x")
    with pytest.raises(RestError, match="not an envelope"):
        unwrap([1, 2], "h", "x")


def test_only_enabled_usdt_perpetuals_make_the_universe() -> None:
    rows = [_contract("BTC_USDT"), _contract("OLD_USDT", state=3), _contract("PAUSED_USDT", state=4), _contract("BTC_USD", settle="BTC", quote="USD"),
            _contract("ETH_USDC", quote="USDC", settle="USDC"), _contract("FUT_USDT", future_type=2), {**_contract("SUS_USDT"), "type": 2},
            {"symbol": "BAD_USDT", "state": "0"}, "garbage", _contract("ETH_USDT")]  # fmt: skip
    assert active_symbols(parse_contracts(rows)) == ["BTC_USDT", "ETH_USDT"]


# --- a fake contract endpoint on 127.0.0.1 -------------------------------------------------------------


class FakeContractHost:
    """REST (detail, ticker, depth) and the /edge WebSocket, scripted by the test.

    Answers ping with pong, sub.x with rs.sub.x "success" (rs.error for NOPE_USDT), records what each
    connection sent; push() sends to the live connection, drop() closes it, mute makes it go silent.
    """

    def __init__(self) -> None:
        self.contracts = [
            _contract("BTC_USDT"),
            _contract("ETH_USDT"),
            _contract("OLD_USDT", state=3),
            _contract("BTC_USD", "0", "USD", "BTC"),
        ]
        self.contracts[-1]["state"] = 0
        self.connections: list[list[dict[str, Any]]] = []
        self.ws: web.WebSocketResponse | None = None
        self.mute = False
        self.rest_calls: list[str] = []
        self.url = ""

    def sent(self, method: str, connection: int = -1) -> list[dict[str, Any]]:
        return [m for m in self.connections[connection] if m.get("method") == method] if self.connections else []

    async def push(self, frame: str | bytes) -> None:
        assert self.ws is not None
        await (self.ws.send_bytes(frame) if isinstance(frame, bytes) else self.ws.send_str(frame))

    async def drop(self) -> None:
        assert self.ws is not None
        await self.ws.close()

    async def _edge(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.ws, received, mute = ws, [], self.mute
        self.connections.append(received)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            body = json.loads(msg.data)
            received.append(body)
            method = body.get("method", "")
            if mute:
                continue
            if method == "ping":
                await ws.send_str(json.dumps({"channel": "pong", "data": int(time.time() * 1000)}))
            elif method.startswith("sub."):
                if body.get("param", {}).get("symbol") == "NOPE_USDT":
                    await ws.send_str('{"channel":"rs.error","data":"Contract [NOPE_USDT] not exists"}')
                else:
                    await ws.send_str(json.dumps({"channel": "rs." + method, "data": "success", "ts": T0}))
        return ws

    async def _detail(self, request: web.Request) -> web.Response:
        self.rest_calls.append("detail")
        return web.json_response({"success": True, "code": 0, "data": self.contracts})

    async def _ticker(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"success": True, "code": 0, "data": [{**_row("BTC_USDT", 10, 9.9, 9.8), "bid1": 9}, {"symbol": "X"}]}
        )

    async def _depth(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"]
        self.rest_calls.append("depth/" + symbol)
        if symbol == "NOPE_USDT":
            return web.json_response({"success": False, "code": 1001, "message": "Contract doesn't exist"})
        return web.json_response({"success": True, "code": 0, "data": {"asks": [[10.1, 4, 1]], "bids": [[9.9, 2, 1]], "version": 7,
                                                                        "timestamp": T0}})  # fmt: skip

    @asynccontextmanager
    async def run(self) -> AsyncIterator[FakeContractHost]:
        app = web.Application()
        app.router.add_get("/edge", self._edge)
        app.router.add_get("/api/v1/contract/detail", self._detail)
        app.router.add_get("/api/v1/contract/ticker", self._ticker)
        app.router.add_get("/api/v1/contract/depth/{symbol}", self._depth)
        runner = web.AppRunner(app, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        try:
            yield self
        finally:
            if self.ws is not None:
                await self.ws.close()
            await runner.cleanup()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_rest_calls_unwrap_the_envelope_and_pace_per_endpoint_not_per_symbol() -> None:
    async with FakeContractHost().run() as host:
        rest = ContractRest(host.url, share=0.5)  # 5 requests per 2 s per endpoint
        assert await fetch_contracts(rest) == ["BTC_USDT", "ETH_USDT"]
        tickers, errors = await fetch_tickers(rest)
        assert list(tickers) == ["BTC_USDT"] and tickers["BTC_USDT"].fair == 9.9 and len(errors) == 1
        book = await fetch_depth(rest, "BTC_USDT")
        assert (book.version, book.t_ms, book.bids, book.asks) == (7, T0, [(9.9, 2.0)], [(10.1, 4.0)])
        with pytest.raises(RestError, match="code 1001 from 127.0.0.1") as info:
            await fetch_depth(rest, "NOPE_USDT")
        assert "Contract doesn't exist" in str(info.value)
        t0 = time.monotonic()
        await asyncio.gather(*(fetch_depth(rest, s) for s in ("A_USDT", "B_USDT", "C_USDT", "D_USDT")))
        assert time.monotonic() - t0 >= 1.5  # 2 + 4 depth calls over two symbols' paths share one 5-per-2 s budget
        assert set(rest._budgets) == {"/api/v1/contract/detail", "/api/v1/contract/ticker", "/api/v1/contract/depth/"}
        await rest.close()


async def test_the_feed_survives_garbage_drops_and_silence_and_follows_the_universe() -> None:
    ticks: list[tuple[str, int, float, float, float]] = []
    books: list[tuple[str, int, list[fx.Level], list[fx.Level]]] = []
    gaps: list[tuple[str, int]] = []
    universes: list[tuple[set[str], set[str]]] = []
    async with FakeContractHost().run() as host:
        rest = ContractRest(host.url, share=1.0)
        feed = FuturesFeed(host.url.replace("http", "ws") + "/edge", lambda *a: ticks.append(a), rest=rest,
                           on_book=lambda *a: books.append(a), on_gap=lambda *a: gaps.append(a),
                           on_universe=lambda a, r: universes.append((a, r)), ping_interval_s=0.2, idle_timeout_s=1.0,
                           backoff_min_s=0.05, backoff_max_s=0.2, universe_refresh_s=0.3)  # fmt: skip
        runner = asyncio.create_task(feed.run())
        await until(lambda: feed.universe == {"BTC_USDT", "ETH_USDT"} and feed.connected)
        feed.set_books({"BTC_USDT", "OLD_USDT"})  # OLD_USDT is not an active contract: no book asked for
        await until(lambda: len(host.sent("sub.depth.full")) == 1 and feed.counts["acks"] == 2)
        assert host.sent("sub.tickers") == [fx.tickers_sub()]
        assert host.sent("sub.depth.full")[0]["param"] == {"symbol": "BTC_USDT", "limit": 20}

        # pushes: good rows, a filtered contract, a bad row; garbage frames; a gzip binary frame; a book
        await host.push(_tickers(_row("BTC_USDT", 101.0, 100.0, 100.1), _row("ETH_USDT", 3.0, 3.1, 3.1), _row("OLD_USDT", 1, 1, 1),
                                 {**_row("ETH_USDT", 1, 1, 1), "fairPrice": "NaN"}))  # fmt: skip
        await host.push("not json{")
        await host.push('{"channel":"push.tickers","data":"x"}')
        await host.push(gzip.compress(_tickers(_row("BTC_USDT", 102.0, 100.0, 100.1, T0 + 2000)).encode()))
        await host.push(json.dumps({"channel": "push.depth.full", "symbol": "BTC_USDT", "ts": T0 + 2100,
                                    "data": {"asks": [[102.5, 3, 1]], "bids": [[101.5, 4, 2]], "version": 9}}))  # fmt: skip
        await host.push('{"channel":"rs.error","data":"Contract [NOPE_USDT] not exists"}')
        await host.push('{"channel":"push.kline","data":{}}')
        await until(lambda: len(books) == 1 and len(ticks) == 3)
        assert ticks == [
            ("BTC_USDT", T0, 101.0, 100.0, 100.1),
            ("ETH_USDT", T0, 3.0, 3.1, 3.1),
            ("BTC_USDT", T0 + 2000, 102.0, 100.0, 100.1),
        ]
        assert books == [("BTC_USDT", T0 + 2100, [(101.5, 4.0)], [(102.5, 3.0)])]
        assert (
            feed.counts["parse_errors"],
            feed.counts["row_errors"],
            feed.counts["error_acks"],
            feed.counts["unknown_channels"],
        ) == (2, 1, 1, 1)

        # pings go out on time and are answered
        await until(lambda: len(host.sent("ping")) >= 2 and feed.counts["pongs"] >= 2)

        # the universe refresh: ETH delisted (gap for it), SOL listed (its tickers pass from now on)
        host.contracts = [c for c in host.contracts if c["symbol"] != "ETH_USDT"] + [_contract("SOL_USDT")]
        await until(lambda: feed.universe is not None and "SOL_USDT" in feed.universe)
        assert gaps[0][0] == "ETH_USDT" and universes[-1] == ({"SOL_USDT"}, {"ETH_USDT"})
        await host.push(_tickers(_row("SOL_USDT", 150.0, 149.0, 149.5), _row("ETH_USDT", 3, 3, 3)))
        await until(lambda: ticks[-1][0] == "SOL_USDT")
        assert not [t for t in ticks[3:] if t[0] == "ETH_USDT"]

        # a dropped link: one gap for all at the last frame's time, then reconnect and resubscribe
        last_frame_ms = feed._last_frame_ms
        await host.drop()
        await until(lambda: len(host.connections) == 2 and len(host.sent("sub.depth.full")) == 1 and feed.connected)
        assert gaps[-1] == (ALL, last_frame_ms)
        assert host.sent("sub.tickers") == [fx.tickers_sub()] and feed.counts["reconnects"] == 1

        # a silent link (no pongs, no pushes): the idle timeout reconnects; no second gap (no data since the first)
        host.mute = True
        await host.drop()
        await until(lambda: len(host.connections) == 3)
        host.mute = False
        await until(lambda: len(host.connections) == 4 and feed.connected, timeout=5.0)
        assert feed.counts["idle_timeouts"] >= 1 and [g for g in gaps if g[0] == ALL] == [gaps[-1]]
        metrics = feed.metrics()
        assert (
            metrics["futures_reconnects_total"] >= 3
            and metrics["futures_link_up"] == 1.0
            and metrics["futures_universe_size"] == 2
        )

        await feed.stop()
        await asyncio.wait_for(runner, 5)
        await rest.close()


async def test_callback_errors_and_refused_books_are_counted_not_fatal() -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("detector bug")

    feed = FuturesFeed("ws://127.0.0.1:9/edge", boom, on_book=boom)
    feed.universe = frozenset({"BTC_USDT", "NOPE_USDT"})
    feed.set_books({"BTC_USDT", "NOPE_USDT"})
    feed._handle(_tickers(_row("BTC_USDT", 1, 1, 1)))
    feed._handle(json.dumps({"channel": "push.fair.price", "data": {"symbol": "BTC_USDT", "price": 2}, "ts": T0}))
    feed._handle('{"channel":"rs.error","data":"Contract [NOPE_USDT] not exists"}')
    assert feed.counts["callback_errors"] == 2 and feed.books == {"BTC_USDT"}
    feed.set_books({"BTC_USDT", "NOPE_USDT"})  # a refused symbol is not asked for again
    assert feed.books == {"BTC_USDT"}
    with pytest.raises(ValueError, match="ping_interval_s"):
        FuturesFeed("ws://x", boom, ping_interval_s=30)


@settings(max_examples=300, deadline=None)
@given(channel=_channels, data=_json)
def test_the_feed_never_raises_on_any_json_frame(channel: str, data: Any) -> None:
    feed = FuturesFeed("ws://127.0.0.1:9/edge", lambda *a: None, on_book=lambda *a: None)
    feed._handle(json.dumps({"channel": channel, "data": data, "symbol": "BTC_USDT", "ts": T0}, allow_nan=True))
    assert feed.counts["frames"] == 1


_FIELD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-5, max_value=2**64), st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["0.5", "abc", "", "1e999", "12"]), st.lists(st.integers(), max_size=1),
)


@settings(max_examples=400, deadline=None)
@given(
    row=st.one_of(
        st.dictionaries(st.sampled_from(["symbol", "timestamp", "lastPrice", "fairPrice", "indexPrice", "holdVol"]),
                        st.one_of(_FIELD_VALUES, st.sampled_from(["BTC_USDT", "X" * 65])), max_size=5),
        st.fixed_dictionaries({"symbol": st.sampled_from(["BTC_USDT", "", "X" * 65]), "timestamp": _FIELD_VALUES,
                               "lastPrice": _FIELD_VALUES, "fairPrice": _FIELD_VALUES, "indexPrice": _FIELD_VALUES,
                               "holdVol": _FIELD_VALUES}),
        _FIELD_VALUES,
    ),
    fallback=st.one_of(st.none(), st.integers(min_value=0, max_value=2**62)),
)
def test_the_ticker_fast_path_equals_the_checked_parser(row: object, fallback: int | None) -> None:
    """push.tickers' fast path gives what the field-by-field parser gives: the same Ticker or the same error."""
    def run(parse: object) -> object:
        try:
            return parse(row, fx.TICKERS, fallback)  # type: ignore[operator]
        except ValueError as exc:
            return ("error", str(exc))

    fast, checked = run(fx.parse_ticker_row), run(fx.parse_ticker_row_checked)
    # NaN != NaN: compare the open interest apart (NaN = the row has none)
    if isinstance(fast, fx.Ticker) and isinstance(checked, fx.Ticker):
        assert (fast.hold_vol == checked.hold_vol) or (math.isnan(fast.hold_vol) and math.isnan(checked.hold_vol))
        fast, checked = dataclasses.replace(fast, hold_vol=0.0), dataclasses.replace(checked, hold_vol=0.0)
    assert fast == checked
