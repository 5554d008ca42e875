"""The batch-context tables: a batch creator's context, and which results were counted.

Two tables beside the events in the local SQLite file (``$FLUXGATE_DB`` or
``FluxGate(db_path=...)``). A ``counted_at`` mark, claimed inside one write
transaction, makes a result count once however often, and by however many
processes, the results are read.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from .._ids import now_ms as clock_ms
from .._models import AiEventUser, ContextFrame
from .sqlite import connect

__all__ = ["BatchStore", "Claim", "context_from_dict", "context_from_json", "context_to_dict", "context_to_json"]

_BATCHES = "fluxgate_batches"
_REQUESTS = "fluxgate_batch_requests"
_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {_BATCHES} ("
    " batch_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, api TEXT NOT NULL,"
    " platform TEXT NOT NULL, context TEXT NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {_REQUESTS} ("
    " batch_id TEXT NOT NULL, custom_id TEXT NOT NULL, model TEXT, counted_at INTEGER,"
    " PRIMARY KEY (batch_id, custom_id)) WITHOUT ROWID",
)
# SQLite's default limit on host parameters is 999 on old builds.
_CHUNK = 400


def context_to_dict(ctx: ContextFrame) -> dict[str, Any]:
    """The context fields as JSON-ready data (what each store keeps per batch)."""
    return {
        "feature": ctx.feature,
        "user": None if ctx.user is None else ctx.user.to_dict(),
        "step": ctx.step,
        "session_id": ctx.session_id,
        "conversation_id": ctx.conversation_id,
        "service_tier": ctx.service_tier,
        "metadata": None if ctx.metadata is None else dict(ctx.metadata),
    }


def context_from_dict(data: object) -> ContextFrame:
    """The inverse of :func:`context_to_dict`; an unreadable value gives an empty context."""
    if not isinstance(data, dict):
        return ContextFrame()
    user = data.get("user")
    if isinstance(user, dict) and isinstance(user.get("id"), str):
        fields = {k: v for k, v in user.items() if k in ("name", "email", "monthly_revenue")}
        user = AiEventUser(user["id"], **fields)
    else:
        user = None
    metadata = data.get("metadata")
    return ContextFrame(
        feature=data.get("feature"),
        user=user,
        step=data.get("step"),
        session_id=data.get("session_id"),
        conversation_id=data.get("conversation_id"),
        service_tier=data.get("service_tier"),
        metadata=metadata if isinstance(metadata, dict) else None,
    )


def context_to_json(ctx: ContextFrame) -> str:
    """The context fields as JSON text (the SQLite store's column)."""
    return json.dumps(context_to_dict(ctx), default=str)


def context_from_json(text: str) -> ContextFrame:
    """The inverse of :func:`context_to_json`; an unreadable value gives an empty context."""
    try:
        return context_from_dict(json.loads(text))
    except ValueError:
        return ContextFrame()


@attrs.frozen
class Claim:
    """A result this reader may count: what was stored for it at ``create`` (None if nothing was)."""

    context: ContextFrame | None
    created_at: int | None
    model: str | None
    platform: str | None


_memory_lock = threading.Lock()
_memory: dict[str, sqlite3.Connection] = {}


class BatchStore:
    """The batch-context tables in one SQLite file.

    Args:
        path: The database file (created with mode 0600), or ``":memory:"``
            (one connection shared by the process).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._memory = str(path) == ":memory:"
        # One connection per thread, kept: results are claimed one at a time as
        # the user reads them, and opening the file for each took milliseconds.
        self._local = threading.local()
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"BatchStore({str(self.path)!r})"

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if self._memory:
            with _memory_lock:
                conn = _memory.get(str(self.path))
                if conn is None:
                    conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    _memory[str(self.path)] = conn
                yield conn
            return
        kept: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if kept is None or self._pid != os.getpid():  # a forked child opens its own
            self._pid = os.getpid()
            kept = connect(self.path, 10.0)
            for statement in _SCHEMA:
                kept.execute(statement)
            self._local.conn = kept
        yield kept

    def remember(
        self,
        batch_id: str,
        *,
        api: str,
        platform: str,
        created_at: int,
        context: ContextFrame,
        requests: Sequence[tuple[str, str | None]],
    ) -> None:
        """Keep the context of a new batch and its ``(custom_id, model)`` requests."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    f"INSERT OR IGNORE INTO {_BATCHES} (batch_id, created_at, api, platform, context)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (batch_id, created_at, api, platform, context_to_json(context)),
                )
                conn.executemany(
                    f"INSERT OR IGNORE INTO {_REQUESTS} (batch_id, custom_id, model) VALUES (?, ?, ?)",
                    [(batch_id, custom_id, model) for custom_id, model in requests],
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def claim(self, batch_id: str, custom_ids: Sequence[str], now_ms: int | None = None) -> dict[str, Claim]:
        """Mark these results counted; return those nobody had counted before, with their context.

        One write transaction, so two readers (threads or processes) never both
        get the same ``custom_id``. Results of a batch this store never saw are
        claimed too (with no context), so they also count once.
        """
        now_ms = clock_ms() if now_ms is None else now_ms
        wanted = list(dict.fromkeys(custom_ids))
        out: dict[str, Claim] = {}
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    f"SELECT created_at, platform, context FROM {_BATCHES} WHERE batch_id = ?", (batch_id,)
                ).fetchone()
                context = None if row is None else context_from_json(row[2])
                created_at = None if row is None else int(row[0])
                platform = None if row is None else str(row[1])
                known: dict[str, tuple[str | None, int | None]] = {}
                for start in range(0, len(wanted), _CHUNK):
                    part = wanted[start : start + _CHUNK]
                    marks = ", ".join("?" * len(part))
                    for custom_id, model, counted_at in conn.execute(
                        f"SELECT custom_id, model, counted_at FROM {_REQUESTS}"
                        f" WHERE batch_id = ? AND custom_id IN ({marks})",
                        (batch_id, *part),
                    ):
                        known[custom_id] = (model, counted_at)
                fresh = [cid for cid in wanted if cid not in known]
                todo = [cid for cid, (_, counted_at) in known.items() if counted_at is None]
                conn.executemany(
                    f"UPDATE {_REQUESTS} SET counted_at = ? WHERE batch_id = ? AND custom_id = ?",
                    [(now_ms, batch_id, cid) for cid in todo],
                )
                conn.executemany(
                    f"INSERT INTO {_REQUESTS} (batch_id, custom_id, model, counted_at) VALUES (?, ?, NULL, ?)",
                    [(batch_id, cid, now_ms) for cid in fresh],
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        for cid in todo:
            out[cid] = Claim(context=context, created_at=created_at, model=known[cid][0], platform=platform)
        for cid in fresh:
            out[cid] = Claim(context=context, created_at=created_at, model=None, platform=platform)
        return out
