"""Message Batches: the caller's context kept at ``create``, each result priced once when read.

A batch is billed when it runs, long after ``batches.create`` returned, and
its results may be read by another process. So at ``create`` the caller's
context (feature, user, step...) is written to the local SQLite store, keyed
by the batch id and each request's ``custom_id``; when anyone iterates
``batches.results``, each result becomes one event at the batch rate with
that context. A ``counted_at`` marker, claimed inside one write transaction,
makes a result count once however often, and by however many processes, the
results are read.

The store is two tables beside the events in the default database
(``$FLUXGATE_DB`` or ``FluxGate(db_path=...)``), in WAL mode. Writes happen
on the caller's thread: once per ``batches.create`` and once per chunk of
results, never per token. Nothing here raises into the user's code: callers
run it under ``guarded()``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from ._calls import Call, attach
from ._extract import get
from ._models import AiEventUser, ContextFrame, Status
from ._runtime import FluxGate
from .sinks.sqlite import default_db_path

__all__ = ["BatchStore", "Claim", "ResultsRecorder", "context_from_json", "context_to_json", "store_for"]

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


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def context_to_json(ctx: ContextFrame) -> str:
    """The context fields as JSON (what the store keeps per batch)."""
    return json.dumps(
        {
            "feature": ctx.feature,
            "user": None if ctx.user is None else ctx.user.to_dict(),
            "step": ctx.step,
            "session_id": ctx.session_id,
            "conversation_id": ctx.conversation_id,
            "service_tier": ctx.service_tier,
            "metadata": None if ctx.metadata is None else dict(ctx.metadata),
        },
        default=str,
    )


def context_from_json(text: str) -> ContextFrame:
    """The inverse of :func:`context_to_json`; an unreadable value gives an empty context."""
    try:
        data = json.loads(text)
    except ValueError:
        return ContextFrame()
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        conn = sqlite3.connect(str(self.path), timeout=10, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            for statement in _SCHEMA:
                conn.execute(statement)
            yield conn
        finally:
            conn.close()

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
        now_ms = _now_ms() if now_ms is None else now_ms
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


def store_for(fg: FluxGate) -> BatchStore:
    """The store next to ``fg``'s default SQLite database."""
    path = getattr(getattr(fg, "config", None), "db_path", None)
    return BatchStore(path if path is not None else default_db_path())


def remember_batch(fg: FluxGate, *, batch: Any, body: Any, api: str, platform: str, context: ContextFrame) -> None:
    """After ``batches.create`` returned ``batch`` for request ``body``: keep its context."""
    batch_id = get(batch, "id")
    requests = get(body, "requests")
    if not isinstance(batch_id, str) or not isinstance(requests, (list, tuple)):
        return
    pairs: list[tuple[str, str | None]] = []
    for request in requests:
        custom_id = get(request, "custom_id")
        model = get(get(request, "params"), "model")
        if isinstance(custom_id, str):
            pairs.append((custom_id, model if isinstance(model, str) else None))
    store_for(fg).remember(batch_id, api=api, platform=platform, created_at=_now_ms(), context=context, requests=pairs)


class ResultsRecorder:
    """Turns the results of one batch into events, a chunk at a time, each ``custom_id`` once."""

    __slots__ = ("api", "batch_id", "fg", "platform", "store")

    def __init__(self, fg: FluxGate, *, batch_id: str, api: str, platform: str) -> None:
        self.fg = fg
        self.batch_id = batch_id
        self.api = api
        self.platform = platform
        self.store = store_for(fg)

    def record(self, items: Sequence[Any]) -> None:
        """Record the results in ``items`` that nobody counted before; hang each summary on its item."""
        ids = [cid for cid in (get(item, "custom_id") for item in items) if isinstance(cid, str)]
        if not ids:
            return
        claims = self.store.claim(self.batch_id, ids)
        now = _now_ms()
        for item in items:
            custom_id = get(item, "custom_id")
            claim = claims.pop(custom_id, None) if isinstance(custom_id, str) else None
            if claim is None:
                continue  # counted before, by this reader or another
            call = Call(
                self.fg,
                self.api,
                platform=claim.platform or self.platform,
                model=claim.model,
                context=claim.context or ContextFrame(),
            )
            call.start()
            call.timed = False
            call.created_at = claim.created_at or now
            call.batch, call.batch_id, call.custom_id = True, self.batch_id, custom_id
            _record_result(call, get(item, "result"))
            attach(item, call.response)


def _record_result(call: Call, result: Any) -> None:
    kind = get(result, "type")
    if kind == "succeeded":
        call.succeed(get(result, "message"))
        return
    if kind == "errored":
        error = get(get(result, "error"), "error")
        error_type = get(error, "type")
        message = get(error, "message")
        call.error(
            error_type if isinstance(error_type, str) else "errored",
            message if isinstance(message, str) else "the batch request errored",
            status=Status.MALFORMED_REQUEST if error_type == "invalid_request_error" else Status.ERROR,
        )
        return
    name = kind if isinstance(kind, str) else "unknown"
    call.error(name, f"the batch request was {name} before it ran; it was not billed")
