"""Episodes are stored once per (strategy, symbol, start), their log line is appended once, and both survive a reopen."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from store.episodes import EpisodeStore
from store.history import Store


def _add(
    store: EpisodeStore, strategy: int = 1, symbol: str = "PEPE_USDT", start_ms: int = 1_790_000_000_000, line: str = ""
) -> bool:
    return store.add_episode(strategy, symbol, start_ms, start_ms + 90_000, 1.034, 0.0121, 0.0117, start_ms + 30_000,
                             "ratio_back", {"ticks": 45, "book": None}, line or f"{symbol} s{strategy} {start_ms}")  # fmt: skip


def test_a_replayed_episode_is_stored_and_logged_once_and_both_survive_a_reopen(tmp_path: Path) -> None:
    store = EpisodeStore(tmp_path)
    assert _add(store) is True
    assert _add(store) is False  # replayed: same strategy, symbol, start
    assert _add(store, strategy=2) is True  # same episode seen by another strategy is its own row
    assert _add(store, symbol="DOGE_USDT") is True
    assert _add(store, start_ms=1_790_000_500_000, line="second\nepisode") is True
    assert store.counts() == {1: 3, 2: 1, 3: 0, 4: 0}
    log1 = store.log_path(1)
    assert log1 == tmp_path / "logs" / "strategy1_episodes.log"
    assert log1.read_text().splitlines() == [
        "PEPE_USDT s1 1790000000000",
        "DOGE_USDT s1 1790000000000",
        "second episode",
    ]
    assert store.log_path(2).read_text() == "PEPE_USDT s2 1790000000000\n"
    assert not store.log_path(3).exists()
    store.close()

    again = EpisodeStore(tmp_path)  # a restart replays the same window
    assert _add(again) is False and _add(again, strategy=2) is False
    assert again.counts() == {1: 3, 2: 1, 3: 0, 4: 0}
    assert len(log1.read_text().splitlines()) == 3
    first = again.episodes(0, strategy=1)[0]
    assert (first.symbol, first.end_ms - first.start_ms, first.peak_ratio, first.ended_by) == (
        "DOGE_USDT",
        90_000,
        1.034,
        "ratio_back",
    )
    assert first.extra == {"ticks": 45, "book": None}
    assert [e.start_ms for e in again.episodes(1_790_000_100_000)] == [1_790_000_500_000]  # ended at or after since
    again.close()


def test_episodes_share_the_history_file_without_disturbing_it(tmp_path: Path) -> None:
    history = Store(tmp_path)
    episodes = EpisodeStore(tmp_path)
    assert _add(episodes)
    assert history.db.execute("SELECT COUNT(*) FROM episodes").fetchone()[0] == 1
    assert history.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert history.db.execute("PRAGMA user_version").fetchone()[0] == 2  # an added table, not a new version
    Store(tmp_path)  # reopening the history keeps the episodes
    assert EpisodeStore(tmp_path).counts()[1] == 1
    tables = {
        r[0]
        for r in sqlite3.connect(tmp_path / "scanner.sqlite3").execute(
            "SELECT name FROM sqlite_master WHERE type='table'"
        )
    }
    assert {"signals", "outcomes", "episodes"} <= tables


@pytest.mark.parametrize(
    "change",
    [
        {"strategy": 5},
        {"peak_ratio": math.nan},
        {"peak_fair": math.inf},
        {"end_ms": 1},
        {"extra": {"x": math.nan}},
        {"extra": {"x": object()}},
        {"peak_ms": -1},
        {"symbol": ""},
    ],  # fmt: skip
)
def test_a_bad_episode_is_refused_before_anything_is_written(tmp_path: Path, change: dict[str, object]) -> None:
    store = EpisodeStore(tmp_path)
    args: dict[str, object] = dict(strategy=1, symbol="PEPE_USDT", start_ms=1000, end_ms=2000, peak_ratio=1.03, peak_last=1.0,
                                   peak_fair=0.97, peak_ms=1500, ended_by="gap", extra={}, log_line="x")  # fmt: skip
    args.update(change)
    with pytest.raises(ValueError):
        store.add_episode(**args)  # type: ignore[arg-type]
    assert store.counts() == {1: 0, 2: 0, 3: 0, 4: 0}
    assert not any((tmp_path / "logs").iterdir())


def test_a_failed_log_write_rolls_the_row_back_so_a_retry_stores_both(tmp_path: Path) -> None:
    store = EpisodeStore(tmp_path)

    class Broken:
        closed = False

        def write(self, _: str) -> int:
            raise OSError("disk full")

    store._logs[1] = Broken()  # type: ignore[assignment]
    with pytest.raises(OSError):
        _add(store)
    assert store.counts()[1] == 0
    del store._logs[1]
    assert _add(store) is True
    assert store.log_path(1).read_text().count("\n") == 1
