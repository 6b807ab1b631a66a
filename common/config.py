"""Load and validate config.yaml.

Why a hand-rolled schema: the file is small, every key must be checked (unknown keys are an
error, so a typo never silently falls back to a default), and environment substitution must
happen per value so that secrets never pass through YAML parsing of the raw text.

Substitution forms (in any string value):
    ${NAME}            the variable must be set, else a ConfigError naming the key
    ${NAME:-default}   the default when NAME is unset or empty
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from common.arb_config import ArbConfig, arb_problems
from common.cards_config import CardsConfig
from common.detector_config import MOVED_KEYS, DetectorsConfig
from common.futures_config import FuturesConfig, futures_problems
from common.shorts_config import ShortsConfig, shorts_problems
from common.trading_config import TradingConfig, trading_problems

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


class ConfigError(ValueError):
    """A config value is missing, of the wrong type, out of range or unknown."""


@dataclass
class MexcConfig:
    ws_url: str = "wss://wbs-api.mexc.com/ws"
    rest_url: str = "https://api.mexc.com"
    api_key: str = field(default="", metadata={"secret": True})
    api_secret: str = field(default="", metadata={"secret": True})
    deals_interval: str = field(default="100ms", metadata={"choices": ("100ms", "10ms")})
    depth_interval: str = field(default="100ms", metadata={"choices": ("100ms", "10ms")})
    rest_weight_per_10s: int = field(default=400, metadata={"min": 1, "max": 500})
    rest_timeout_s: float = field(default=10.0, metadata={"min": 0.1})


@dataclass
class ScannerConfig:
    """Infrastructure of the row path: shard processes and their rings."""

    shards: int = field(default=0, metadata={"min": 0, "max": 64})  # 0 = one per CPU
    ring_rows: int = field(default=32768, metadata={"min": 64})
    # Card budget (supervisor/budget.py): beyond it only the strongest signals become cards, the
    # rest are stored suppressed (/stats counts them). 0 = no limit.
    max_cards_per_hour: int = field(default=20, metadata={"min": 0, "max": 100_000})
    max_cards_per_day: int = field(default=100, metadata={"min": 0, "max": 1_000_000})
    # Detector settings (thresholds, models, cooldown) live under detectors: (common/detector_config.py).


@dataclass
class ScoutConfig:
    poll_interval_s: float = field(default=60.0, metadata={"min": 1.0})
    exchange_info_interval_s: float = field(default=3600.0, metadata={"min": 10.0})
    quote_asset: str = "USDT"
    min_quote_vol_usd: float = field(default=100_000.0, metadata={"min": 0.0})
    top_n: int = field(default=0, metadata={"min": 0})
    quality_spread_max: float = field(default=0.015, metadata={"min": 0.0})
    quality_min_quote_vol_5m: float = field(default=20_000.0, metadata={"min": 0.0})
    recheck_interval_s: float = field(default=900.0, metadata={"min": 1.0})


@dataclass
class WsConfig:
    max_streams_per_conn: int = field(default=30, metadata={"min": 1, "max": 30})
    max_msg_per_sec: int = field(default=50, metadata={"min": 1, "max": 100})
    ping_interval_s: float = field(default=20.0, metadata={"min": 1.0, "max": 55.0})
    idle_timeout_s: float = field(default=45.0, metadata={"min": 2.0})
    reconnect_min_s: float = field(default=0.5, metadata={"min": 0.05})
    reconnect_max_s: float = field(default=30.0, metadata={"min": 0.1})
    planned_reconnect_s: float = field(default=23 * 3600.0, metadata={"min": 60.0, "max": 86000.0})


@dataclass
class TelegramConfig:
    token: str = field(default="", metadata={"secret": True})
    base_url: str = "https://api.telegram.org/bot"
    allowed_ids: list[int] = field(default_factory=list)
    send_timeout_s: float = field(default=10.0, metadata={"min": 0.5})
    chat_ids: list[int] = field(default_factory=list)  # where cards go (a channel or group); empty: each allowed user's chat
    cards: CardsConfig = field(default_factory=CardsConfig)  # common/cards_config.py


@dataclass
class StorageConfig:
    data_dir: str = "./data"
    parquet: bool = True
    # Signals, outcomes, decisions and futures episodes older than this leave SQLite (store/retention.py); 0 keeps all.
    retention_days: int = field(default=365, metadata={"min": 0, "max": 36500})


@dataclass
class RecorderConfig:
    """Tick dumps of every received trade (shards/recorder.py); off by default."""

    enabled: bool = False
    dir: str = "./data/ticks"
    max_mb: float = field(default=2000.0, metadata={"min": 1.0})
    max_hours: int = field(default=168, metadata={"min": 1})
    flush_interval_s: float = field(default=5.0, metadata={"min": 0.1, "max": 600.0})
    max_buffer_frames: int = field(default=200_000, metadata={"min": 100})


@dataclass
class MetricsConfig:
    host: str = "127.0.0.1"
    port: int = field(default=8000, metadata={"min": 0, "max": 65535})
    # /healthz: unhealthy when no pair is subscribed this long after start, or no link is up this long.
    health_startup_grace_s: float = field(default=180.0, metadata={"min": 1.0})
    health_links_down_s: float = field(default=60.0, metadata={"min": 1.0})


@dataclass
class OutcomeConfig:
    """The post-signal watcher (supervisor/outcome.py); levels are fractions of the signal price.

    A change applies to watches opened after it; a watch keeps the levels it was opened with
    (they are stored with its outcome).
    """

    horizon_s: float = field(default=1200.0, metadata={"min": 10.0, "max": 86400.0})
    hit_gain: float = field(default=0.10, metadata={"min": 0.001, "max": 10.0})
    take_profit: float = field(default=0.10, metadata={"min": 0.001, "max": 10.0})
    stop_loss: float = field(default=0.05, metadata={"min": 0.001, "max": 0.99})


@dataclass
class LoggingConfig:
    level: str = field(
        default="INFO", metadata={"choices": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")}
    )
    # Also write JSON lines to this file, rotated (common/logs.py); empty: stderr only (Docker, journald).
    file: str = ""
    file_max_mb: float = field(default=20.0, metadata={"min": 1.0, "max": 10000.0})
    file_backups: int = field(default=5, metadata={"min": 1, "max": 100})


@dataclass
class Config:
    mexc: MexcConfig = field(default_factory=MexcConfig)
    scanner: ScannerConfig = field(default_factory=ScannerConfig)
    detectors: DetectorsConfig = field(default_factory=DetectorsConfig)
    scout: ScoutConfig = field(default_factory=ScoutConfig)
    ws: WsConfig = field(default_factory=WsConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    recorder: RecorderConfig = field(default_factory=RecorderConfig)
    trading: TradingConfig = field(default_factory=TradingConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    outcome: OutcomeConfig = field(default_factory=OutcomeConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    futures: FuturesConfig = field(default_factory=FuturesConfig)  # common/futures_config.py
    shorts: ShortsConfig = field(default_factory=ShortsConfig)  # common/shorts_config.py
    arb: ArbConfig = field(default_factory=ArbConfig)  # common/arb_config.py

    def secrets(self) -> list[str]:
        """Every non-empty secret value, so logging and /cfg can mask them."""
        return [str(v) for _, v, secret in _leaves(self) if secret and v]

    def to_public_dict(self) -> dict[str, dict[str, Any]]:
        """The config as plain data with secrets masked (for /cfg and logs).

        Two levels whatever the nesting: section -> {dotted key inside the section: value}, e.g.
        {"detectors": {"pump.profiles.alpha1.vsr_min": 5.0}}, so "section.key" is always the /cfg key.
        """
        out: dict[str, dict[str, Any]] = {}
        for dotted, value, secret in _leaves(self):
            section, _, key = dotted.partition(".")
            out.setdefault(section, {})[key] = ("***" if value else "") if secret else value
        return out


def _leaves(obj: Any, prefix: str = "") -> list[tuple[str, Any, bool]]:
    """(dotted key, value, is_secret) of every setting, nested sections flattened in field order."""
    out: list[tuple[str, Any, bool]] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out += _leaves(value, f"{prefix}{f.name}.")
        else:
            out.append((f"{prefix}{f.name}", value, bool(f.metadata.get("secret"))))
    return out


def substitute_env(text: str, key: str, environ: Mapping[str, str]) -> str:
    """Replace ${NAME} and ${NAME:-default} in one value; key names the value in errors."""

    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if value:
            return value
        if default is not None:
            return default
        raise ConfigError(f"{key}: environment variable {name} is not set (write ${{{name}:-default}} to allow that)")

    return _ENV_PATTERN.sub(repl, text)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def coerce_value(key: str, value: Any, tp: Any, metadata: Mapping[str, Any]) -> Any:
    """Turn a YAML or text value into the declared type, or raise a ConfigError naming it."""
    origin = typing.get_origin(tp)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str):
            items: list[Any] = [part.strip() for part in value.split(",") if part.strip()]
        elif isinstance(value, list):
            items = value
        elif value is None:
            items = []
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [value]
        else:
            raise ConfigError(f"{key}: got {value!r}, expected a list of {_type_name(item_tp)} (YAML list or comma-separated)")
        return [coerce_value(f"{key}[{i}]", item, item_tp, {}) for i, item in enumerate(items)]
    if tp is bool:
        if isinstance(value, bool):
            result: Any = value
        elif isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1"):
            result = True
        elif isinstance(value, str) and value.strip().lower() in ("false", "no", "off", "0"):
            result = False
        else:
            raise ConfigError(f"{key}: got {value!r}, expected a boolean (true/false)")
    elif tp is int:
        if isinstance(value, (bool, float)):
            raise ConfigError(f"{key}: got {value!r}, expected an integer")
        try:
            result = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: got {value!r}, expected an integer") from None
    elif tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: got {value!r}, expected a number")
        try:
            result = float(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit YAML integer
            raise ConfigError(f"{key}: got {value!r}, expected a number") from None
        if result != result or result in (float("inf"), float("-inf")):
            raise ConfigError(f"{key}: got {value!r}, expected a finite number")
    elif tp is str:
        if value is None:
            result = ""
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            result = str(value)
        else:
            raise ConfigError(f"{key}: got {value!r}, expected a string")
    else:  # pragma: no cover - schema bug, not user input
        raise TypeError(f"unsupported config type {tp!r} for {key}")

    if "min" in metadata and result < metadata["min"]:
        raise ConfigError(f"{key}: got {value!r}, expected a value >= {metadata['min']}")
    if "max" in metadata and result > metadata["max"]:
        raise ConfigError(f"{key}: got {value!r}, expected a value <= {metadata['max']}")
    if "choices" in metadata and result not in metadata["choices"]:
        raise ConfigError(f"{key}: got {value!r}, expected one of {', '.join(metadata['choices'])}")
    return result


def _resolved_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unknown(full: str, known: Any) -> ConfigError:
    """An unknown key; a key of the old flat layout names where it lives now."""
    if full in MOVED_KEYS:
        return ConfigError(f"{full}: unknown key, moved to {MOVED_KEYS[full]} (settings are nested per detector, see README)")
    return ConfigError(f"{full}: unknown key (known keys: {', '.join(known)})")


def _build_section(name: str, cls: type, raw: Any, environ: Mapping[str, str]) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: got {raw!r}, expected a mapping of keys")
    hints = _resolved_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    # YAML allows non-string keys (1:, true:, null:); sort by repr so mixed types cannot TypeError.
    unknown = sorted(set(raw) - set(fields), key=repr)
    if unknown:
        raise _unknown(f"{name}.{unknown[0]}", fields)
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        full = f"{name}.{key}"
        if dataclasses.is_dataclass(hints[key]):  # a nested section (detectors.pump.profiles.alpha1)
            kwargs[key] = _build_section(full, hints[key], value, environ)
            continue
        if isinstance(value, str):
            value = substitute_env(value, full, environ)
        kwargs[key] = coerce_value(full, value, hints[key], fields[key].metadata)
    return cls(**kwargs)


def config_from_mapping(raw: Any, environ: Mapping[str, str] | None = None) -> Config:
    """Validate a parsed YAML document into a Config."""
    env = os.environ if environ is None else environ
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"top level: got {type(raw).__name__}, expected a mapping of sections")
    hints = _resolved_hints(Config)
    sections = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(raw) - sections, key=repr)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section (known sections: {', '.join(sorted(sections))})")
    built = {name: _build_section(name, hints[name], raw.get(name), env) for name in sections}
    config = Config(**built)
    _check_cross_field(config)
    return config


def _check_profiles(where: str, section: Any) -> None:
    """A detector's enabled_profiles: at least one, each a key of its profiles section, once."""
    known = [f.name for f in dataclasses.fields(section.profiles)]
    enabled = section.enabled_profiles
    if not enabled:
        raise ConfigError(f"{where}.enabled_profiles: got {enabled!r}, expected at least one of {', '.join(known)}")
    for name in enabled:
        if name not in known:
            raise ConfigError(f"{where}.enabled_profiles: got {name!r}, expected one of {', '.join(known)}")
    if len(set(enabled)) != len(enabled):
        raise ConfigError(f"{where}.enabled_profiles: got {enabled!r}, expected each profile once")


def _check_cross_field(config: Config) -> None:
    for f in dataclasses.fields(config.detectors):
        section = getattr(config.detectors, f.name)
        if hasattr(section, "enabled_profiles"):
            _check_profiles(f"detectors.{f.name}", section)
    per_hour, per_day = config.scanner.max_cards_per_hour, config.scanner.max_cards_per_day
    if per_hour and per_day and per_day < per_hour:
        raise ConfigError(f"scanner.max_cards_per_day: got {per_day!r}, expected 0 (no limit) or >= scanner.max_cards_per_hour ({per_hour})")
    if config.ws.reconnect_max_s < config.ws.reconnect_min_s:
        raise ConfigError(
            f"ws.reconnect_max_s: got {config.ws.reconnect_max_s!r}, expected >= ws.reconnect_min_s ({config.ws.reconnect_min_s})"
        )
    for problem in futures_problems(config.futures) + shorts_problems(config.shorts) + arb_problems(config.arb):
        raise ConfigError(problem)
    if config.trading.live and not (config.mexc.api_key and config.mexc.api_secret):
        raise ConfigError("trading.live: got true, expected mexc.api_key and mexc.api_secret (MEXC_KEY / MEXC_SECRET) to be set")
    if config.trading.live and not config.telegram.allowed_ids:
        raise ConfigError("trading.live: got true, expected telegram.allowed_ids (ALLOWED_IDS) to name who may buy")
    for problem in trading_problems(config.trading):
        raise ConfigError(problem)


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read, substitute and validate a config file; every problem raises ConfigError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc})") from None
    return config_from_mapping(raw, environ)


def set_value(config: Config, dotted_key: str, text: str) -> Config:
    """Return a copy of config with one key changed from text (the /cfg path).

    The copy is validated as a whole; config itself is never modified, so a bad value
    changes nothing.
    """
    if dotted_key in MOVED_KEYS:
        raise _unknown(dotted_key, ())
    section_name, _, key = dotted_key.partition(".")
    sections = {f.name for f in dataclasses.fields(Config)}
    if section_name not in sections or not key:
        raise ConfigError(f"{dotted_key}: unknown key (write section.key, sections: {', '.join(sorted(sections))})")
    new_config = _replaced(config, section_name, key.split("."), dotted_key, text)
    _check_cross_field(new_config)
    return new_config


def _replaced(obj: Any, where: str, path: list[str], dotted_key: str, text: str) -> Any:
    """A copy of obj (a section) with the setting at path set from text; obj is left unchanged."""
    section = getattr(obj, where)
    fields = {f.name: f for f in dataclasses.fields(section)}
    name = path[0]
    if name not in fields:
        raise ConfigError(f"{dotted_key}: unknown key (known keys: {', '.join(fields)})")
    hint = _resolved_hints(type(section))[name]
    if dataclasses.is_dataclass(hint):
        if len(path) == 1:
            keys = ", ".join(f.name for f in dataclasses.fields(hint))
            raise ConfigError(f"{dotted_key}: a section, not a setting (keys: {keys})")
        return dataclasses.replace(obj, **{where: _replaced(section, name, path[1:], dotted_key, text)})
    if len(path) > 1:
        raise ConfigError(f"{dotted_key}: unknown key ({name} is a setting, not a section)")
    if fields[name].metadata.get("secret"):
        raise ConfigError(f"{dotted_key}: secrets are set only from the environment")
    value = coerce_value(dotted_key, text, hint, fields[name].metadata)
    return dataclasses.replace(obj, **{where: dataclasses.replace(section, **{name: value})})


__all__ = [
    "Config",
    "ConfigError",
    "load_config",
    "config_from_mapping",
    "set_value",
    "substitute_env",
]
