"""Command answers and authorisation, without Telegram: pure functions of state and replies."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from telegram import Chat, Message, Update, User

from bot import commands
from bot.auth import is_allowed
from common.config import Config, config_from_mapping
from common.messages import CfgReply, CfgSave, CfgSet, StatusReply


class _Mutes:
    """The card store's mute list, in memory (bot/mutes.py's three calls)."""

    def __init__(self) -> None:
        self.muted: dict[tuple[int, str], int] = {}

    def mutes(self, chat_id: int, now_ns: int) -> list[tuple[str, int]]:
        return [(s, until) for (c, s), until in self.muted.items() if c == chat_id and until > now_ns]

    def mute(self, chat_id: int, symbol: str, until_ns: int) -> None:
        self.muted[chat_id, symbol] = until_ns

    def unmute(self, chat_id: int, symbol: str) -> bool:
        return self.muted.pop((chat_id, symbol), None) is not None


class State:
    """Stands in for the running bot: a supervisor that answers (or not) with a fixed reply."""

    def __init__(self, reply: Any) -> None:
        self.config: Config = config_from_mapping({"telegram": {"token": "123:SECRET-TOKEN", "allowed_ids": [1, 2]}}, environ={})
        self.paused = False
        self.request_timeout_s = 5.0
        self.reply = reply
        self.asked: list[Any] = []
        self.outcome_windows: list[int] = []
        self.cards = SimpleNamespace(cards=_Mutes())  # /mute, /unmute, /mutes read it

    async def ask_supervisor(self, kind: type[Any], **fields: Any) -> Any:
        self.asked.append(kind(req_id=1, **fields))
        return self.reply

    def stats(self, since_ns: int) -> dict[str, Any]:
        return {"signals": 12, "signals_per_hour": 0.5, "buys": 2, "skips": 3, "paper_orders": 2, "live_orders": 0}

    def outcome_stats(self, since_ns: int) -> dict[str, Any]:
        self.outcome_windows.append(since_ns)
        if since_ns > 0:  # a window with nothing closed yet
            return {"hit": 0, "miss": 0, "unknown": 0, "TP": 0, "SL": 0, "TIMEOUT": 0, "hit_rate": None}
        return {"hit": 3, "miss": 5, "unknown": 1, "TP": 2, "SL": 4, "TIMEOUT": 2, "hit_rate": 0.375}

    def unsent_count(self) -> int:
        return 4


def _update(user_id: int | None) -> Update:
    user = User(user_id, False, "u") if user_id is not None else None
    return Update(1, message=Message(1, None, Chat(user_id or 5, "private"), from_user=user, text="/status"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "status",
    [{}, {"processes": None}, {"processes": ["junk", {"name": "x"}], "links": "many", "latency_p95_ms": float("nan")},
     {"processes": [{"name": "shard-0", "cpu_percent": None, "rss_bytes": -1, "uptime_s": float("inf")}]}],
)  # fmt: skip
def test_status_formatting_never_fails_on_odd_supervisor_data(status: dict[str, Any]) -> None:
    text = commands.format_status(status)
    assert "latency p95" in text and "links" in text


def test_status_shows_every_process_and_counter() -> None:
    text = commands.format_status({
        "processes": [{"name": "supervisor", "pid": 10, "cpu_percent": 3.25, "rss_bytes": 80 * 2**20, "pss_bytes": 40 * 2**20, "uptime_s": 90061},
                      {"name": "shard-1", "pid": 11, "cpu_percent": 55.0, "rss_bytes": 30 * 2**20, "pss_bytes": 12 * 2**20, "uptime_s": 59}],
        "links": 7, "streams": 210, "frames_per_s": 812.4, "reconnects": 1, "latency_p95_ms": None, "pairs_watched": 70, "signals_last_hour": 0})  # fmt: skip
    assert text.splitlines() == [
        "supervisor (pid 10): CPU 3.2%  RSS 80 MB  PSS 40 MB  up 1d 1h 01m",
        "shard-1 (pid 11): CPU 55.0%  RSS 30 MB  PSS 12 MB  up 0h 00m",
        "links 7, streams 210, 812 frames/s, reconnects 1",
        "latency p95 n/a, pairs 70, signals last hour 0",
    ]


async def test_cfg_alone_masks_secrets_and_cfg_set_shows_the_refusal_reason() -> None:
    state = State(CfgReply(1, False, "detectors.pump.profiles.alpha1.vsr_min: must be >= 1"))
    shown = await commands.answer(state, "cfg", [])
    assert "telegram.token = ***" in shown and "SECRET" not in shown and "telegram.allowed_ids = 1,2" in shown
    assert state.asked == [] and await commands.answer(state, "show_config", []) == shown
    assert await commands.answer(state, "cfg", ["detectors.pump.profiles.alpha1.vsr_min", "0"]) == "Refused, nothing changed: detectors.pump.profiles.alpha1.vsr_min: must be >= 1"
    assert state.asked == [CfgSet(1, "detectors.pump.profiles.alpha1.vsr_min", "0")]
    assert (await commands.answer(state, "cfg", ["one", "two", "three"])).startswith("Usage: /cfg")


async def test_cfg_with_a_key_shows_its_value_and_save_asks_the_supervisor() -> None:
    state = State(CfgReply(1, True, "saved detectors.pump.profiles.alpha1.vsr_min to /data/config.overrides.yaml"))
    assert await commands.answer(state, "cfg", ["detectors.pump.profiles.alpha1.vsr_min"]) == "detectors.pump.profiles.alpha1.vsr_min = 5.0"
    assert await commands.answer(state, "cfg", ["telegram.token"]) == "telegram.token = ***"
    assert "unknown key" in await commands.answer(state, "cfg", ["scanner.nope"])
    assert "unknown key" in await commands.answer(state, "cfg", ["nope"])
    assert state.asked == []
    assert (await commands.answer(state, "cfg", ["save"])).startswith("Saved: saved detectors.pump.profiles.alpha1.vsr_min")
    assert state.asked == [CfgSave(1)]


async def test_commands_without_a_supervisor_answer_say_so() -> None:
    state = State(None)
    for name in ("status", "health", "reload"):
        assert (await commands.answer(state, name, [])).startswith("The supervisor did not answer within 5 s")


async def test_pause_resume_stats_health() -> None:
    state = State(StatusReply(1, {"processes": [{"name": "s"}], "links": 3, "pairs_watched": 30}))
    await commands.answer(state, "pause", [])
    assert state.paused
    assert await commands.answer(state, "health", []) == "OK: 1 processes, 3 links, 30 pairs; cards paused, 4 waiting to be sent."
    await commands.answer(state, "resume", [])
    assert not state.paused
    before = time.time_ns()
    assert (await commands.answer(state, "stats", [])).splitlines() == [
        "Last 24 h: 12 signals (0.50/h), 2 buys, 3 skips, 2 paper and 0 live orders.",
        "Outcomes 24 h: hit rate n/a (0 hit / 0 miss); TP 0, SL 0, TIMEOUT 0",
        "Outcomes 7 d: hit rate n/a (0 hit / 0 miss); TP 0, SL 0, TIMEOUT 0",
        "Outcomes all: hit rate 38 % (3 hit / 5 miss, 1 unknown); TP 2, SL 4, TIMEOUT 2",
    ]
    day, week, everything = state.outcome_windows
    assert everything == 0 and abs((day - week) / 1e9 - 6 * 86400) < 5 and abs((before - day) / 1e9 - 86400) < 5


def test_only_allowed_ids_pass_and_an_empty_list_refuses_everyone() -> None:
    assert is_allowed(_update(1), [1, 2])
    assert not is_allowed(_update(3), [1, 2])
    assert not is_allowed(_update(None), [1, 2])
    assert not is_allowed(_update(1), [])
