"""SQLiteSink: the embedded default store, one row per event.

The connection is opened lazily on the flusher's thread. The database runs in
WAL mode, so ``fluxgate report`` can read while an application writes, and
several processes on one host can share a file. Rows are keyed by
``tracking_id``, so a batch retried after a failure is not stored twice.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from .._errors import ConfigurationError, TransientSinkError
from .._models import AiEventUser, CostEvent, Status
from .sqlite import connect, immediate

__all__ = ["COLUMNS", "TABLE", "SQLiteSink", "default_db_path", "ensure_schema", "event_from_row"]

TABLE = "events"

#: Column name -> SQLite type, one per ``CostEvent`` field, plus ``cost_pusd``:
#: the cost in pico-dollars (1e-12 USD) as an integer, exact for every price
#: with at most six decimals per million tokens, so reports can sum in SQL.
COLUMNS: dict[str, str] = {}
for _field in attrs.fields(CostEvent):
    _type = _field.type if isinstance(_field.type, str) else str(_field.type)
    if _field.name in ("created_at",) or _type.startswith("int") or _type == "bool":
        COLUMNS[_field.name] = "INTEGER"
    elif _type.startswith("float"):
        COLUMNS[_field.name] = "REAL"
    else:
        COLUMNS[_field.name] = "TEXT"
COLUMNS["cost_pusd"] = "INTEGER"
del _field, _type

_INDEXES = {
    "ix_events_created_at": "created_at",
    "ix_events_feature": "feature, created_at",
    "ix_events_user_id": "user_id, created_at",
    "ix_events_model": "model",
}

_PICO = Decimal(10) ** 12


def default_db_path() -> Path:
    """``$FLUXGATE_DB``, else ``$XDG_DATA_HOME/fluxgate/events.db`` (``~/.local/share/...``)."""
    env = os.environ.get("FLUXGATE_DB")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fluxgate" / "events.db"


def _to_pusd(cost: Decimal | None) -> int | None:
    if cost is None:
        return None
    return int((cost * _PICO).to_integral_value())


def _row(event: CostEvent) -> tuple[Any, ...]:
    data = event.to_dict()
    data["streamed"] = int(event.streamed)
    data["aborted"] = int(event.aborted)
    data["user"] = None if event.user is None else json.dumps(event.user.to_dict())
    data["metadata"] = None if event.metadata is None else json.dumps(dict(event.metadata))
    data["cost_breakdown"] = json.dumps(data["cost_breakdown"])
    data["cost_pusd"] = _to_pusd(event.cost_usd)
    return tuple(data[name] for name in COLUMNS)


def event_from_row(row: sqlite3.Row | dict[str, Any]) -> CostEvent:
    """Rebuild a :class:`CostEvent` from a stored row (for readers and tests)."""
    data = dict(row)
    data.pop("cost_pusd", None)
    user = data.get("user")
    if user:
        fields = json.loads(user)
        data["user"] = AiEventUser(fields.pop("id"), **fields)
    data["metadata"] = json.loads(data["metadata"]) if data.get("metadata") else None
    data["cost_breakdown"] = {k: Decimal(v) for k, v in json.loads(data.get("cost_breakdown") or "{}").items()}
    data["cost_usd"] = None if data.get("cost_usd") is None else Decimal(data["cost_usd"])
    data["status"] = Status(data["status"])
    data["streamed"] = bool(data.get("streamed"))
    data["aborted"] = bool(data.get("aborted"))
    known = {f.name for f in attrs.fields(CostEvent)}
    return CostEvent(**{k: v for k, v in data.items() if k in known})


class SQLiteSink:
    """Store events in a local SQLite database.

    Args:
        path: The database file; created (mode 0600, parents too) on first
            write. Defaults to :func:`default_db_path`.
        timeout_s: How long to wait for another process's write lock.

    Raises:
        ConfigurationError: ``path`` is a directory.

    >>> sink = SQLiteSink(":memory:")
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout_s: float = 5.0) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        if str(self.path) != ":memory:" and self.path.is_dir():
            msg = f"SQLiteSink 'path' must be a file, not a directory (got {str(self.path)!r})."
            raise ConfigurationError(msg)
        self._timeout_s = timeout_s
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._insert = f"INSERT OR IGNORE INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"

    def __repr__(self) -> str:
        return f"SQLiteSink({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        # A forked child must not share its parent's SQLite connection (the
        # SQLite docs forbid carrying one across fork); it opens its own.
        self._conn = None
        self._pid = os.getpid()
        conn = connect(self.path, self._timeout_s)
        ensure_schema(conn)
        self._conn = conn
        return conn

    def write(self, batch: Sequence[CostEvent]) -> None:
        """Insert ``batch`` in one transaction; a locked database is transient."""
        rows = [_row(event) for event in batch]
        with self._lock:
            try:
                with immediate(self._connect()) as conn:
                    conn.executemany(self._insert, rows)
            except sqlite3.OperationalError as exc:
                raise TransientSinkError(f"SQLite write failed: {exc}") from exc

    def close(self) -> None:
        """Close the connection (a later write reopens it)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the table and indexes, and add columns a newer fluxgate defines."""
    cols = ", ".join(
        f"{name} {kind} PRIMARY KEY" if name == "tracking_id" else f"{name} {kind}" for name, kind in COLUMNS.items()
    )
    with immediate(conn):
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({cols})")
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({TABLE})")}
        for name, kind in COLUMNS.items():
            if name not in have:
                conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN {name} {kind}")
        for index, columns in _INDEXES.items():
            conn.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {TABLE} ({columns})")
