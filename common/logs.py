"""Structured logging: one JSON object per line on stderr, secrets masked.

Why a filter on the handler and not care at each call site: a secret must never reach a log
line even when it arrives inside an exception message or a URL we did not build ourselves.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType
from typing import Any

_REDACTED = "***"
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {"message", "asctime"}


class SecretMasker:
    """Replaces every registered secret with *** in a text."""

    def __init__(self) -> None:
        self._secrets: list[str] = []

    def set_secrets(self, secrets: Iterable[str]) -> None:
        # Longest first so a secret that contains another is masked whole; very short values
        # (under 4 chars) would mask innocent text and are not secrets worth the name.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, _REDACTED)
        return text


MASKER = SecretMasker()


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: ts, level, process name, logger, msg, extras."""

    def __init__(self, process_name: str) -> None:
        super().__init__()
        self.process_name = process_name

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname,
            "proc": self.process_name,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return MASKER.mask(json.dumps(payload, default=str, ensure_ascii=False))


ALERTS_FILE = "alerts.log"
ALERTS_MAX_BYTES = 5 * 2**20
ALERTS_BACKUPS = 5


def log_file_path(file: str, process_name: str, data_dir: str | None) -> Path:
    """The file one process writes: logging.file for the supervisor, NAME.PROCESS.EXT for each child.

    Why one file per process: each process rotates its own file; several processes renaming one
    shared file at 20 MB would lose or interleave lines. A relative path lies under the data dir.
    """
    path = Path(file)
    if not path.is_absolute() and data_dir:
        path = Path(data_dir) / path
    if process_name != "supervisor":
        path = path.with_name(f"{path.stem}.{process_name}{path.suffix or '.log'}")
    return path


# Libraries that log request URLs (the Bot API puts the token in the path): kept at WARNING or above.
QUIETED_LIBRARIES = ("httpx", "httpcore", "telegram", "aiohttp.access")
_SETUP: dict[str, Any] = {}  # the last setup_logging() arguments but the name: what a child process starts with


def inherited_setup() -> dict[str, Any]:
    """This process's logging set-up, for a child to repeat before its entry runs (run_child)."""
    return dict(_SETUP)


def setup_logging(level: str = "INFO", process_name: str = "main", secrets: Iterable[str] = (), data_dir: str | None = None,
                  log_file: Any = None) -> None:  # fmt: skip
    """Route all logging to stderr as JSON lines at level, masking the given secrets.

    With data_dir, ERROR and worse also go to data_dir/alerts.log (rotated at 5 MB, 5 kept): the
    one file an operator tails to see what went wrong, without the INFO chatter of stderr.
    With log_file (config.logging) naming a file, every line also goes there, rotated at
    file_max_mb with file_backups kept: for a service run without Docker or journald, whose
    stderr nobody rotates.
    """
    secrets = list(secrets)
    _SETUP.update(level=level, secrets=secrets, data_dir=data_dir, log_file=log_file)
    MASKER.set_secrets(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(process_name))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    if data_dir:
        try:
            Path(data_dir).mkdir(parents=True, exist_ok=True)
            alerts = RotatingFileHandler(Path(data_dir) / ALERTS_FILE, maxBytes=ALERTS_MAX_BYTES, backupCount=ALERTS_BACKUPS,
                                         encoding="utf-8", delay=True)  # fmt: skip
        except OSError as exc:  # an unwritable data dir must not stop the service; say so on stderr
            print(f"alerts.log unavailable: {exc}", file=sys.stderr)
        else:
            alerts.setLevel(logging.ERROR)
            alerts.setFormatter(JsonFormatter(process_name))
            root.addHandler(alerts)
    if log_file is not None and log_file.file:
        path = log_file_path(log_file.file, process_name, data_dir)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            rotating = RotatingFileHandler(path, maxBytes=int(log_file.file_max_mb * 2**20), backupCount=log_file.file_backups,
                                           encoding="utf-8", delay=True)  # fmt: skip
        except OSError as exc:  # an unwritable log dir must not stop the service; stderr still has every line
            print(f"log file {path} unavailable: {exc}", file=sys.stderr)
        else:
            rotating.setFormatter(JsonFormatter(process_name))
            root.addHandler(rotating)
    root.setLevel(level)
    for noisy in QUIETED_LIBRARIES:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))



def install_crash_logging() -> None:
    """Route every uncaught exception and warning through the JSON handler (and so the masker).

    Why: Python prints an uncaught traceback raw on stderr, and a traceback quotes the exception's
    message, which may hold a secret (python-telegram-bot's InvalidToken names the token). A raw
    line also breaks the one-JSON-object-per-line contract of stderr.
    """
    log = logging.getLogger("scanner.crash")

    def on_uncaught(tp: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        log.critical("uncaught exception", exc_info=(tp, value, tb), extra={"error": tp.__name__})

    def on_thread(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        assert args.exc_value is not None
        log.critical("uncaught exception in a thread", exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
                     extra={"error": args.exc_type.__name__, "thread": getattr(args.thread, "name", "?")})  # fmt: skip

    sys.excepthook = on_uncaught
    threading.excepthook = on_thread
    logging.captureWarnings(True)


# Exit code of a child that stopped on a configuration problem it cannot fix by itself (sysexits.h EX_CONFIG).
EXIT_CONFIG = 78


def run_child(name: str, entry: Any, *args: Any, breadcrumb: Any = None, log_setup: dict[str, Any] | None = None) -> None:
    """Run a forked child's entry point; an escaping exception becomes one masked JSON log line.

    Why: multiprocessing prints a child's uncaught traceback raw on stderr (secrets and all) before
    the process exits; here it is logged through the masking formatter instead and the child exits
    with code 1 (SystemExit, e.g. EXIT_CONFIG, passes through), which the supervisor sees and
    answers with a restart after a backoff. breadcrumb (common/breadcrumb.py) becomes this
    process's pair marker, read by the supervisor after a death to find a poisoned pair.
    """
    from common import breadcrumb as crumbs
    from common import memprofile

    if log_setup:  # a child from the forkserver inherits no logging: masked JSON from its first line
        setup_logging(process_name=name, **log_setup)
    crumbs.install(breadcrumb)

    memprofile.start(name)  # a no-op unless SCANNER_MEMPROFILE_DIR is set (perf/soak_long.py)
    try:
        entry(*args)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - the last line of defence of a child process
        logging.getLogger("scanner.crash").critical("child process crashed", exc_info=True,
                                                    extra={"child": name, "error": type(exc).__name__, "pid": os.getpid()})  # fmt: skip
        for handler in logging.getLogger().handlers:
            handler.flush()
        raise SystemExit(1) from None
