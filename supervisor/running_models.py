"""The models the scorer runs: what /model shows, and the hot swap of a self-trained model.

Why a module of its own: the swap touches the running config (a profile's model_path and
prob_threshold), the saved overrides (so a restart keeps the new model) and the scorer, and must be
all or nothing; Control already does exactly that for /cfg, so the swap goes through it.

The trainer (supervisor/selftrain.py, run daily) never touches a file the service reads: it writes
the winning model to a new file under SCANNER_DATA_DIR/models/ and then, last, replaces
models/install.json (write + os.replace, atomic). The supervisor polls that file's content; a
new install id is applied once (models/install.applied keeps it across restarts, so a record
written while the service was down is applied at start): config copy with the new model_path and prob_threshold, models
loaded and validated, then scorer and config switched in one call (Control.apply), the keys saved
to the overrides file, a log line and an owner notice. A model that fails to load changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from common.config import Config, ConfigError, set_value
from common.messages import Notice
from detectors.registry import DETECTORS
from supervisor.overrides import overrides_path, save_overrides

log = logging.getLogger("scanner.supervisor.models")

INSTALL_FILE = "install.json"
APPLIED_FILE = "install.applied"  # the id of the last record this service applied (or refused)
# Validation figures /model shows from a model's "trained" block (supervisor/train.py, selftrain.py).
CHECK_KEYS = ("recall", "events_meeting_target", "median_delay_after_cross10_s", "false_signals_per_coin_day",
              "background_coin_days", "mean_ret_pct")  # fmt: skip


def models_dir(config: Config) -> Path:
    return Path(config.storage.data_dir) / "models"


def summaries(config: Config, models: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One plain dict per running model (the /model answer's data, sent in the status reply)."""
    out = []
    for name, by_profile in models.items():
        section = DETECTORS[name].section(config.detectors)
        for profile, model in by_profile.items():
            settings = DETECTORS[name].settings(section, profile)
            trained = dict(model.trained or {})
            oof = trained.get("event_check_oof") if isinstance(trained.get("event_check_oof"), dict) else {}  # a hand-edited file
            if isinstance(trained.get("cv_nested"), dict):  # chosen by perf.eval_select: trader's figures under nested CV
                trained, oof = _from_eval_select(trained)
            out.append({
                "detector": name, "profile": profile, "model_path": settings.model_path,
                "prob_threshold": settings.prob_threshold, "features": len(model.features),
                "trained": {k: trained[k] for k in ("date", "events", "rows", "label", "cv", "auc_oof", "threshold", "source",
                                                     "holdout") if k in trained},
                "check": {k: oof.get(k) for k in CHECK_KEYS} if trained else {},
            })  # fmt: skip
    return out


def _from_eval_select(trained: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """perf.eval_select's record (model JSON "trained") in the keys /model shows for supervisor.train's."""
    cv = trained["cv_nested"]
    delay = ((cv.get("delay_ms") or {}).get("t_rel_cross10_ms") or {}).get("median")
    trader = cv.get("trader_fixed") if isinstance(cv.get("trader_fixed"), dict) else {}
    out = dict(trained, source=trained.get("by", "perf.eval_select"), rows=trained.get("rows_fitted"), label="pump onset",
               cv="nested, event-grouped")  # fmt: skip
    check = {"recall": cv.get("recall"), "events_meeting_target": cv.get("events_meeting_10pct_20min"),
             "median_delay_after_cross10_s": delay / 1000 if isinstance(delay, (int, float)) else None,
             "false_signals_per_coin_day": cv.get("false_signals_per_coin_day"), "mean_ret_pct": trader.get("mean_ret_pct")}  # fmt: skip
    return out, check


def last_selftrain(config: Config) -> dict[str, Any] | None:
    """When the self-training job last ran and what it decided (models/selftrain-last.json), for /model."""
    try:
        report = json.loads((models_dir(config) / "selftrain-last.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {k: report.get(k) for k in ("finished", "profile", "installed", "reason")} if isinstance(report, dict) else None


def write_install(directory: Path, record: dict[str, Any]) -> Path:
    """The trainer's last step: install.json replaced atomically (a reader sees the old or the new, never half)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / INSTALL_FILE
    tmp = directory / f".{INSTALL_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


class ModelInstaller:
    """Polled by the supervisor: applies a new models/install.json once, through Control."""

    def __init__(self, control: Any) -> None:
        self.control = control
        # What a previous run already applied or refused is not applied again; a record written while
        # the service was down is applied at the first poll.
        try:
            self.applied: str | None = (models_dir(control.config) / APPLIED_FILE).read_text(encoding="utf-8").strip()
        except OSError:
            self.applied = None

    def _read(self) -> dict[str, Any] | None:
        path = models_dir(self.control.config) / INSTALL_FILE
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.error("model install record unreadable", extra={"path": str(path), "error": str(exc)[:200]})
            return None
        return record if isinstance(record, dict) else None

    def poll(self) -> bool:
        """Apply a new install record; True when a model was swapped in."""
        record = self._read()
        if record is None or str(record.get("id")) == self.applied:
            return False
        self.applied = str(record.get("id"))
        try:
            (models_dir(self.control.config) / APPLIED_FILE).write_text(self.applied + "\n", encoding="utf-8")
        except OSError as exc:
            log.warning("could not note the applied model install", extra={"error": str(exc)[:200]})
        try:
            return self.install(record)
        except Exception:  # noqa: BLE001 - the tick loop (health, watchdog) must outlive any bad record
            log.exception("self-trained model install failed, the running model stays")
            return False

    def install(self, record: dict[str, Any]) -> bool:
        """Swap the record's model in (config + scorer at once, saved for restarts), or change nothing and say why."""
        control = self.control
        try:
            detector, profile = str(record["detector"]), str(record["profile"])
            prefix = f"detectors.{detector}.profiles.{profile}"
            changes = {f"{prefix}.model_path": str(record["model_path"]), f"{prefix}.prob_threshold": repr(float(record["prob_threshold"]))}
            new = control.config
            for key, value in changes.items():
                new = set_value(new, key, value)
            models = control.load_models(new)
        except (KeyError, TypeError, ConfigError, OSError, ValueError) as exc:
            log.error("self-trained model refused, the running model stays", extra={"error": str(exc)[:300]})
            control.tell_bot(Notice(f"⚠️ Self-trained model refused, the running model stays: {exc}"))
            return False
        control.config = new
        control.apply(new, models)
        try:
            save_overrides(overrides_path(new), changes)
        except (OSError, ConfigError) as exc:  # running, but a restart would go back to the old model
            log.error("self-trained model not saved to the overrides file", extra={"error": str(exc)[:200]})
        log.info("self-trained model installed", extra={"profile": profile, "model_path": changes[f"{prefix}.model_path"],
                                                          "prob_threshold": record["prob_threshold"], "reason": str(record.get("reason"))[:300]})  # fmt: skip
        control.tell_bot(Notice(f"🧠 New {profile} model running ({Path(str(record['model_path'])).name}, threshold "
                                f"{float(record['prob_threshold']):.4g}): {record.get('reason', '')}"))  # fmt: skip
        return True
