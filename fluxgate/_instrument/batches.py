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

from collections.abc import Sequence
from typing import Any

from .._fluxgate import FluxGate
from .._ids import now_ms as clock_ms
from .._models import ContextFrame, Status
from .._recording import Call, attach, get
from .._store import BatchStore, default_db_path

__all__ = ["ResultsRecorder", "remember_batch", "store_for"]


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
    store_for(fg).remember(batch_id, api=api, platform=platform, created_at=clock_ms(), context=context, requests=pairs)


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
        now = clock_ms()
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
                batch_id=self.batch_id,
                custom_id=custom_id,
                created_at=claim.created_at or now,
            )
            call.start()
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
