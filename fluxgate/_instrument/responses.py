"""Raw responses whose body the user has not read yet, followed as the user reads it.

``with_raw_response`` with ``stream=True`` and every ``with_streaming_response``
call return an ``APIResponse`` (a ``LegacyAPIResponse`` with anthropic 0.x's
``with_raw_response``) with the body still unread; the user gets the SDK's
own object. fluxgate must not read the body ahead: the call is recorded from
what ``parse()`` returns (a message, or a stream that is then followed like
any other), from the bytes as they pass through ``iter_bytes()``,
``iter_text()`` and ``iter_lines()``, or, when the response is closed or
dropped, from the body if something read it (``read()``, ``text()``,
``json()``), else with its usage unknown.

The patched methods are the SDK's classes' own; the state of a response
(its :class:`BodyRecorder`) is kept in a :class:`Registry` beside it.
``read()`` is not patched: the SDK's ``parse()`` calls it on every ordinary
call, and a body read whole is found read when the response is closed,
dropped or asked for its summary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from .._guard import guarded
from .._models import CostTrackingResponse
from .._recording import ATTRIBUTE, BodyRecorder, Call, attach, watch
from .hooks import Registry, Target, marked
from .streams import follow, is_async_stream, is_stream

__all__ = ["ON_FIRST_RAW", "TARGETS", "track_raw"]

_BODIES: Registry[BodyRecorder] = Registry(lambda body: body.finish("abandoned"))


def track_raw(call: Call, response: Any) -> Any:
    """Record ``call`` from the raw ``response`` now if its body was read, else as the user reads it."""
    body = BodyRecorder(call, response.http_response)
    _BODIES.put(response, body)
    content = body.read_content()
    if content is not None:  # with_raw_response without stream=True: the SDK read it already
        body.complete(content)
    else:
        watch(body)
    return response


def _found_read(body: BodyRecorder) -> None:
    """Record from the whole body if something (``read()``, ``json()``...) has read it."""
    if not body.done:
        content = body.read_content()
        if content is not None:
            body.complete(content)


def _parsed(body: BodyRecorder, result: Any) -> Any:
    """What ``parse()`` gave: follow a stream, or record the parsed message."""
    with guarded():
        if is_stream(result) or is_async_stream(result):
            follow(result, body.stream)
        elif body.kind == "json":
            if not body.done:
                if hasattr(result, "__dict__") and getattr(result, "usage", None) is not None:
                    body.succeed(result)
                else:
                    _found_read(body)
            if body.call.response is not None and hasattr(result, "__dict__"):
                attach(result, body.call.response)
    return result


def _parsing(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``parse()`` (on every call: the SDK parses ordinary responses with it too)."""
    body = _BODIES.get(instance)
    if body is None:
        return wrapped(*args, **kwargs)
    return _parsed(body, wrapped(*args, **kwargs))


async def _aparsing(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``AsyncAPIResponse.parse()``: the twin of ``_parsing``."""
    body = _BODIES.get(instance)
    if body is None:
        return await wrapped(*args, **kwargs)
    return _parsed(body, await wrapped(*args, **kwargs))


def _closing(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``close()`` (also on leaving ``with_streaming_response``'s block)."""
    try:
        return wrapped(*args, **kwargs)
    finally:
        body = _BODIES.get(instance)
        if body is not None:
            body.finish("closed")


async def _aclosing(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The async twin of ``_closing``."""
    try:
        return await wrapped(*args, **kwargs)
    finally:
        body = _BODIES.get(instance)
        if body is not None:
            body.finish("closed")


def _fed(chunks: Iterator[Any], body: BodyRecorder, encode: Callable[[Any], bytes]) -> Iterator[Any]:
    try:
        for chunk in chunks:
            body.feed(encode(chunk))
            yield chunk
    except BaseException:
        body.finish("interrupted")
        raise
    body.finish("end")


async def _afed(chunks: AsyncIterator[Any], body: BodyRecorder, encode: Callable[[Any], bytes]) -> AsyncIterator[Any]:
    try:
        async for chunk in chunks:
            body.feed(encode(chunk))
            yield chunk
    except BaseException:
        body.finish("interrupted")
        raise
    body.finish("end")


def _as_bytes(chunk: bytes) -> bytes:
    return chunk


def _text_bytes(chunk: str) -> bytes:
    return chunk.encode()


def _line_bytes(line: str) -> bytes:
    return line.encode() + b"\n"


def _reading(encode: Callable[[Any], bytes]) -> Callable[..., Any]:
    """A patch for ``iter_bytes()`` / ``iter_text()`` / ``iter_lines()``: the body is fed as it passes."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        body = _BODIES.get(instance)
        if body is None:
            return wrapped(*args, **kwargs)
        return _fed(wrapped(*args, **kwargs), body, encode)

    return marked(wrapper)


def _areading(encode: Callable[[Any], bytes]) -> Callable[..., Any]:
    """The async twin of ``_reading`` (the methods are async generators)."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        body = _BODIES.get(instance)
        if body is None:
            return wrapped(*args, **kwargs)
        return _afed(wrapped(*args, **kwargs), body, encode)

    return marked(wrapper)


def _summary(response: Any) -> CostTrackingResponse | None:
    """``fluxgate_cost_tracking_response`` of a raw response: None until its call is recorded."""
    body = _BODIES.get(response)
    if body is None:
        return None
    with guarded():
        _found_read(body)
    return body.call.response


_RESPONSE = "anthropic._response"

#: Patched when the first raw response is handed back, not by ``instrument()``: the SDK
#: turns every ordinary response into its message with the same ``parse()``, so a patch
#: there from the start would put a second wrapt hop on every call (see ``patches._settle``).
ON_FIRST_RAW: tuple[Target, ...] = (
    (_RESPONSE, "APIResponse", "parse", marked(_parsing)),
    (_RESPONSE, "AsyncAPIResponse", "parse", marked(_aparsing)),
    ("anthropic._legacy_response", "LegacyAPIResponse", "parse", marked(_parsing)),
)

TARGETS: tuple[Target, ...] = (
    (_RESPONSE, "APIResponse", "close", marked(_closing)),
    (_RESPONSE, "AsyncAPIResponse", "close", marked(_aclosing)),
    (_RESPONSE, "APIResponse", "iter_bytes", _reading(_as_bytes)),
    (_RESPONSE, "APIResponse", "iter_text", _reading(_text_bytes)),
    (_RESPONSE, "APIResponse", "iter_lines", _reading(_line_bytes)),
    (_RESPONSE, "AsyncAPIResponse", "iter_bytes", _areading(_as_bytes)),
    (_RESPONSE, "AsyncAPIResponse", "iter_text", _areading(_text_bytes)),
    (_RESPONSE, "AsyncAPIResponse", "iter_lines", _areading(_line_bytes)),
    (_RESPONSE, "BaseAPIResponse", ATTRIBUTE, property(_summary)),
    # anthropic 0.x's with_raw_response: its content and text are properties
    # that read the whole body, found read when the response is dropped.
    ("anthropic._legacy_response", "LegacyAPIResponse", ATTRIBUTE, property(_summary)),
)
