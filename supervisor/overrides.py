"""Run-time /cfg changes that outlive a reload: `SCANNER_DATA_DIR/config.overrides.yaml`.

Why a file of its own beside config.yaml instead of rewriting config.yaml: config.yaml is the
operator's (comments, `${ENV}` references, often read-only in a container or a deploy checkout);
the overrides file holds only `section.key: value` lines written by `/cfg save`, applied on top of
config.yaml at start and on every reload, each through the same validation as /cfg.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml

from common.config import Config, ConfigError, load_config, set_value

FILE_NAME = "config.overrides.yaml"


def overrides_path(config: Config) -> Path:
    return Path(config.storage.data_dir) / FILE_NAME


def read_overrides(path: Path) -> dict[str, str]:
    """The saved overrides (key → value text); {} when there is no file; ConfigError when it is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise ConfigError(f"{path}: expected a mapping of section.key: value")
    return {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in raw.items()}


def apply_overrides(config: Config, overrides: dict[str, str], source: Path) -> Config:
    """config with every override applied, each validated like /cfg; ConfigError names the file and key."""
    for key, value in overrides.items():
        try:
            config = set_value(config, key, value)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc} (edit or delete that line)") from None
    return config


def load_effective_config(config_path: str | Path) -> Config:
    """config.yaml, then the saved /cfg overrides of its data dir on top."""
    config = load_config(config_path)
    path = overrides_path(config)
    return apply_overrides(config, read_overrides(path), path)


def save_overrides(path: Path, changes: dict[str, str]) -> dict[str, str]:
    """Merge changes into the overrides file (atomic replace); returns everything now saved."""
    saved = {**read_overrides(path), **changes}
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by /cfg save; applied on top of config.yaml at start and on every /reload.\n"
    fd, tmp = tempfile.mkstemp(prefix=".overrides.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(header + yaml.safe_dump(saved, sort_keys=True, allow_unicode=True))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return saved
