"""Steering a running service: /cfg, /cfg save, /reload and SIGHUP, and the bot's requests.

Why the supervisor validates and the bot only asks: the config is one object shared by every
part the supervisor composes (detectors, planning, outcome watches); a change is validated as a
whole and applied to all of them at once, or refused and nothing changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.config import Config, ConfigError, set_value
from common.messages import (
    CfgReply,
    CfgSave,
    CfgSet,
    Message,
    Notice,
    Reload,
    StatusReply,
    StatusRequest,
    TopRequest,
    WatchPrices,
)
from supervisor.overrides import load_effective_config, overrides_path, save_overrides

log = logging.getLogger("scanner.supervisor.control")



def needs_models(key: str) -> bool:
    """A change of this key needs the models read again (a profile owns its model file)."""
    return key.startswith("detectors.") and key.endswith((".model_path", ".enabled_profiles"))


class Control:
    """Holds the running config; changes it through validation and tells every part.

    load_models(config) -> models raises on a bad model; apply(config, models) installs both.
    """

    def __init__(self, config_path: Path, config: Config, load_models: Callable[[Config], Any], apply: Callable[[Config, Any], None],
                 status: Callable[[], dict[str, Any]], tell_bot: Callable[[Message], bool]) -> None:  # fmt: skip
        self.config_path = config_path
        self.config = config
        self.load_models = load_models
        self.apply = apply
        self.status = status
        self.tell_bot = tell_bot
        self.unsaved: dict[str, str] = {}  # /cfg changes of this run not yet in the overrides file
        self.top: Callable[[int, int], dict[str, Any]] = lambda window_s, n: {}  # /top's figures
        self.on_watch_prices: Callable[[list[str]], None] = lambda symbols: None  # the bot's held pairs

    def set_value(self, key: str, value: str) -> tuple[bool, str]:
        """The /cfg path: validate as a whole, apply, or change nothing and say why."""
        try:
            new = set_value(self.config, key, value)
            models = self.load_models(new) if needs_models(key) else None
        except (ConfigError, OSError, ValueError) as exc:
            return False, str(exc)
        self.config = new
        self.apply(new, models)
        self.unsaved[key] = value
        log.info("config changed", extra={"key": key})
        return True, f"{key} = {value} (until the next /reload or restart; /cfg save keeps it)"

    def save(self) -> tuple[bool, str]:
        """/cfg save: write this run's /cfg changes to the overrides file, applied on every reload."""
        path = overrides_path(self.config)
        if not self.unsaved:
            return False, f"nothing to save: no /cfg change since the last reload or save ({path})"
        try:
            saved = save_overrides(path, self.unsaved)
        except (OSError, ConfigError) as exc:
            return False, f"could not write {path}: {exc}"
        keys = ", ".join(sorted(self.unsaved))
        self.unsaved = {}
        log.info("config overrides saved", extra={"path": str(path), "keys": keys})
        return True, f"saved {keys} to {path} ({len(saved)} override(s) in all); they now survive /reload and restarts"

    def reload(self, notify: bool = False) -> tuple[bool, str]:
        """Re-read config.yaml (+ saved overrides) and the models (SIGHUP, /reload); keep the old ones on error.

        notify: tell the owner in Telegram (SIGHUP: nobody else would see a refusal).
        """
        try:
            new = load_effective_config(self.config_path)
            models = self.load_models(new)
        except (ConfigError, OSError, ValueError) as exc:
            log.error("reload refused", extra={"error": str(exc)})
            if notify:
                self.tell_bot(Notice(f"⚠️ Reload (SIGHUP) refused, the running config is unchanged: {exc}"))
            return False, f"reload refused: {exc}"
        dropped = sorted(self.unsaved)
        self.unsaved = {}
        self.config = new
        self.apply(new, models)
        log.info("config reloaded", extra={"unsaved_dropped": ",".join(dropped)})
        note = f"; unsaved /cfg changes dropped: {', '.join(dropped)}" if dropped else ""
        return True, "config.yaml, saved overrides and models reloaded" + note

    def on_sighup(self) -> None:
        self.reload(notify=True)

    def handle(self, message: Message) -> None:
        """A request from the bot; every request gets exactly one reply."""
        if isinstance(message, StatusRequest):
            self.tell_bot(StatusReply(message.req_id, self.status()))
        elif isinstance(message, CfgSet):
            ok, text = self.set_value(message.key, message.value)
            self.tell_bot(CfgReply(message.req_id, ok, text))
        elif isinstance(message, CfgSave):
            ok, text = self.save()
            self.tell_bot(CfgReply(message.req_id, ok, text))
        elif isinstance(message, Reload):
            ok, text = self.reload()
            self.tell_bot(CfgReply(message.req_id, ok, text))
        elif isinstance(message, TopRequest):  # /top: the pipeline's movers (supervisor/app.py sets self.top)
            self.tell_bot(StatusReply(message.req_id, self.top(message.window_s, message.n)))
        elif isinstance(message, WatchPrices):  # the held pairs (supervisor/exit_prices.py; app.py sets the hook)
            self.on_watch_prices(message.symbols)
        else:
            log.warning("ignored a message from the bot", extra={"kind": type(message).__name__})
