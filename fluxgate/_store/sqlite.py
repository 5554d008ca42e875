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
from typing import Any

from .._handoff import Handoff

__all__ = ["SteppingConnection", "connect", "immediate"]


def connect(
    path: Path,
    timeout_s: float,
    *,
    cached_statements: int = 128,
    factory: type[sqlite3.Connection] = sqlite3.Connection,
) -> sqlite3.Connection:
    """A connection to the store at ``path`` (created 0600, parents too), in WAL mode.

    ``cached_statements`` bounds the prepared statements the connection keeps
    (sqlite3's default is 128); ``factory`` makes it (see ``sqlite3.connect``; a
    ``functools.partial`` of a subclass does too).
    """
    if str(path) != ":memory:":
        _create_private(path)
    conn = sqlite3.connect(
        str(path),
        timeout=timeout_s,
        isolation_level=None,
        check_same_thread=False,
        cached_statements=cached_statements,
        factory=factory,
    )
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


def _create_private(path: Path) -> None:
    """Create the file 0600 if it does not exist yet; never touch an existing one.

    Closing *any* descriptor of a file releases every POSIX lock this process
    holds on it, SQLite's included: an ``os.close(os.open(db))`` while another
    connection of ours is open lets a second process checkpoint and delete the
    WAL under it, and later commits vanish. ``O_EXCL`` succeeds only when the
    file did not exist, so no connection of ours can be open on it then.
    """
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class SteppingConnection(sqlite3.Connection):
    """A connection that marks each statement it ran as a step of its writer (see fluxgate._handoff).

    Python's sqlite3 lets go of the GIL around every statement, so each one
    ends with the writer taking it back.
    """

    def __init__(self, *args: Any, handoff: Handoff, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handoff = handoff

    def execute(self, *args: Any) -> sqlite3.Cursor:
        try:
            return super().execute(*args)
        finally:
            self.handoff.advance()

    def executemany(self, *args: Any) -> sqlite3.Cursor:
        try:
            return super().executemany(*args)
        finally:
            self.handoff.advance()


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
