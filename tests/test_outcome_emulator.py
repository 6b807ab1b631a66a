"""The outcome tracker in the running service: a scripted pump's signal ends labelled hit.

One pump (+40 % over 300 exchange seconds) in a small emulated market at 10x speed, with the
horizon shortened to 300 s so the test takes about a minute. The expected max gain is computed
from the emulator's own 1-minute klines (highs after the signal), not from our feature rows.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.test_pipeline_emulator import REPO, Service, _get, _wait

HORIZON_S = 300
SCENARIO = "pumps:\n  - {rank: 2, start_s: 10, duration_s: 300, rise_pct: 40, volume_mult: 12, book_imbalance: 0.8}\n"


def _outcome(db_path: Path, symbol: str) -> dict | None:
    if not db_path.exists():
        return None
    db = sqlite3.connect(db_path)
    try:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT o.* FROM outcomes o JOIN signals s ON s.signal_id = o.signal_id WHERE s.symbol = ? AND s.escalation = 0",
                         (symbol,)).fetchone()  # fmt: skip
        return dict(row) if row else None
    except sqlite3.OperationalError:  # the service has not created its tables yet
        return None
    finally:
        db.close()


def test_a_scripted_pump_signal_is_followed_to_a_hit_with_the_right_max_gain(tmp_path: Path) -> None:
    (tmp_path / "pump.yaml").write_text(SCENARIO)
    config = (REPO / "config.demo.yaml").read_text()
    config = config.replace("horizon_s: 1200", f"horizon_s: {HORIZON_S}").replace("model_path: model.json", f"model_path: {REPO / 'model.json'}")
    (tmp_path / "config.yaml").write_text(config)
    svc = Service(tmp_path, scenario=tmp_path / "pump.yaml", config=tmp_path / "config.yaml", pairs=40, speed=10)
    try:
        info = json.loads(_get(svc.rest + "/api/v3/exchangeInfo"))
        symbol = info["symbols"][2]["symbol"]
        outcome = _wait(lambda: _outcome(tmp_path / "data" / "scanner.sqlite3", symbol), timeout=150, step=1.0)
        assert outcome, f"no outcome for {symbol}; signals: {svc.signals()}"
        metrics = svc.metrics()
        (signal,) = [s for s in svc.signals() if s["signal_id"] == outcome["signal_id"]]
        t0, price = signal["exchange_time_ms"], signal["price"]
        klines = json.loads(_get(f"{svc.rest}/api/v3/klines?symbol={symbol}&interval=1m&startTime={t0 - t0 % 60_000}"
                                 f"&endTime={t0 + HORIZON_S * 1000}&limit=100"))  # fmt: skip
    finally:
        assert svc.stop() == 0
    print("outcome:", outcome)
    expected = max(float(k[2]) for k in klines) / price - 1
    print(f"max gain: tracker {outcome['max_gain']:.4f}, klines {expected:.4f}")
    assert (outcome["outcome"], outcome["trade"], outcome["horizon_s"], outcome["resumed"]) == ("hit", "TP", HORIZON_S, 0)
    # The tracker sees 1 s closes, the klines every trade: equal up to the last bar's wick.
    assert expected - 0.01 <= outcome["max_gain"] <= expected + 1e-9
    assert outcome["max_gain"] >= 0.10 and outcome["max_drawdown"] <= 0.0 and 0 < outcome["tp_time_s"] <= outcome["time_to_max_s"] <= HORIZON_S
    assert outcome["rows"] >= HORIZON_S * 0.9  # the pump trades every second: about one row per second of horizon
    assert f'scanner_outcomes_total{{outcome="hit",profile="{signal["profile"]}"}}' in metrics
