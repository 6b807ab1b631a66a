"""The card budget: a burst over scanner.max_cards_per_hour sends only its strongest signals, the rest
are stored suppressed (nothing lost, outcomes still watched) and counted in /stats; the budget is
per exchange-time window, survives a restart, and /cfg changes it at once."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from bot import commands
from common.config import Config, ConfigError, config_from_mapping, set_value
from core.rowspec import FEATURE_ROW_DTYPE
from detectors.base import Decision
from store.history import Store
from supervisor.budget import CardBudget, strength
from supervisor.pipeline import Pipeline

T0 = 1_790_000_000_000  # exchange ms


def _config(per_hour: int, per_day: int = 1000) -> Config:
    return config_from_mapping({"scanner": {"max_cards_per_hour": per_hour, "max_cards_per_day": per_day},
                                "telegram": {"token": "1:T", "allowed_ids": [7]}}, environ={})  # fmt: skip


class _Detection:
    """Hands the pipeline prepared decisions: (pair id, prob, profile) per row of the batch."""

    def __init__(self) -> None:
        self.next: list[tuple[int, float, str]] = []

    def score(self, rows: np.ndarray, now_ns: int) -> list[Decision]:
        out = []
        for row, (pair, prob, profile) in zip(rows, self.next, strict=True):
            values = {name: row[name].item() for name in rows.dtype.names}
            out.append(Decision(pair, values, prob, ["test"], 0, profile, True))
        return out

    def remember_alert(self, *args: Any) -> None:
        pass


class _Ring:
    def __init__(self) -> None:
        self.rows = np.zeros(0, FEATURE_ROW_DTYPE)

    def drain_notify(self) -> None:
        pass

    def read_new(self) -> np.ndarray:
        rows, self.rows = self.rows, np.zeros(0, FEATURE_ROW_DTYPE)
        return rows


def _pipeline(tmp_path: Any, config: Config) -> tuple[Pipeline, _Detection, Store, list[Any], SimpleNamespace]:
    store = Store(tmp_path)
    detection = _Detection()
    symbols = {k: f"P{k}USDT" for k in range(100)}
    planning = SimpleNamespace(symbols=symbols, volumes_24h={}, quality_check=lambda rows, watched: None,
                               pair_id=lambda s: int(s[1:-4]))  # fmt: skip
    metrics = SimpleNamespace(observe_latency=lambda ms: None, signals=SimpleNamespace(observe=lambda p: None), registry=CollectorRegistry())
    told: list[Any] = []
    pipeline = Pipeline(config, detection, store, planning, metrics, lambda m: told.append(m) or True)  # type: ignore[arg-type]
    return pipeline, detection, store, told, SimpleNamespace(ring=_Ring())


def _batch(pipeline: Pipeline, detection: _Detection, handle: SimpleNamespace, t_ms: int,
           fired: list[tuple[int, float, str]]) -> None:  # fmt: skip
    """One scoring pass: the given pairs fire at exchange time t_ms."""
    rows = np.zeros(len(fired), FEATURE_ROW_DTYPE)
    rows["pair_id"] = [p for p, _, _ in fired]
    rows["row_time_ms"] = t_ms
    rows["last_price"] = 1.0
    rows["pm"] = 0.03
    handle.ring.rows = rows
    detection.next = fired
    pipeline.on_ring_ready(handle)


def _cards(store: Store) -> dict[str, str | None]:
    """symbol -> suppressed reason (None: a card goes out) of every stored signal."""
    return dict(store.db.execute("SELECT symbol, suppressed FROM signals").fetchall())


def test_strength_compares_profiles_by_the_room_above_their_thresholds() -> None:
    assert strength(0.60, 0.60) == 0.0 and strength(1.0, 0.6) == 1.0
    assert strength(0.8, 0.6) == pytest.approx(0.5)
    assert strength(0.99, 0.98) == pytest.approx(0.5)  # flash 0.99 is as far above its bar as alpha1 0.80
    assert strength(0.5, 0.6) == 0.0 and strength(1.0, 1.0) == 1.0 and strength(0.99, 1.0) == 0.0


def test_a_burst_over_the_budget_sends_only_its_strongest_and_stores_the_rest(tmp_path: Any) -> None:
    config = _config(per_hour=3)
    pipeline, detection, store, told, handle = _pipeline(tmp_path, config)
    probs = [0.61, 0.95, 0.70, 0.99, 0.65, 0.90, 0.62, 0.80]
    _batch(pipeline, detection, handle, T0, [(k, p, "alpha1") for k, p in enumerate(probs)])
    cards = _cards(store)
    assert len(cards) == len(probs)  # nothing lost
    sent = sorted(s for s, why in cards.items() if why is None)
    assert sent == ["P1USDT", "P3USDT", "P5USDT"]  # probs 0.95, 0.99, 0.90: the three strongest
    assert all(why == "card budget: 3 cards per hour used" for s, why in cards.items() if s not in sent)
    # the bot is told only of the cards; every signal is watched for its outcome
    assert sorted(m.signal_id.split("-")[0] for m in told) == sent
    assert len(pipeline.tracker) == len(probs)
    assert {s.symbol for s in store.unsent_signals()} == set(sent)
    assert pipeline.figures()["cards_suppressed_by_budget_total"] == 5.0

    stats = store.stats(0)
    assert (stats["signals"], stats["suppressed"], stats["suppressed_budget"]) == (8, 5, 5)
    assert stats["suppressed_budget_top_prob"] == pytest.approx(0.80)
    text = commands.format_stats(stats)
    assert "8 signals" in text and "5 held back by the card budget (strongest prob 0.800" in text


def test_a_later_stronger_signal_never_goes_over_the_cap_and_the_window_rolls(tmp_path: Any) -> None:
    pipeline, detection, store, _, handle = _pipeline(tmp_path, _config(per_hour=2))
    _batch(pipeline, detection, handle, T0, [(1, 0.9, "alpha1"), (2, 0.9, "alpha1")])
    _batch(pipeline, detection, handle, T0 + 60_000, [(3, 0.999, "alpha1")])  # stronger, but the hour is spent
    _batch(pipeline, detection, handle, T0 + 3_600_001, [(4, 0.95, "alpha1")])  # an hour later: budget again
    assert _cards(store) == {"P1USDT": None, "P2USDT": None, "P3USDT": "card budget: 2 cards per hour used", "P4USDT": None}


def test_the_second_half_of_the_budget_is_kept_for_signals_stronger_than_the_median_card(tmp_path: Any) -> None:
    pipeline, detection, store, _, handle = _pipeline(tmp_path, _config(per_hour=4))
    for k, p in enumerate([0.9, 0.8], start=1):  # two cards in two passes: half of 4 used, median strength 0.625
        _batch(pipeline, detection, handle, T0 + k * 1000, [(k, p, "alpha1")])
    _batch(pipeline, detection, handle, T0 + 5000, [(3, 0.7, "alpha1")])  # strength 0.25 < 0.625
    _batch(pipeline, detection, handle, T0 + 6000, [(4, 0.88, "alpha1")])  # 0.70 >= 0.625
    cards = _cards(store)
    assert cards["P3USDT"] is not None and cards["P3USDT"].startswith("card budget: half of the 4 cards per hour used")
    assert cards["P1USDT"] is cards["P2USDT"] is cards["P4USDT"] is None


def test_the_day_cap_holds_across_hours_and_a_restart(tmp_path: Any) -> None:
    config = _config(per_hour=2, per_day=3)
    pipeline, detection, store, _, handle = _pipeline(tmp_path, config)
    now_ms = int(time.time() * 1000)  # restore reads the last 24 h of exchange time
    for k in range(2):
        _batch(pipeline, detection, handle, now_ms + k * 2 * 3_600_000, [(k, 0.99, "alpha1")])
    pipeline2, detection2, store2, _, handle2 = _pipeline(tmp_path, config)  # a restart: same file
    _batch(pipeline2, detection2, handle2, now_ms + 5 * 3_600_000, [(5, 0.99, "alpha1"), (6, 0.98, "alpha1")])
    cards = _cards(store2)
    assert [cards[f"P{k}USDT"] for k in (0, 1, 5)] == [None, None, None]
    assert cards["P6USDT"] == "card budget: 3 cards per day used"


def test_cfg_changes_the_budget_at_once_and_bad_values_are_refused(tmp_path: Any) -> None:
    config = _config(per_hour=1)
    pipeline, detection, store, _, handle = _pipeline(tmp_path, config)
    _batch(pipeline, detection, handle, T0, [(1, 0.9, "alpha1"), (2, 0.9, "alpha1")])
    pipeline.update_config(set_value(config, "scanner.max_cards_per_hour", "0"))  # 0: no limit
    _batch(pipeline, detection, handle, T0 + 1000, [(3, 0.7, "alpha1"), (4, 0.7, "alpha1")])
    assert sum(why is None for why in _cards(store).values()) == 3
    for key, value, message in (("scanner.max_cards_per_hour", "-1", "expected a value >= 0"),
                                ("scanner.max_cards_per_day", "5", "expected 0 (no limit) or >= scanner.max_cards_per_hour (20)"),
                                ("scanner.max_cards_per_hour", "lots", "expected an integer")):  # fmt: skip
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            set_value(Config(), key, value)


def test_budget_unit_restore_expires_a_day_old_card() -> None:
    budget = CardBudget()
    budget.restore([(T0, 0.5)])
    limits = SimpleNamespace(max_cards_per_hour=0, max_cards_per_day=1)
    assert budget.check(T0 + 1000, 0.9, limits) == "card budget: 1 cards per day used"  # type: ignore[arg-type]
    assert budget.check(T0 + 24 * 3_600_000, 0.9, limits) is None  # type: ignore[arg-type]


def test_stats_name_the_budget_only_when_it_held_cards_back() -> None:
    base = {"signals": 3, "signals_per_hour": 0.1, "buys": 0, "skips": 0, "paper_orders": 0, "live_orders": 0}
    plain = "Last 24 h: 3 signals (0.10/h), 0 buys, 0 skips, 0 paper and 0 live orders."
    assert commands.format_stats(base) == plain
    assert commands.format_stats({**base, "suppressed": 2, "suppressed_budget": 0}) == plain  # paused: /pause says so
    assert commands.format_stats({**base, "suppressed": 2, "suppressed_budget": 1, "suppressed_budget_top_prob": 0.7}) == (
        plain + "\nNo card for 2 of them; 1 held back by the card budget (strongest prob 0.700; "
        "scanner.max_cards_per_hour / max_cards_per_day).")
