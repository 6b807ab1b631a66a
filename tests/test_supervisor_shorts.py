"""The short watcher in the service (supervisor/shorts.py, store/watches.py, supervisor/short_intake.py; issue #19).

Rows are FEATURE_ROW_DTYPE batches as the pipeline hands them on; the intake is driven over a
real loopback socket by aiohttp's test client.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, generate_latest

from common.config import Config, StorageConfig, TelegramConfig
from common.messages import OpenInterest, ShortNotice, WatchedContracts, decode, encode
from common.shorts_config import ShortsConfig
from common.signal import Signal
from core.rowspec import FEATURE_ROW_DTYPE
from store.watches import WatchStore
from supervisor.short_intake import intake_app, serve_intake
from supervisor.shorts import ShortWatches

MIN = 60_000


def make(tmp_path: Path, token: str = "", **shorts: Any) -> tuple[ShortWatches, list[Any], dict[str, int]]:
    shorts = {"take_profit_pct": 10.0, "stop_loss_pct": 6.0, **shorts}  # levels the paths below reach
    config = Config(storage=StorageConfig(data_dir=str(tmp_path)), telegram=TelegramConfig(token=token), shorts=ShortsConfig(**shorts))
    told: list[Any] = []
    clock = {"ms": 0}
    return ShortWatches(config, {7: "PUMPUSDT", 8: "OTHERUSDT"}, lambda m: told.append(m) or True, lambda: clock["ms"]), told, clock


def signal(t_ms: int, price: float, change_5m: float | None) -> Signal:
    return Signal("sig-1", "PUMPUSDT", "alpha1", t_ms, 0, 0, price, 0.9, change_1m=0.02, change_5m=change_5m, change_15m=None)


def rows_of(points: list[tuple[int, float]], pair_id: int = 7) -> np.ndarray:
    rows = np.zeros(len(points), FEATURE_ROW_DTYPE)
    for i, (t, p) in enumerate(points):
        rows[i]["pair_id"], rows[i]["row_time_ms"], rows[i]["last_price"] = pair_id, t, p
        rows[i]["quote_vol_5m"], rows[i]["buy_share_10s"] = 5000.0, 0.3
    return rows


def ramp(t0: int, a: float, b: float, seconds: int) -> list[tuple[int, float]]:
    return [(t0 + i * 1000, a + (b - a) * i / seconds) for i in range(seconds)]


def test_a_signal_starts_a_watch_that_is_stored_logged_counted_and_announced(tmp_path: Path) -> None:
    shorts, told, _ = make(tmp_path, token="t")
    shorts.on_signal(signal(0, 1.0, 0.12))
    assert len(shorts) == 1 and shorts.pair_ids == {7}
    path = ramp(0, 1.0, 1.1, 300) + ramp(300_000, 1.1, 1.0, 600) + ramp(900_000, 1.0, 0.9, 600)
    for second in range(0, len(path), 10):  # batches of 10 rows, another pair's rows mixed in
        batch = np.concatenate([rows_of(path[second : second + 10]), rows_of([(path[second][0], 50.0)], pair_id=8)])
        shorts.on_rows(batch)
    assert len(shorts) == 0 and shorts.pair_ids == set()
    (row,) = WatchStore(tmp_path).watches()
    assert row["signal_id"] == "sig-1" and row["source"] == "scanner" and row["pump_pct"] == pytest.approx(12.0)
    assert row["entry_kind"] == "CONFIRM" and row["outcome"] == "TP" and row["return_pct"] == 10.0
    assert row["stage_times"] == {"STAGE_0": 0, "STAGE_1_DROP1": 600_000} and row["extra"]["profile"] == "alpha1"
    notices = [m for m in told if isinstance(m, ShortNotice)]
    assert [n.text.split(" ")[0] for n in notices] == ["👀", "🔻", "🏁"] and {n.signal_id for n in notices} == {"sig-1"}
    assert decode(encode(notices[0])) == notices[0]
    with (tmp_path / "shorts" / "snapshots-19700101.csv").open() as fh:
        snaps = list(csv.DictReader(fh))
    assert snaps[0]["evaluation"] == "start" and snaps[-1]["evaluation"] == "entry" and len(snaps) >= 4
    registry = CollectorRegistry()
    registry.register(shorts.collector())
    text = generate_latest(registry).decode()
    assert 'scanner_short_watch_events_total{event="OUTCOME",outcome="TP"} 1.0' in text
    assert 'scanner_short_watch_events_total{event="ENTRY_OK",outcome="CONFIRM"} 1.0' in text
    assert "scanner_short_watches_active 0.0" in text


def test_open_interest_reaches_the_context_of_the_watch(tmp_path: Path) -> None:
    shorts, _, _ = make(tmp_path)
    shorts.on_signal(signal(0, 1.0, 0.12))
    shorts.on_open_interest("PUMP_USDT", 1000, 5000.0)
    shorts.on_open_interest("OTHER_USDT", 1000, 1.0)  # no watch: ignored
    shorts.on_open_interest("PUMP_USDT", 290_000, 6000.0)
    shorts.on_rows(rows_of(ramp(0, 1.0, 1.01, 301)))
    with (tmp_path / "shorts" / "snapshots-19700101.csv").open() as fh:
        last = list(csv.DictReader(fh))[-1]
    assert last["evaluation"] == "5m" and float(last["open_interest"]) == 6000.0 and float(last["oi_change_pct"]) == 20.0


def test_filters_and_switches(tmp_path: Path) -> None:
    shorts, told, _ = make(tmp_path, token="t", notify_start=False)
    shorts.on_signal(signal(0, 1.0, 0.05))  # 5 % < min_pump_pct 8
    assert len(shorts) == 0 and shorts.refused == {"min_pump_pct": 1}
    shorts.on_signal(signal(0, 1.0, 0.09))
    shorts.on_signal(signal(1000, 1.0, 0.09))
    assert shorts.refused == {"min_pump_pct": 1, "duplicate": 1} and told == []  # notify_start off
    off, _, _ = make(tmp_path / "off", enabled=False)
    off.on_signal(signal(0, 1.0, 0.5))
    assert len(off) == 0
    shorts.update_config(dataclasses.replace(shorts.config, shorts=ShortsConfig(min_pump_pct=50)))
    assert shorts.start("OTHERUSDT", "http", 20, 0)[1] == "pump 20.00 % is under min_pump_pct 50 %"


def test_no_active_watch_costs_nothing(tmp_path: Path) -> None:
    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"rows touched: {name}")

        def __getitem__(self, key: Any) -> Any:
            raise AssertionError(f"rows touched: {key}")

        def __len__(self) -> int:
            raise AssertionError("rows touched: len")

    shorts, _, _ = make(tmp_path)
    shorts.on_rows(Untouchable())  # type: ignore[arg-type]


def test_a_failing_watcher_never_stops_the_scoring_loop(tmp_path: Path) -> None:
    shorts, _, _ = make(tmp_path)
    shorts.on_signal(signal(0, 1.0, 0.12))
    shorts.on_rows(np.zeros(1, dtype=[("pair_id", "u4")]))  # rows without the fields the watcher reads
    assert len(shorts) == 0 and shorts.pair_ids == set()
    shorts.on_rows(rows_of([(1000, 1.0)]))  # and the next batch is fine


def test_a_run_left_unfinished_is_marked_unknown_on_the_next_start(tmp_path: Path) -> None:
    shorts, _, _ = make(tmp_path)
    assert shorts.start("PUMPUSDT", "http", 20, int(time.time() * 1000))[0] is not None  # no row yet: wall clock
    again, _, _ = make(tmp_path)
    (row,) = again.store.watches()
    assert row["outcome"] == "UNKNOWN" and "stopped" in row["reason"]


def _intake(tmp_path: Path) -> tuple[ShortWatches, TestClient]:
    shorts, _, clock = make(tmp_path, intake_token="s3cret")
    clock["ms"] = 10 * MIN
    return shorts, TestClient(TestServer(intake_app("s3cret", shorts.start, shorts.known), host="127.0.0.1"))


def test_intake_answers_run_id_or_the_reason(tmp_path: Path) -> None:
    async def go() -> list[tuple[int, dict[str, Any]]]:
        shorts, client = _intake(tmp_path)
        auth = {"Authorization": "Bearer s3cret"}
        good = {"symbol": "pump_usdt", "exchange": "MEXC", "pump_pct": 12.5, "pump_ts": 9 * 60, "extra": {"from": "bot"}}
        bodies: list[tuple[dict[str, str], Any]] = [
            ({}, good),
            ({"Authorization": "Bearer wrong"}, good),
            (auth, "not json"),
            (auth, [1]),
            (auth, {**good, "pump_pct": "big"}),
            (auth, {**good, "pump_pct": -3}),
            (auth, {**good, "pump_ts": None}),
            (auth, {**good, "exchange": "binance"}),
            (auth, {**good, "symbol": "NOPEUSDT"}),
            (auth, {**good, "extra": [1]}),
            (auth, {**good, "color": "red"}),
            (auth, good),
            (auth, good),
            (auth, {**good, "symbol": "OTHERUSDT", "pump_ts": 10}),  # seconds
        ]
        out = []
        async with client:
            for headers, body in bodies:
                data = body if isinstance(body, str) else json.dumps(body)
                resp = await client.post("/pump", data=data, headers=headers)
                out.append((resp.status, await resp.json()))
        stored = {w["symbol"]: w for w in WatchStore(tmp_path).watches()}
        assert stored["PUMPUSDT"]["extra"] == {"from": "bot"} and stored["PUMPUSDT"]["pump_ts_ms"] == 540_000
        assert stored["OTHERUSDT"]["pump_ts_ms"] == 10_000 and stored["OTHERUSDT"]["source"] == "http"
        return out

    answers = asyncio.run(go())
    assert [s for s, _ in answers] == [401, 401, 400, 400, 400, 400, 400, 400, 422, 400, 400, 200, 200, 200]
    assert answers[4][1]["error"].startswith("pump_pct: got 'big'")
    assert answers[8][1]["error"].startswith("symbol: NOPEUSDT is not a pair the scanner streams")
    assert answers[10][1]["error"].startswith("color: unknown field")
    assert answers[11][1] == {"ok": True, "run_id": "PUMPUSDT-600000"}
    assert answers[12][1]["ok"] is False and "already watched" in answers[12][1]["refused"]
    assert answers[13][1] == {"ok": True, "run_id": "OTHERUSDT-600000"}


def test_intake_is_off_without_a_token(tmp_path: Path) -> None:
    shorts, _, _ = make(tmp_path)
    stop = asyncio.Event()
    asyncio.run(asyncio.wait_for(serve_intake("127.0.0.1", 1, "", shorts.start, shorts.known, stop), 2))  # returns at once


def test_bot_threads_short_messages_under_the_pumps_card(tmp_path: Path) -> None:
    from telegram.error import Forbidden

    from bot.short_notices import ShortNotices
    from common.signal import make_signal_id
    from store.history import Store

    store = Store(tmp_path)
    sig = Signal(make_signal_id("PUMPUSDT", 1000, 0), "PUMPUSDT", "alpha1", 1000, 0, 0, 1.0, 0.9)
    store.add_signal(sig)
    store.mark_card_sent(sig.signal_id, 11, 501, 1)

    class FakeBot:
        def __init__(self) -> None:
            self.sent: list[tuple[int, str, int | None]] = []

        async def send_text(self, chat_id: int, text: str, reply_to: int | None = None) -> None:  # the notifier's API
            if chat_id == 13:
                raise Forbidden("bot was blocked by the user")
            self.sent.append((chat_id, text, reply_to))

    bot, notices = FakeBot(), ShortNotices()
    notices.add(ShortNotice("entry", sig.signal_id))
    notices.add(ShortNotice("intake watch", ""))
    asyncio.run(notices.send(bot, store.db, [11, 12, 13], False, lambda sid: {12: 777} if sid == sig.signal_id else {}))
    assert bot.sent == [(11, "entry", 501), (12, "entry", 777), (11, "intake watch", None), (12, "intake watch", None)]
    assert notices.queue == []
    notices.add(ShortNotice("while paused", sig.signal_id))
    asyncio.run(notices.send(bot, store.db, [11], True, lambda sid: {}))
    assert len(bot.sent) == 4 and notices.queue == []


def test_the_pipeline_starts_a_watch_from_its_own_signal_and_cfg_reaches_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scanner's signal (real scorer, real pipeline) starts a watch by itself; later batches drive it; /cfg applies."""
    import shutil

    from core.rowspec import ROW_BASELINE_READY, ROW_BOOK_VALID, ROW_LISTING_KNOWN
    from supervisor.app import Supervisor
    from supervisor.planning import ShardHandle

    repo = Path(__file__).resolve().parent.parent
    shutil.copy(repo / "config.yaml", tmp_path / "config.yaml")
    for model in ("model.json", "model.flash.json"):  # the config's model paths are relative to its file
        shutil.copy(repo / model, tmp_path / model)
    shutil.copy(repo / "model.json", tmp_path / "model.json")
    monkeypatch.setenv("SCANNER_DATA_DIR", str(tmp_path / "data"))
    sup = Supervisor(tmp_path / "config.yaml")
    sup.planning.symbols[3], sup.planning.pair_ids["AUSDT"] = "AUSDT", 3
    batches: list[np.ndarray] = []

    class Ring:
        def drain_notify(self) -> None:
            pass

        def read_new(self) -> np.ndarray:
            return batches.pop(0)

    def row(t_ms: int, price: float, vsr: float) -> np.ndarray:
        r = np.zeros(1, dtype=FEATURE_ROW_DTYPE)
        for key, value in dict(vsr=vsr, vc=0.3, pm=0.05, obi=0.5, cum_depth_delta=3.0, spread=0.002, listing_age_s=1e5, last_price=price,
                               quote_vol_5m=1e5, buy_share_10s=0.3, flags=ROW_BOOK_VALID | ROW_BASELINE_READY | ROW_LISTING_KNOWN,
                               pair_id=3, row_time_ms=t_ms, seq=1).items():  # fmt: skip
            r[key] = value
        return r

    handle = ShardHandle(0, Ring(), None)
    t0 = 1_790_000_040_000 // 300_000 * 300_000
    for minute in range(17):
        batches.append(row(t0 + minute * MIN + 30_000, 1.0, 1.0))
        sup.pipeline.on_ring_ready(handle)
    assert len(sup.pipeline.shorts) == 0
    ok, _ = sup.control.set_value("detectors.pump.enabled_profiles", "alpha1")  # these rows are Alpha-1's shape
    assert ok
    ok, _ = sup.control.set_value("shorts.take_profit_pct", "4")
    assert ok and sup.pipeline.shorts.watcher.config.take_profit_pct == 4.0
    fire = t0 + 17 * MIN
    batches.append(row(fire, 1.25, 10.0))
    sup.pipeline.on_ring_ready(handle)
    (sig,) = sup.store.signals_without_outcome()
    assert len(sup.pipeline.shorts) == 1 and sup.pipeline.shorts.pair_ids == {3}
    sup._on_futures_message(OpenInterest("A_USDT", fire, 1234.0))  # the futures child's answer to WatchedContracts
    assert sup.pipeline.shorts.watcher.active["AUSDT"].oi_last == 1234.0
    for i, price in enumerate([1.25 - 0.3 * i / 600 for i in range(1, 601)]):  # 10 minutes of falling 1 s closes
        batches.append(row(fire + (i + 1) * 1000, price, 1.0))
        sup.pipeline.on_ring_ready(handle)
    (watch,) = sup.pipeline.shorts.store.watches()
    assert watch["signal_id"] == sig.signal_id and watch["pump_pct"] == pytest.approx(25.0)
    assert watch["entry_kind"] == "CONFIRM" and watch["outcome"] == "TP" and watch["take_profit_pct"] == 4.0


def test_the_futures_child_sends_open_interest_of_the_watched_contracts_only(tmp_path: Path) -> None:
    from common.futures_config import FuturesConfig
    from supervisor.futures import FuturesWatch
    from venues.mexc.futures import parse_ticker_row

    row = {"symbol": "PUMP_USDT", "timestamp": 5, "lastPrice": 1.0, "fairPrice": 1.0, "indexPrice": 1.0}
    assert parse_ticker_row({**row, "holdVol": 4321}).hold_vol == 4321.0
    for bad in ({}, {"holdVol": "lots"}, {"holdVol": -1}, {"holdVol": None}, {"holdVol": True}):
        assert math.isnan(parse_ticker_row({**row, **bad}).hold_vol)

    shorts, _, _ = make(tmp_path)
    told: list[Any] = []
    shorts.tell_futures = lambda m: told.append(m) or True
    shorts.on_signal(signal(0, 1.0, 0.12))
    assert told == [WatchedContracts(["PUMP_USDT"])]

    class Conn:
        def __init__(self, inbox: list[Any]) -> None:
            self.inbox, self.sent = [encode(m) for m in inbox], []

        def poll(self) -> bool:
            return bool(self.inbox)

        def recv(self) -> Any:
            return self.inbox.pop(0)

        def send(self, data: Any) -> None:
            self.sent.append(decode(data))

    conn = Conn(told)
    config = Config(storage=StorageConfig(data_dir=str(tmp_path / "f")), futures=FuturesConfig(symbols=["BTC_USDT"]))
    watch = FuturesWatch(config, conn)  # type: ignore[arg-type]
    watch.pipe.on_readable()
    watch.feed.open_interest.update({"PUMP_USDT": 5000.0, "OTHER_USDT": 7.0})
    watch._on_ticker("PUMP_USDT", 1000, 1.0, 1.0, 1.0)  # outside futures.symbols: still reported for the watch
    watch._on_ticker("OTHER_USDT", 1000, 1.0, 1.0, 1.0)
    assert conn.sent == [OpenInterest("PUMP_USDT", 1000, 5000.0)]
