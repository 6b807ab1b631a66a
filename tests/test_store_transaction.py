"""store/transaction.write_transaction: all or nothing, and a failed COMMIT never wedges the connection."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store.transaction import write_transaction


def _db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    # A deferred foreign key is checked at COMMIT: the one portable way to make COMMIT itself fail.
    db.execute("CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)")
    return db


def test_an_error_in_the_body_leaves_nothing_written(tmp_path: Path) -> None:
    db = _db(tmp_path / "a.sqlite3")
    with pytest.raises(RuntimeError), write_transaction(db):
        db.execute("INSERT INTO parent (id) VALUES (1)")
        raise RuntimeError("crash half-way")
    assert db.execute("SELECT COUNT(*) FROM parent").fetchone() == (0,) and not db.in_transaction


def test_a_commit_that_fails_is_rolled_back_and_the_next_write_succeeds(tmp_path: Path) -> None:
    db = _db(tmp_path / "b.sqlite3")
    with pytest.raises(sqlite3.IntegrityError), write_transaction(db):
        db.execute("INSERT INTO child (id, parent) VALUES (1, 42)")  # no parent 42: COMMIT fails
    assert not db.in_transaction  # by hand (BEGIN; …; COMMIT) the transaction stayed open here
    with write_transaction(db):
        db.execute("INSERT INTO parent (id) VALUES (42)")
    assert db.execute("SELECT COUNT(*) FROM child").fetchone() == (0,)
    assert db.execute("SELECT COUNT(*) FROM parent").fetchone() == (1,)
    other = sqlite3.connect(tmp_path / "b.sqlite3", isolation_level=None, timeout=0.1)
    with write_transaction(other):  # the write lock was released: another process can write
        other.execute("INSERT INTO parent (id) VALUES (7)")


def test_a_nested_block_joins_the_outer_transaction_and_a_crash_after_it_leaves_nothing(tmp_path: Path) -> None:
    db = _db(tmp_path / "c.sqlite3")
    with pytest.raises(RuntimeError), write_transaction(db):
        with write_transaction(db):  # would be "cannot start a transaction within a transaction"
            db.execute("INSERT INTO parent (id) VALUES (1)")
        assert db.in_transaction  # the inner block did not commit
        raise RuntimeError("killed between the two writes")
    assert db.execute("SELECT COUNT(*) FROM parent").fetchone() == (0,)
    with write_transaction(db):
        with write_transaction(db):
            db.execute("INSERT INTO parent (id) VALUES (2)")
        db.execute("INSERT INTO child (id, parent) VALUES (1, 2)")
    assert db.execute("SELECT COUNT(*) FROM child").fetchone() == (1,) and not db.in_transaction
