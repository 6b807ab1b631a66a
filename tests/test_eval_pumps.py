"""perf.eval_pumps end to end on a synthetic event made here: the pump is found, background is quiet,
and two runs give the same report."""

from __future__ import annotations

import csv
import lzma
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from perf.eval_pumps import run

T = datetime(2021, 3, 7, 17, 0, tzinfo=UTC)
T_MS = int(T.timestamp() * 1000)
HOUR = 3_600_000


def _make_event(root: Path) -> None:
    """A coin trading quietly from T-9h to T+7h, with a 5-minute +20 % buy pump from T+5 s."""
    rng = np.random.default_rng(7)
    rows: list[tuple[int, str, float, float]] = []
    t, price = T_MS - 9 * HOUR, 1.0e-5
    while t < T_MS + 7 * HOUR:
        t += int(rng.integers(3_000, 12_000))
        price *= 1.0 + rng.normal(0.0, 0.0008)
        rows.append(
            (t, "buy" if rng.random() < 0.5 else "sell", round(price, 10), round(float(rng.uniform(50, 150)), 2))
        )
    base = rows[-1][2]
    pump = []
    for k in range(1500):  # one trade every 200 ms for 300 s, price up 20 %
        ts = T_MS + 5_000 + k * 200
        pump.append((ts, "buy" if k % 4 else "sell", round(base * (1 + 0.2 * k / 1500), 10), 400.0))
    pump_price = base * 1.2
    rows = sorted([r for r in rows if not T_MS <= r[0] < T_MS + 305_000] + pump)
    rows = [(ts, s, p * (pump_price / base) if ts >= T_MS + 305_000 else p, q) for ts, s, p, q in rows]
    (root / "trades").mkdir(parents=True)
    with lzma.open(root / "trades" / "FAKE_2021-03-07_17.00.csv.xz", "wt") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "side", "price", "amount"])
        w.writerows(rows)
    index_cols = ["event_id", "symbol", "pair", "announced_utc", "file", "p_ref", "peak_price", "meets_10pct_20min",
                  "cross10_rel_s", "lamorgia_labeled_start_5S", "n_trades"]  # fmt: skip
    with (root / "events_index.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(index_cols)
        w.writerow(["FAKE_2021-03-07_17.00", "FAKE", "FAKE/BTC", "2021-03-07 17:00", "trades/FAKE_2021-03-07_17.00.csv.xz",
                    base, pump_price, "True", "150.0", "2021-03-07 17:00:05", len(rows)])  # fmt: skip
    with (root / "background_episodes.csv").open("w", newline="") as fh:
        csv.writer(fh).writerow(["event_id", "episode_start_utc", "hours_from_announce", "flagged_trades",
                                 "max_rise_vs_trailing20m_min_pct", "known_pump_within_60min_utc", "known_pump_sources"])  # fmt: skip


def test_synthetic_pump_is_found_and_the_report_is_deterministic(tmp_path: Path) -> None:
    _make_event(tmp_path)
    first = run(tmp_path, workers=1)
    second = run(tmp_path, workers=2)
    assert first == second
    a1 = first["summaries"]["alpha1"]
    assert a1["events"] == 1 and a1["detected"] == 1 and a1["recall"] == 1.0
    sig = first["events"][0]["by_profile"]["alpha1"]["first_signal"]
    # The pump starts at T+5 s; Alpha-1's VC < 0.5 needs two minutes of pump volume.
    assert 5.0 < sig["t_rel_T_s"] < 300.0
    assert sig["rise_behind_vs_p_ref_pct"] > 2.0
    assert first["events"][0]["by_profile"]["alpha1"]["background_signals"] == 0
    assert a1["background_coin_days"] > 0.3  # T-9h..T-2h and T+6h..T+7h
    # The +10 % over the 20-min low rule sees the steady 20 % climb about half-way up, in ms.
    naive = first["events"][0]["by_profile"]["naive_10pct_20m"]["first_signal"]
    assert 100_000 < naive["t_rel_labelled_ms"] < 200_000
    assert set(first["summaries"]) == {"default", "alpha1", "flash", "naive_10pct_20m", "rise_2pct_5s_or_5pct_1m"}


def test_every_card_keeps_its_time_and_a_buy_on_it_is_priced(tmp_path: Path) -> None:
    """The trader's figures: a card during the steady climb buys 1 s later and takes profit at +10 %."""
    _make_event(tmp_path)
    report = run(tmp_path, workers=1)
    cards = [s for s in report["events"][0]["signals"] if s["profile"] == "alpha1" and s["kind"] == "event"]
    assert cards and all(isinstance(s["t_rel_T_s"], float) for s in cards)
    first = cards[0]
    # The climb adds 20 % over 300 s (0.067 %/s): from a card at t, +10 % is reached only if t < T+155 s.
    assert first["entry_delay_ms"] >= 1000
    expected = "TP" if first["t_rel_T_s"] < 140 else "TIMEOUT"
    assert first["outcome"] == expected
    if expected == "TP":
        assert abs(first["ret_pct"] - (100 * (1.1 * 0.999 / 1.001 - 1))) < 1e-3
    fixed = report["summaries"]["alpha1"]["trader_fixed"]
    assert fixed["cards"] == len(cards) and fixed["win_rate"] is not None


def test_progress_goes_to_stderr_and_stdout_and_json_stay_the_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue #24: a line per event on stderr; stdout is still exactly the summary, the file the report."""
    import json

    from perf.eval_pumps import main

    data = tmp_path / "data"
    _make_event(data)
    out = tmp_path / "report.json"
    assert main(["--data", str(data), "--json", str(out), "--workers", "1"]) == 0
    captured = capsys.readouterr()
    expected = run(data, workers=1)
    assert json.loads(out.read_text()) == json.loads(json.dumps(expected))
    s = expected["summary"]
    keys = ("events", "events_meeting_10pct_20min", "detected", "recall", "delay_ms", "precision", "background_coin_days",
            "false_signals_per_coin_day", "trader_fixed")  # fmt: skip
    assert captured.out.startswith(json.dumps({k: s[k] for k in keys}, indent=1) + "\n")
    assert "| naive_10pct_20m |" in captured.out
    # Captured stderr is not a terminal: plain lines (start, end), no bar redrawn with carriage returns.
    assert "eval_pumps: 0/1 events" in captured.err
    assert "eval_pumps: 1/1 events (100 %)" in captured.err and ", done" in captured.err
    assert "\r" not in captured.err
