"""The wrapt proxies fluxgate returns in place of the SDK's lazy objects.

Each proxy forwards everything to the object it wraps (``isinstance`` still
holds) and keeps its own state in ``_self_*`` attributes. Bookkeeping never
affects the user's reads: a fault in it is swallowed, the user's own
exceptions propagate unchanged, and every recorder finishes once, whichever
of end, close, error or garbage collection comes first.

- ``TrackedStream`` / ``TrackedAsyncStream``: an SDK ``Stream`` of events
  (``create(stream=True)``, and the raw stream under ``messages.stream()``).
- ``TrackedStreamManager`` / ``TrackedAsyncStreamManager``: what ``stream()``
  returns; the request is sent in ``__enter__``, under the call announced
  when ``stream()`` was called.
- ``TrackedMessageStream`` / ``TrackedAsyncMessageStream``: the helper stream
  the manager yields; it only adds the tracking attribute (the events are
  recorded underneath it, on the raw stream).
- ``TrackedBatchResults`` / ``TrackedAsyncBatchResults``: ``batches.results()``.
- ``TrackedRunner`` / ``TrackedAsyncRunner``: ``beta.messages.tool_runner()``;
  each step runs in the context the runner was made in.

The raw-response proxies are in ``_responses``.
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import wrapt

from .._context import Scope, activate, current_scopes, reset
from .._fluxgate import FluxGate, active, reporting_to
from .._guard import guarded
from .._models import CostTrackingResponse
from .._recording import ATTRIBUTE, STEP, Call, StepLog, StreamRecorder, announced, attach, header
from .batches import ResultsRecorder

__all__ = [
    "ObjectProxy",
    "RunnerScope",
    "TrackedAsyncBatchResults",
    "TrackedAsyncMessageStream",
    "TrackedAsyncRunner",
    "TrackedAsyncStream",
    "TrackedAsyncStreamManager",
    "TrackedBatchResults",
    "TrackedMessageStream",
    "TrackedRunner",
    "TrackedStream",
    "TrackedStreamManager",
    "is_async_stream",
    "is_stream",
    "track_stream",
]

if TYPE_CHECKING:
    ObjectProxy = wrapt.ObjectProxy[Any]
else:  # wrapt 1.x proxies are not subscriptable at run time
    ObjectProxy = wrapt.ObjectProxy

# Results claimed (one SQLite transaction) per read-ahead; every item read is
# handed to the user in order, so reading ahead changes nothing they see.
_RESULTS_CHUNK = 100


def is_stream(result: Any) -> bool:
    """An SDK ``Stream`` (sync)."""
    # The class first: hasattr on a pydantic model instance raises and catches
    # an AttributeError, which costs microseconds on every tracked call.
    return hasattr(type(result), "__next__") and hasattr(result, "response")


def is_async_stream(result: Any) -> bool:
    """An SDK ``AsyncStream``."""
    return hasattr(type(result), "__anext__") and hasattr(result, "response")


# -- event streams ------------------------------------------------------------


class _StreamBase(ObjectProxy):
    """What both stream proxies share: the recorder, and finishing it once.

    A stream dropped part-way is finished by ``weakref.finalize`` (not
    ``__del__``), which holds the recorder but never the stream.
    """

    def __init__(self, stream: Any, recorder: StreamRecorder) -> None:
        super().__init__(stream)
        self._self_recorder = recorder
        self._self_finalizer = weakref.finalize(self, recorder.finish, "abandoned")

    @property
    def fluxgate_cost_tracking_response(self) -> CostTrackingResponse | None:
        return self._self_recorder.call.response

    def _self_finalize(self, how: str, exc: BaseException | None = None) -> None:
        self._self_finalizer.detach()
        self._self_recorder.finish(how, exc)


class TrackedStream(_StreamBase):
    """A sync ``Stream`` that records its call when it ends, once."""

    def __iter__(self) -> Iterator[Any]:
        # A generator, not ``return self``: resuming a generator costs less per
        # event than a Python ``__next__`` call, and once the first token is
        # seen a text delta is passed on after one attribute read.
        recorder = self._self_recorder
        feed = recorder.feed
        try:
            for event in self.__wrapped__:
                if recorder.first_token is None or getattr(event, "type", None) != "content_block_delta":
                    feed(event)
                yield event
        except Exception as exc:
            self._self_finalize("error", exc)
            raise
        self._self_finalize("end")

    def __next__(self) -> Any:
        try:
            event = self.__wrapped__.__next__()
        except StopIteration:
            self._self_finalize("end")
            raise
        except Exception as exc:
            self._self_finalize("error", exc)
            raise
        self._self_recorder.feed(event)
        return event

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_finalize("closed")

    def __enter__(self) -> TrackedStream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_finalize("closed")


class TrackedAsyncStream(_StreamBase):
    """The async twin of ``TrackedStream``."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._self_events()

    async def _self_events(self) -> AsyncIterator[Any]:
        # See TrackedStream.__iter__.
        recorder = self._self_recorder
        feed = recorder.feed
        try:
            async for event in self.__wrapped__:
                if recorder.first_token is None or getattr(event, "type", None) != "content_block_delta":
                    feed(event)
                yield event
        except Exception as exc:
            self._self_finalize("error", exc)
            raise
        self._self_finalize("end")

    async def __anext__(self) -> Any:
        try:
            event = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_finalize("end")
            raise
        except Exception as exc:
            self._self_finalize("error", exc)
            raise
        self._self_recorder.feed(event)
        return event

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_finalize("closed")

    async def __aenter__(self) -> TrackedAsyncStream:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_finalize("closed")


def track_stream(call: Call, stream: Any) -> Any:
    """``stream`` wrapped so its events record ``call`` (sync or async)."""
    recorder = StreamRecorder(call, _request_id(stream))
    if is_async_stream(stream):
        return TrackedAsyncStream(stream, recorder)
    return TrackedStream(stream, recorder)


def _request_id(stream: Any) -> str | None:
    return header(getattr(stream, "response", None))


# -- messages.stream() ----------------------------------------------------------


class TrackedStreamManager(ObjectProxy):
    """``messages.stream(...)``'s manager: sends the request on ``__enter__`` as ``call``."""

    def __init__(self, manager: Any, call: Call) -> None:
        super().__init__(manager)
        self._self_call = call

    def __enter__(self) -> Any:
        with announced(self._self_call):
            stream = self.__wrapped__.__enter__()
        out = stream
        with guarded():
            out = TrackedMessageStream(stream, self._self_call)
        return out

    def __exit__(self, *exc_info: Any) -> Any:
        return self.__wrapped__.__exit__(*exc_info)


class TrackedAsyncStreamManager(ObjectProxy):
    """The async twin of ``TrackedStreamManager``."""

    def __init__(self, manager: Any, call: Call) -> None:
        super().__init__(manager)
        self._self_call = call

    async def __aenter__(self) -> Any:
        with announced(self._self_call):
            stream = await self.__wrapped__.__aenter__()
        out = stream
        with guarded():
            out = TrackedAsyncMessageStream(stream, self._self_call)
        return out

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self.__wrapped__.__aexit__(*exc_info)


class TrackedMessageStream(ObjectProxy):
    """The helper ``MessageStream``, with the tracking attribute and a tagged final message."""

    def __init__(self, stream: Any, call: Call) -> None:
        super().__init__(stream)
        self._self_call = call

    @property
    def fluxgate_cost_tracking_response(self) -> CostTrackingResponse | None:
        return self._self_call.response

    def get_final_message(self, *args: Any, **kwargs: Any) -> Any:
        message = self.__wrapped__.get_final_message(*args, **kwargs)
        with guarded():
            attach(message, self._self_call.response)
        return message

    def __enter__(self) -> TrackedMessageStream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        return self.__wrapped__.__exit__(*exc_info)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.__wrapped__)

    def __next__(self) -> Any:
        return self.__wrapped__.__next__()


class TrackedAsyncMessageStream(ObjectProxy):
    """The async twin of ``TrackedMessageStream``."""

    def __init__(self, stream: Any, call: Call) -> None:
        super().__init__(stream)
        self._self_call = call

    @property
    def fluxgate_cost_tracking_response(self) -> CostTrackingResponse | None:
        return self._self_call.response

    async def get_final_message(self, *args: Any, **kwargs: Any) -> Any:
        message = await self.__wrapped__.get_final_message(*args, **kwargs)
        with guarded():
            attach(message, self._self_call.response)
        return message

    async def __aenter__(self) -> TrackedAsyncMessageStream:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self.__wrapped__.__aexit__(*exc_info)

    def __aiter__(self) -> Any:
        return self.__wrapped__.__aiter__()

    async def __anext__(self) -> Any:
        return await self.__wrapped__.__anext__()


# -- batches.results() ---------------------------------------------------------------


class TrackedBatchResults(ObjectProxy):
    """``batches.results()``: each result the user iterates is recorded once, a chunk at a time."""

    def __init__(self, decoder: Any, recorder: ResultsRecorder) -> None:
        super().__init__(decoder)
        self._self_recorder = recorder
        self._self_ready: deque[Any] = deque()
        self._self_error: BaseException | None = None
        self._self_ended = False

    def __iter__(self) -> TrackedBatchResults:
        return self

    def __next__(self) -> Any:
        if not self._self_ready:
            self._self_fill()
        if self._self_ready:
            return self._self_ready.popleft()
        if self._self_error is not None:
            error, self._self_error = self._self_error, None
            raise error
        raise StopIteration

    def _self_fill(self) -> None:
        if self._self_ended:
            return
        items: list[Any] = []
        while len(items) < _RESULTS_CHUNK:
            try:
                items.append(self.__wrapped__.__next__())
            except StopIteration:
                self._self_ended = True
                break
            except Exception as exc:  # noqa: BLE001 - the user's to see, after the items read before it
                self._self_error, self._self_ended = exc, True
                break
        with guarded():
            self._self_recorder.record(items)
        self._self_ready.extend(items)


class TrackedAsyncBatchResults(ObjectProxy):
    """The async twin of ``TrackedBatchResults``."""

    def __init__(self, decoder: Any, recorder: ResultsRecorder) -> None:
        super().__init__(decoder)
        self._self_recorder = recorder
        self._self_ready: deque[Any] = deque()
        self._self_error: BaseException | None = None
        self._self_ended = False

    def __aiter__(self) -> TrackedAsyncBatchResults:
        return self

    async def __anext__(self) -> Any:
        if not self._self_ready and not self._self_ended:
            items: list[Any] = []
            while len(items) < _RESULTS_CHUNK:
                try:
                    items.append(await self.__wrapped__.__anext__())
                except StopAsyncIteration:
                    self._self_ended = True
                    break
                except Exception as exc:  # noqa: BLE001 - the user's to see, after the items read before it
                    self._self_error, self._self_ended = exc, True
                    break
            with guarded():
                self._self_recorder.record(items)
            self._self_ready.extend(items)
        if self._self_ready:
            return self._self_ready.popleft()
        if self._self_error is not None:
            error, self._self_error = self._self_error, None
            raise error
        raise StopAsyncIteration


# -- beta.messages.tool_runner() ------------------------------------------------------


class RunnerScope:
    """The context and tracker a tool runner was made in, re-entered for each step.

    If a step runs inside (a deeper scope of) that context, it is left alone;
    if it runs elsewhere (the runner was handed on, or iterated after its
    ``with`` block), the runner's own context is put back for the step.
    """

    __slots__ = ("fg", "stack")

    def __init__(self, stack: tuple[Scope, ...], fg: FluxGate | None) -> None:
        self.stack = stack
        self.fg = fg

    @contextmanager
    def entered(self) -> Iterator[StepLog]:
        log = StepLog()
        step = STEP.set(log)
        token = None
        stack = self.stack
        if stack and current_scopes()[: len(stack)] != stack:
            token = activate(stack)
        fg = self.fg
        routed = reporting_to(fg) if fg is not None and active() is not fg else nullcontext()
        try:
            with routed:
                yield log
        finally:
            with guarded():
                if token is not None:
                    reset(token)
                STEP.reset(step)


def _tag(item: Any, log: StepLog) -> Any:
    """Hang the step's last call on what the step returned, if the SDK rebuilt the message."""
    with guarded():
        call = log.last
        if call is not None and call.response is not None and getattr(item, ATTRIBUTE, None) is None:
            attach(item, call.response)
    return item


class TrackedRunner(ObjectProxy):
    """A sync tool runner whose steps run in the context it was made in."""

    def __init__(self, runner: Any, scope: RunnerScope) -> None:
        super().__init__(runner)
        self._self_scope = scope

    def __iter__(self) -> TrackedRunner:
        return self

    def __next__(self) -> Any:
        with self._self_scope.entered() as log:
            item = self.__wrapped__.__next__()
        return _tag(item, log)

    def until_done(self, *args: Any, **kwargs: Any) -> Any:
        with self._self_scope.entered() as log:
            message = self.__wrapped__.until_done(*args, **kwargs)
        return _tag(message, log)


class TrackedAsyncRunner(ObjectProxy):
    """The async twin of ``TrackedRunner``."""

    def __init__(self, runner: Any, scope: RunnerScope) -> None:
        super().__init__(runner)
        self._self_scope = scope

    def __aiter__(self) -> TrackedAsyncRunner:
        return self

    async def __anext__(self) -> Any:
        with self._self_scope.entered() as log:
            item = await self.__wrapped__.__anext__()
        return _tag(item, log)

    async def until_done(self, *args: Any, **kwargs: Any) -> Any:
        with self._self_scope.entered() as log:
            message = await self.__wrapped__.until_done(*args, **kwargs)
        return _tag(message, log)
