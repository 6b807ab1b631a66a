"""The monthly Parquet mirror of the history: signals with their decision and outcome, one file per month.

Why apart from store/history.py: pyarrow costs ~56 MB in whichever process imports it, so it is
imported only inside the mirror, and `python -m store.parquet` runs the mirror in a short-lived
process so a long-lived supervisor or bot never has to.
"""

from __future__ import annotations

import calendar
import contextlib
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

_PARQUET_SIGNAL_COLUMNS = ("signal_id", "symbol", "profile", "exchange_time_ms", "recv_ns", "created_ns", "price", "prob",
                           "features", "reasons", "escalation", "stored_ns", "card_sent_ns", "suppressed")  # fmt: skip
_PARQUET_SCHEMA = (
    ("signal_id", "str"), ("symbol", "str"), ("profile", "str"), ("exchange_time_ms", "int"), ("recv_ns", "int"),
    ("created_ns", "int"), ("price", "float"), ("prob", "float"), ("features", "str"), ("reasons", "str"),
    ("escalation", "int"), ("stored_ns", "int"), ("card_sent_ns", "int"), ("suppressed", "str"),
    ("action", "str"), ("action_user_id", "int"), ("action_at_ns", "int"),
    ("outcome", "str"), ("trade", "str"), ("max_gain", "float"), ("max_drawdown", "float"), ("time_to_max_s", "float"),
    ("outcome_horizon_s", "float"),
)  # fmt: skip


def mirror_parquet(db: sqlite3.Connection, data_dir: Path, month: str | None = None) -> list[Path]:
    """Mirror signals (with their decision and outcome) to parquet/signals_YYYYMM.parquet; returns the files written.

    month: "YYYYMM" (written even when empty); default: this month and the previous one (so
    the last rows of a month land in its file after midnight), each only if it has signals.
    Each file is written to a temporary name and renamed over the old one, so a reader sees
    the old file or the new one, never half of one.
    """
    if month is None:
        now = time.gmtime()
        prev = (now.tm_year - (now.tm_mon == 1), (now.tm_mon - 2) % 12 + 1)
        months, forced = [f"{prev[0]:04d}{prev[1]:02d}", f"{now.tm_year:04d}{now.tm_mon:02d}"], False
    else:
        if not (len(month) == 6 and month.isdigit() and 1 <= int(month[4:]) <= 12):
            raise ValueError(f"month: got {month!r}, expected YYYYMM")
        months, forced = [month], True
    written = []
    for m in months:
        path = _mirror_month(db, data_dir, m, forced)
        if path is not None:
            written.append(path)
    return written

def _mirror_month(db: sqlite3.Connection, data_dir: Path, month: str, forced: bool) -> Path | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    year, mon = int(month[:4]), int(month[4:])
    start = calendar.timegm((year, mon, 1, 0, 0, 0)) * 1000
    end = calendar.timegm((year + (mon == 12), mon % 12 + 1, 1, 0, 0, 0)) * 1000
    rows = db.execute(
        f"SELECT {', '.join('s.' + c for c in _PARQUET_SIGNAL_COLUMNS)}, a.action, a.user_id, a.at_ns,"
        " o.outcome, o.trade, o.max_gain, o.max_drawdown, o.time_to_max_s, o.horizon_s FROM signals s"
        " LEFT JOIN actions a ON a.signal_id = s.signal_id LEFT JOIN outcomes o ON o.signal_id = s.signal_id"
        " WHERE s.exchange_time_ms >= ? AND s.exchange_time_ms < ? ORDER BY s.exchange_time_ms, s.signal_id",
        (start, end),
    ).fetchall()
    if not rows and not forced:
        return None
    types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}
    schema = pa.schema([(name, types[kind]) for name, kind in _PARQUET_SCHEMA])
    table = pa.table({name: [r[i] for r in rows] for i, (name, _) in enumerate(_PARQUET_SCHEMA)}, schema=schema)
    out_dir = data_dir / "parquet"
    out_dir.mkdir(exist_ok=True)
    target = out_dir / f"signals_{month}.parquet"
    # A unique temporary name: two processes mirroring at once must not write into one file.
    fd, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=f".signals_{month}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp_name)
        with open(tmp_name, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return target


def main(argv: list[str] | None = None) -> int:
    """`python -m store.parquet DATA_DIR [YYYYMM]`: mirror to Parquet in a short-lived process.

    Why a command: pyarrow costs ~56 MB in whichever process imports it, so a long-lived
    supervisor or bot should run the mirror as a child process rather than import it.
    Prints the written paths as one JSON line.
    """
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2:
        print("usage: python -m store.parquet DATA_DIR [YYYYMM]", file=sys.stderr)
        return 2
    from store.history import Store

    store = Store(args[0])
    try:
        written = store.mirror_parquet(args[1] if len(args) == 2 else None)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(json.dumps({"written": [str(p) for p in written]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
