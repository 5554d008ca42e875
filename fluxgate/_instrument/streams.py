"""Streams, followed through the SDK's own objects as the user reads them.

What the user gets back is the SDK's ``Stream`` / ``AsyncStream``, unchanged
in type. The SDK reads every stream through its ``_iterator`` (a generator
its ``__iter__``, ``__next__`` and the helper streams all pull from);
fluxgate puts a generator of its own in front of that one, which feeds each
event to the call's :class:`StreamRecorder` as it passes. The recorder is
found again from the stream (for ``close()``, the summary property and the
helper streams) through a :class:`Registry`, and finishes once, whichever of
end, error, close, interruption (``CancelledError``, ``KeyboardInterrupt``,
``GeneratorExit``), garbage collection or the end of a
``finish_streams_at_exit`` block comes first.

``messages.stream()`` returns the SDK's manager, which sends its request on
``__enter__``: the manager's ``__init__`` notes the scope and tracker it was
made under, and ``__enter__`` sends the request under them. The helper
``MessageStream`` reads the raw stream underneath, so it is recorded there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from .._context import Scope, activate, current_scopes, reset
from .._fluxgate import FluxGate, active, reporting_to
from .._guard import guarded
from .._models import CostTrackingResponse
from .._recording import ATTRIBUTE, Call, StreamRecorder, attach, header, watch
from .hooks import Registry, Target, marked

__all__ = ["TARGETS", "Origin", "follow", "is_async_stream", "is_stream", "recorder_of", "track_stream"]

#: The recorder of every stream being followed; a stream dropped unfinished is recorded then.
_STREAMS: Registry[StreamRecorder] = Registry(lambda recorder: recorder.finish("abandoned"))


def is_stream(result: Any) -> bool:
    """An SDK ``Stream`` (sync)."""
    # The class first: hasattr on a pydantic model instance raises and catches
    # an AttributeError, which costs microseconds on every tracked call.
    return hasattr(type(result), "__next__") and hasattr(result, "response")


def is_async_stream(result: Any) -> bool:
    """An SDK ``AsyncStream``."""
    return hasattr(type(result), "__anext__") and hasattr(result, "response")


def recorder_of(stream: Any) -> StreamRecorder | None:
    """The recorder following ``stream`` (an SDK stream, or a helper stream over one), if any."""
    found = _STREAMS.get(stream)
    if found is None:
        raw = getattr(stream, "_raw_stream", None)
        found = None if raw is None else _STREAMS.get(raw)
    return found


# -- event streams ---------------------------------------------------------------


def _events(events: Iterator[Any], recorder: StreamRecorder) -> Iterator[Any]:
    # A generator, not a class with __next__: resuming a generator costs less
    # per event than a Python call, and once the first token is seen a text
    # delta is passed on after one attribute read.
    feed = recorder.feed
    try:
        for event in events:
            if recorder.first_token is None or getattr(event, "type", None) != "content_block_delta":
                feed(event)
            yield event
    except Exception as exc:
        recorder.finish("error", exc)
        raise
    except BaseException:
        # GeneratorExit (the stream was dropped or its iterator closed),
        # CancelledError, KeyboardInterrupt: the reading stopped here.
        recorder.finish("interrupted")
        raise
    recorder.finish("end")


async def _aevents(events: AsyncIterator[Any], recorder: StreamRecorder) -> AsyncIterator[Any]:
    # See _events.
    feed = recorder.feed
    try:
        async for event in events:
            if recorder.first_token is None or getattr(event, "type", None) != "content_block_delta":
                feed(event)
            yield event
    except Exception as exc:
        recorder.finish("error", exc)
        raise
    except BaseException:
        recorder.finish("interrupted")
        raise
    recorder.finish("end")


def follow(stream: Any, recorder: StreamRecorder) -> None:
    """Have ``recorder`` see every event of ``stream`` (sync or async) as the SDK reads it."""
    if _STREAMS.get(stream) is not None:
        return  # a raw response's parse() hands back the same stream again
    _STREAMS.put(stream, recorder)
    # Anthropic 2.x makes the generator on first use (a cached property);
    # earlier releases in __init__. Either way it is read here, not iterated.
    events = stream._iterator
    stream._iterator = _aevents(events, recorder) if is_async_stream(stream) else _events(events, recorder)


def track_stream(call: Call, stream: Any) -> Any:
    """Record ``call`` from the events of ``stream``, the SDK's own object, which is returned."""
    recorder = StreamRecorder(call, header(getattr(stream, "response", None)))
    follow(stream, recorder)
    watch(recorder)
    return stream


def _closing(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``Stream.close()``: the stream ends here, read to the end or not."""
    try:
        return wrapped(*args, **kwargs)
    finally:
        recorder = _STREAMS.get(instance)
        if recorder is not None:
            recorder.finish("closed")


async def _aclosing(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``AsyncStream.close()``: the async twin of ``_closing``."""
    try:
        return await wrapped(*args, **kwargs)
    finally:
        recorder = _STREAMS.get(instance)
        if recorder is not None:
            recorder.finish("closed")


def _summary(stream: Any) -> CostTrackingResponse | None:
    """``fluxgate_cost_tracking_response`` of a stream: None until it has been recorded."""
    recorder = recorder_of(stream)
    return None if recorder is None else recorder.call.response


# -- messages.stream(): the manager and the helper stream ---------------------------------


class Origin:
    """The scopes and tracker something was made under, put back while it sends a request later.

    If the request is sent inside (a deeper scope of) those scopes, they are
    left alone; if elsewhere (the object was handed on, or used after its
    ``with`` block), the object's own scopes are put back for the request.
    """

    __slots__ = ("fg", "stack")

    def __init__(self, stack: tuple[Scope, ...], fg: FluxGate) -> None:
        self.stack = stack
        self.fg = fg

    @classmethod
    def here(cls) -> Origin | None:
        """The current scopes and tracker, or None when nothing is tracked."""
        fg = active()
        return None if fg is None else cls(current_scopes(), fg)

    @contextmanager
    def entered(self) -> Iterator[None]:
        """Within the block, requests carry this origin's scopes and report to its tracker."""
        token = None
        stack = self.stack
        if stack and current_scopes()[: len(stack)] != stack:
            token = activate(stack)
        fg = self.fg
        routed = reporting_to(fg) if active() is not fg else nullcontext()
        try:
            with routed:
                yield
        finally:
            if token is not None:
                with guarded():  # a token made in another Context cannot be reset here
                    reset(token)


_MANAGERS: Registry[Origin] = Registry()


def _made(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A ``stream()`` manager's ``__init__``: note where it was made (its request is sent later)."""
    wrapped(*args, **kwargs)
    with guarded():
        origin = Origin.here()
        if origin is not None:
            _MANAGERS.put(instance, origin)


def _entering(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The manager's ``__enter__``: its request is sent under the origin noted at ``stream()``."""
    origin = _MANAGERS.get(instance)
    if origin is None:
        return wrapped(*args, **kwargs)
    with origin.entered():
        return wrapped(*args, **kwargs)


async def _aentering(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The async manager's ``__aenter__``: the twin of ``_entering``."""
    origin = _MANAGERS.get(instance)
    if origin is None:
        return await wrapped(*args, **kwargs)
    with origin.entered():
        return await wrapped(*args, **kwargs)


def _final(message: Any, stream: Any) -> Any:
    with guarded():
        recorder = recorder_of(stream)
        if recorder is not None and recorder.call.response is not None:
            attach(message, recorder.call.response)
    return message


def _final_message(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``get_final_message()``: the message carries the stream's summary."""
    return _final(wrapped(*args, **kwargs), instance)


async def _afinal_message(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The async twin of ``_final_message``."""
    return _final(await wrapped(*args, **kwargs), instance)


def _helper_targets(module: str, prefix: str) -> tuple[Target, ...]:
    sync, asynchronous = f"{prefix}MessageStream", f"{prefix}AsyncMessageStream"
    return (
        (module, f"{sync}Manager", "__init__", marked(_made)),
        (module, f"{asynchronous}Manager", "__init__", marked(_made)),
        (module, f"{sync}Manager", "__enter__", marked(_entering)),
        (module, f"{asynchronous}Manager", "__aenter__", marked(_aentering)),
        (module, sync, "get_final_message", marked(_final_message)),
        (module, asynchronous, "get_final_message", marked(_afinal_message)),
        (module, sync, ATTRIBUTE, property(_summary)),
        (module, asynchronous, ATTRIBUTE, property(_summary)),
    )


TARGETS: tuple[Target, ...] = (
    ("anthropic._streaming", "Stream", "close", marked(_closing)),
    ("anthropic._streaming", "AsyncStream", "close", marked(_aclosing)),
    ("anthropic._streaming", "Stream", ATTRIBUTE, property(_summary)),
    ("anthropic._streaming", "AsyncStream", ATTRIBUTE, property(_summary)),
    *_helper_targets("anthropic.lib.streaming._messages", ""),
    *_helper_targets("anthropic.lib.streaming._beta_messages", "Beta"),
)
