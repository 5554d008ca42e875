"""Budget spend in the local SQLite file, shared by every process of the host."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from .sqlite import connect

__all__ = ["SQLiteSpendStore"]


class SQLiteSpendStore:
    """Budget spend in a SQLite file, shared by every process on the host.

    One row per reservation and budget key; a reservation checks and inserts
    in a single ``BEGIN IMMEDIATE`` transaction, so no update is lost.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 2.0) -> None:
        self.path = Path(path)
        #: The longest a reservation waits for another process's write lock.
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"SQLiteSpendStore({str(self.path)!r})"

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._pid == os.getpid():
            return conn
        self._pid = os.getpid()
        conn = connect(self.path, self.timeout_s)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS budget_ledger ("
            " id INTEGER PRIMARY KEY AUTOINCREMENT, reservation INTEGER NOT NULL,"
            " key TEXT NOT NULL, at_ms INTEGER NOT NULL, amount_pusd INTEGER NOT NULL)"
        )
        conn.execute("CREATE INDEX IF NOT EXISTS ix_budget_ledger_key ON budget_ledger (key, at_ms)")
        conn.execute("CREATE INDEX IF NOT EXISTS ix_budget_ledger_res ON budget_ledger (reservation)")
        self._local.conn = conn
        return conn

    def reserve(self, claims: Iterable[tuple[str, int, int, int]], amount_pusd: int, now_ms: int) -> int | None:
        claims = list(claims)
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for key, start, end, limit in claims:
                if self._sum(conn, key, start, end) + amount_pusd > limit:
                    conn.execute("ROLLBACK")
                    return None
            row = conn.execute("SELECT COALESCE(MAX(reservation), 0) + 1 FROM budget_ledger").fetchone()
            rid = int(row[0])
            conn.executemany(
                "INSERT INTO budget_ledger (reservation, key, at_ms, amount_pusd) VALUES (?, ?, ?, ?)",
                [(rid, key, now_ms, amount_pusd) for key, *_ in claims],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return rid

    def settle(self, reservation_id: int, actual_pusd: int) -> None:
        conn = self._conn()
        conn.execute("UPDATE budget_ledger SET amount_pusd = ? WHERE reservation = ?", (actual_pusd, reservation_id))

    def spent(self, key: str, window_start_ms: int, window_end_ms: int) -> int:
        return self._sum(self._conn(), key, window_start_ms, window_end_ms)

    @staticmethod
    def _sum(conn: sqlite3.Connection, key: str, start: int, end: int) -> int:
        row = conn.execute(
            "SELECT COALESCE(SUM(amount_pusd), 0) FROM budget_ledger WHERE key = ? AND at_ms >= ? AND at_ms < ?",
            (key, start, end),
        ).fetchone()
        return int(row[0])
