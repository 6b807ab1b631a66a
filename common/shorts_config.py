"""The config schema of the post-pump short watcher: `shorts.…` in config.yaml (issue #19).

Why a module of its own and a top-level section: the watcher is not a profile of the spot
feature rows (it follows a pump that another detector, or an outside bot, already announced),
and common/config.py must stay small. common/config.py registers the section as `Config.shorts`;
every key is reachable by `/cfg shorts.take_profit_pct 4` and reloaded by SIGHUP.

Units: a key ending in `_pct` is in percent (3.0 = 3 %); `_minutes` and `_s` are exchange time.
A change applies to watches started after it (a running watch keeps the levels it started with,
and its row in the `watches` table records them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ENTRY_KINDS = ("EARLY", "CONFIRM")
_PCT = {"min": 0.0, "max": 100.0}


@dataclass
class ShortsConfig:
    """shorts: the watcher (detectors/short_watch.py), its intake and its Telegram messages."""

    enabled: bool = True  # every pump signal of the scanner starts a watch (issue #19: on by default)
    # --- filters before a watch starts
    min_pump_pct: float = field(default=8.0, metadata=_PCT)  # the pump's size, percent
    pump_window_minutes: float = field(default=10.0, metadata={"min": 0.0, "max": 1440.0})  # pump_ts this recent; 0 = any age
    max_concurrent: int = field(default=5, metadata={"min": 1, "max": 100})  # active watches at once
    cooldown_minutes: float = field(default=45.0, metadata={"min": 0.0, "max": 10080.0})  # per symbol, from a watch's start
    watch_max_minutes: float = field(default=180.0, metadata={"min": 5.0, "max": 10080.0})  # no entry by then: EXPIRED
    # --- structure on 5-minute bars (stages) and arming
    drop_pct: float = field(default=4.0, metadata={"min": 0.1, "max": 90.0})  # a 5m close this far under the high = a drop
    bounce_pct: float = field(default=2.0, metadata={"min": 0.1, "max": 90.0})  # a 5m high this far over the low = a bounce
    arm_stage: int = field(default=1, metadata={"min": 1, "max": 4})  # ARMED from this stage on (1 DROP1 ... 4 BOUNCE2)
    armed_max_minutes: float = field(default=30.0, metadata={"min": 1.0, "max": 1440.0})  # ARMED without entry: back to WATCHING_5M
    # --- entries while ARMED
    entry_kinds: list[str] = field(default_factory=lambda: list(ENTRY_KINDS))  # EARLY (fast window), CONFIRM (1m bars)
    fast_window_s: float = field(default=15.0, metadata={"min": 5.0, "max": 120.0})  # EARLY's window
    early_drop_pct: float = field(default=1.5, metadata={"min": 0.05, "max": 50.0})  # price this far under the window's high
    early_buy_share_max: float = field(default=0.45, metadata={"min": 0.0, "max": 1.0})  # taker-buy share of 10 s at most
    # --- outcome after ENTRY_OK (signals only: nothing is traded). drop_pct, arm_stage, entry_kinds and
    # these levels are the ones perf/eval_shorts.py --tune chose on real pumps (README "Short watcher").
    take_profit_pct: float = field(default=15.0, metadata={"min": 0.1, "max": 90.0})
    stop_loss_pct: float = field(default=12.0, metadata={"min": 0.1, "max": 90.0})
    outcome_timeout_minutes: float = field(default=60.0, metadata={"min": 1.0, "max": 10080.0})
    # --- outputs
    snapshots: bool = True  # one CSV row per evaluation under $SCANNER_DATA_DIR/shorts/
    notify_start: bool = True  # Telegram message at WATCH_START ...
    notify_entry: bool = True  # ... at ENTRY_OK ...
    notify_outcome: bool = True  # ... and at the outcome (the original's TG_SEND_OUTCOME)
    # --- HTTP intake: POST /pump; off while intake_token (PUMP_INTAKE_TOKEN) is empty
    intake_host: str = "127.0.0.1"
    intake_port: int = field(default=8010, metadata={"min": 1, "max": 65535})
    intake_token: str = field(default="", metadata={"secret": True})


def shorts_problems(config: ShortsConfig) -> list[str]:
    """Cross-field problems of the section, each a ConfigError message naming its full key."""
    out = []
    for i, kind in enumerate(config.entry_kinds):
        if kind not in ENTRY_KINDS:
            out.append(f"shorts.entry_kinds[{i}]: got {kind!r}, expected one of {', '.join(ENTRY_KINDS)}")
    if not config.entry_kinds:
        out.append(f"shorts.entry_kinds: got [], expected at least one of {', '.join(ENTRY_KINDS)}")
    return out


__all__ = ["ENTRY_KINDS", "ShortsConfig", "shorts_problems"]
