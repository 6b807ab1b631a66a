"""Errors also land in data_dir/alerts.log, masked like stderr; INFO does not."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from common.logs import setup_logging


def test_errors_go_to_alerts_log_masked_and_info_does_not(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    setup_logging("INFO", "test", secrets=["777:ALERT-SECRET-TOKEN"], data_dir=str(tmp_path / "data"))
    try:
        log = logging.getLogger("scanner.test")
        log.info("routine", extra={"n": 1})
        log.error("order failed", extra={"url": "http://127.0.0.1/bot777:ALERT-SECRET-TOKEN/sendMessage"})
        for handler in logging.getLogger().handlers:
            handler.flush()
        lines = (tmp_path / "data" / "alerts.log").read_text().splitlines()
        assert [json.loads(line)["msg"] for line in lines] == ["order failed"]
        assert "ALERT-SECRET-TOKEN" not in lines[0] and "***" in lines[0]
        assert "routine" in capsys.readouterr().err  # stderr still gets everything
    finally:
        setup_logging("INFO", "test")


def test_an_unwritable_data_dir_does_not_stop_logging(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    setup_logging("INFO", "test", data_dir=str(blocker / "data"))
    try:
        logging.getLogger("scanner.test").error("still logged")
        err = capsys.readouterr().err
        assert "alerts.log unavailable" in err and "still logged" in err
    finally:
        setup_logging("INFO", "test")
