"""One write transaction on a SQLite connection opened in autocommit mode (isolation_level=None).

Why a module of its own: every store writes through processes that share one file (supervisor,
bot, trading), so a write that reads before it writes takes the write lock first (BEGIN
IMMEDIATE) and either commits whole or leaves nothing. Seven call sites wrote that out by hand;
none handled a COMMIT that fails (disk full, I/O error): SQLite may then keep the transaction
open, and the connection's next BEGIN fails with "cannot start a transaction within a
transaction" for ever. Here the failed COMMIT is rolled back, so the next write can succeed once
the disk has room again.

Why it nests: a write made of several store calls (an exit's fills and the position they empty,
trading/ledger.py) must land whole, and each call opens its own transaction. Inside an open
transaction the inner block simply joins it: the outermost one commits or rolls back everything.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator


@contextlib.contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT; ROLLBACK on any exception in the body or in the COMMIT, then re-raise.

    Already in a transaction: the body joins it (no BEGIN, no COMMIT; an exception still reaches the outer block).
    """
    if db.in_transaction:
        yield db
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
