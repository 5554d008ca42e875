"""Proxies for raw responses whose body the user has not read yet.

``with_raw_response`` with ``stream=True`` and every ``with_streaming_response``
call return an ``APIResponse`` (a ``LegacyAPIResponse`` on anthropic 0.x)
with the body still unread. fluxgate must not read it ahead: the call is
recorded from what ``parse()`` returns, or from the bytes as they pass through
``read()``, ``iter_bytes()``, ``iter_lines()``... (``_recorders.BodyRecorder``),
or, if the response is closed or dropped unread, with its usage unknown.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

from .._guard import guarded
from .._models import CostTrackingResponse
from .._recording import BodyRecorder, attach
from .streams import ObjectProxy, TrackedAsyncStream, TrackedStream, is_async_stream, is_stream

__all__ = ["TrackedAPIResponse", "TrackedAsyncAPIResponse", "TrackedLegacyResponse"]


class _ResponseBase(ObjectProxy):
    def __init__(self, response: Any, body: BodyRecorder) -> None:
        super().__init__(response)
        self._self_body = body
        self._self_parsed: tuple[Any, Any] | None = None
        self._self_finalizer = weakref.finalize(self, body.finish, "abandoned")

    @property
    def fluxgate_cost_tracking_response(self) -> CostTrackingResponse | None:
        return self._self_body.call.response

    def _self_finalize(self, how: str) -> None:
        self._self_finalizer.detach()
        self._self_body.finish(how)

    def _self_on_parsed(self, result: Any) -> Any:
        """What ``parse()`` gave: wrap a stream (once), or record the parsed message."""
        previous = self._self_parsed
        if previous is not None and previous[0] is result:
            return previous[1]
        out = result
        with guarded():
            body = self._self_body
            if is_stream(result):
                out = TrackedStream(result, body.stream)
            elif is_async_stream(result):
                out = TrackedAsyncStream(result, body.stream)
            elif body.kind == "json":
                if not body.done:
                    if hasattr(result, "__dict__") and getattr(result, "usage", None) is not None:
                        body.succeed(result)
                    else:
                        self._self_on_read()
                if body.call.response is not None and hasattr(result, "__dict__"):
                    attach(result, body.call.response)
            self._self_parsed = (result, out)
        return out

    def _self_on_read(self) -> None:
        """The user read the whole body by some means: record from it."""
        with guarded():
            body = self._self_body
            if not body.done:
                content = body.read_content()
                if content is not None:
                    body.complete(content)


class TrackedAPIResponse(_ResponseBase):
    """A sync ``APIResponse`` whose body is still unread."""

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_on_parsed(self.__wrapped__.parse(*args, **kwargs))

    def read(self) -> Any:
        data = self.__wrapped__.read()
        self._self_on_read()
        return data

    def text(self) -> Any:
        data = self.__wrapped__.text()
        self._self_on_read()
        return data

    def json(self) -> Any:
        data = self.__wrapped__.json()
        self._self_on_read()
        return data

    def iter_bytes(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        body = self._self_body
        for chunk in self.__wrapped__.iter_bytes(*args, **kwargs):
            body.feed(chunk)
            yield chunk
        body.finish("end")

    def iter_text(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        body = self._self_body
        for chunk in self.__wrapped__.iter_text(*args, **kwargs):
            body.feed(chunk.encode())
            yield chunk
        body.finish("end")

    def iter_lines(self) -> Iterator[str]:
        body = self._self_body
        for line in self.__wrapped__.iter_lines():
            body.feed(line.encode() + b"\n")
            yield line
        body.finish("end")

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_finalize("closed")


class TrackedAsyncAPIResponse(_ResponseBase):
    """An ``AsyncAPIResponse`` whose body is still unread."""

    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_on_parsed(await self.__wrapped__.parse(*args, **kwargs))

    async def read(self) -> Any:
        data = await self.__wrapped__.read()
        self._self_on_read()
        return data

    async def text(self) -> Any:
        data = await self.__wrapped__.text()
        self._self_on_read()
        return data

    async def json(self) -> Any:
        data = await self.__wrapped__.json()
        self._self_on_read()
        return data

    async def iter_bytes(self, *args: Any, **kwargs: Any) -> Any:
        body = self._self_body
        async for chunk in self.__wrapped__.iter_bytes(*args, **kwargs):
            body.feed(chunk)
            yield chunk
        body.finish("end")

    async def iter_text(self, *args: Any, **kwargs: Any) -> Any:
        body = self._self_body
        async for chunk in self.__wrapped__.iter_text(*args, **kwargs):
            body.feed(chunk.encode())
            yield chunk
        body.finish("end")

    async def iter_lines(self) -> Any:
        body = self._self_body
        async for line in self.__wrapped__.iter_lines():
            body.feed(line.encode() + b"\n")
            yield line
        body.finish("end")

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_finalize("closed")


class TrackedLegacyResponse(_ResponseBase):
    """A ``LegacyAPIResponse`` (anthropic 0.x ``with_raw_response``) whose body is unread.

    Its ``content`` and ``text`` are properties that read the whole body; the
    recorder finds that body read when it finishes (on garbage collection).
    """

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_on_parsed(self.__wrapped__.parse(*args, **kwargs))
