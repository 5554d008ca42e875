"""Message Batches: the caller's context kept at ``create``, each result priced once when read.

A batch is billed when it runs, long after ``batches.create`` returned, and
its results may be read by another process. So at ``create`` the caller's
context (feature, user, step...) is kept, keyed by the batch id and each
request's ``custom_id``; when anyone iterates ``batches.results``, each
result becomes one event at the batch rate with that context, as the user
reads it (fluxgate reads nothing ahead). A ``counted_at`` marker, claimed
inside one write transaction, makes a result count once however often, and
by however many processes, the results are read.

The contexts are kept where the FluxGate keeps its events
(``FluxGate.batch_store``): its SQLite file or PostgreSQL database, shared
with other processes, when events go there; otherwise this process's
memory, so that nothing is written to disk the configuration did not ask for.
Nothing here raises into the user's code: it all runs under ``guarded()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from .._fluxgate import FluxGate, active
from .._guard import guarded
from .._ids import now_ms as clock_ms
from .._models import ContextFrame, Status
from .._recording import Call, attach, get
from .._store import BatchStore
from .hooks import Target, marked
from .routes import platform_of

__all__ = ["TARGETS", "ResultsRecorder", "remember_batch", "store_for"]

#: Where batch contexts live for a tracker that names no store of its own.
_MEMORY = BatchStore(":memory:")


def store_for(fg: FluxGate) -> Any:
    """Where ``fg`` keeps batch contexts (``FluxGate.batch_store``: its store, or this process's memory)."""
    store = getattr(fg, "batch_store", None)
    return _MEMORY if store is None else store


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
    """Turns the results of one batch into events as they are read, each ``custom_id`` once."""

    __slots__ = ("api", "batch_id", "fg", "platform", "store")

    def __init__(self, fg: FluxGate, *, batch_id: str, api: str, platform: str) -> None:
        self.fg = fg
        self.batch_id = batch_id
        self.api = api
        self.platform = platform
        self.store = store_for(fg)

    def record(self, item: Any) -> None:
        """Record ``item`` (one result) if nobody counted it before; hang its summary on it."""
        custom_id = get(item, "custom_id")
        if not isinstance(custom_id, str):
            return
        claim = self.store.claim(self.batch_id, [custom_id]).get(custom_id)
        if claim is None:
            return  # counted before, by this reader or another
        call = Call(
            self.fg,
            self.api,
            platform=claim.platform or self.platform,
            model=claim.model,
            context=claim.context or ContextFrame(),
            batch_id=self.batch_id,
            custom_id=custom_id,
            created_at=claim.created_at or clock_ms(),
        )
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


# -- batches.results(): the SDK's decoder, its items recorded as they pass -------------------


def _recorded(items: Iterator[Any], recorder: ResultsRecorder) -> Iterator[Any]:
    for item in items:
        with guarded():
            recorder.record(item)
        yield item


async def _arecorded(items: AsyncIterator[Any], recorder: ResultsRecorder) -> AsyncIterator[Any]:
    async for item in items:
        with guarded():
            recorder.record(item)
        yield item


def _recorder(fg: FluxGate | None, api: str, resource: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if fg is None:
        return None
    batch_id = kwargs.get("message_batch_id", args[0] if args else None)
    if not isinstance(batch_id, str):
        return None
    return ResultsRecorder(fg, batch_id=batch_id, api=api, platform=platform_of(getattr(resource, "_client", None)))


def _follow(decoder: Any, recorder: ResultsRecorder | None) -> None:
    """Have each result of ``decoder`` (the SDK's JSONL decoder) recorded as the SDK reads it."""
    if recorder is None:
        return
    # The SDK reads every item through this generator (anthropic 2.x makes
    # it on first use; reading the attribute only makes it, reads nothing).
    items = decoder._iterator
    decoder._iterator = _arecorded(items, recorder) if hasattr(items, "__anext__") else _recorded(items, recorder)


def _reading(api: str) -> Callable[..., Any]:
    """``batches.results()``: the SDK's decoder, each result read becoming one event, once."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        fg = active()
        decoder = wrapped(*args, **kwargs)
        with guarded():
            _follow(decoder, _recorder(fg, api, instance, args, kwargs))
        return decoder

    return marked(wrapper)


def _areading(api: str) -> Callable[..., Any]:
    """The async twin of ``_reading``."""

    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        fg = active()
        decoder = await wrapped(*args, **kwargs)
        with guarded():
            _follow(decoder, _recorder(fg, api, instance, args, kwargs))
        return decoder

    return marked(wrapper)


def _targets(module: str, prefix: str) -> tuple[Target, ...]:
    return (
        (module, "Batches", "results", _reading(f"{prefix}.results")),
        (module, "AsyncBatches", "results", _areading(f"{prefix}.results")),
    )


TARGETS: tuple[Target, ...] = (
    *_targets("anthropic.resources.messages.batches", "messages.batches"),
    *_targets("anthropic.resources.beta.messages.batches", "beta.messages.batches"),
)
