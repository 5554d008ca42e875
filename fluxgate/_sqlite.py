"""Opening the local SQLite store safely from many threads and processes.

Every writer of the store (the event sink, budgets, batches) opens it here:
the file is created private (0600), the connection is in autocommit mode so
each writer starts its own ``BEGIN IMMEDIATE`` (which waits for the lock,
where a deferred transaction upgrading to a write would fail at once), and
WAL mode is switched on only if it is not on already: the switch needs the
database to itself, and several processes opening a new store at once would
otherwise see "database is locked".
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["connect", "immediate"]


def connect(path: Path, timeout_s: float) -> sqlite3.Connection:
    """A connection to the store at ``path`` (created 0600, parents too), in WAL mode."""
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    conn = sqlite3.connect(str(path), timeout=timeout_s, isolation_level=None, check_same_thread=False)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError:
            if time.monotonic() >= deadline:
                conn.close()
                raise
            time.sleep(0.01)  # another process is switching it: it will be WAL in a moment
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the lock up front (waiting for it), committed on success."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
