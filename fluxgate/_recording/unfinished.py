"""Streams and raw bodies still open when a request ends, recorded right then.

A web request that streams a reply may end with the stream neither read to
its end nor closed: the client left, and the framework stopped reading a body
it will never close (Starlette drops a sync body iterator it runs in its
thread pool). Such a stream would be recorded only when garbage collection
finds it. Inside :func:`finish_streams_at_exit` (or while an
:class:`OpenStreams` is collecting), every stream and raw body that fluxgate
tracks is noted, and those still open when the block ends (or at
``finish()``) are recorded then, as aborted, with the usage seen so far.

It is opt-in, for blocks that bound one request (the ASGI and Django
middleware), and never implied by ``track_context``: a function may well
return a stream for its caller to read after its own scope has ended.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

from .._guard import guarded

__all__ = ["OpenStreams", "Reader", "finish_streams_at_exit", "watch"]

# Past this many readers, the finished ones are dropped before adding another
# (a long-lived block, a websocket session, must not keep every call it made).
_PRUNE_AT = 64


class Reader(Protocol):
    """A stream or body recorder: finished once, by whoever comes first."""

    @property
    def done(self) -> bool:
        """True once its call is recorded."""

    def finish(self, how: str) -> None:
        """Record its call now, if nobody has yet."""


class OpenStreams:
    """The streams and raw bodies opened while :meth:`collecting`, to :meth:`finish` those still open.

    Shared with the tasks and threads started while collecting: a request's
    streams are opened in the tasks and thread-pool workers it starts, which
    see copies of its context, and they must all reach this one holder (a
    mutable object in a ContextVar, on purpose).
    """

    __slots__ = ("_lock", "_readers")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readers: list[Reader] = []

    def add(self, reader: Reader) -> None:
        """Note ``reader`` (a stream's or a body's recorder) to finish later if still open."""
        with self._lock:
            if len(self._readers) >= _PRUNE_AT:
                self._readers = [r for r in self._readers if not r.done]
            self._readers.append(reader)

    @contextmanager
    def collecting(self) -> Iterator[OpenStreams]:
        """Within the block (and the tasks and threads that inherit its context), note what is opened."""
        token = _OPENED.set(self)
        try:
            yield self
        finally:
            # A token made in another Context cannot be reset there; never the user's problem.
            with guarded():
                _OPENED.reset(token)

    def finish(self) -> None:
        """Record every noted stream and body still open, now, as aborted."""
        with self._lock:
            readers, self._readers = self._readers, []
        for reader in readers:
            if not reader.done:
                with guarded():
                    reader.finish("abandoned")


_OPENED: ContextVar[OpenStreams | None] = ContextVar("fluxgate_open_streams", default=None)


def watch(reader: Reader) -> None:
    """Have the :class:`OpenStreams` collecting here, if any, note ``reader``."""
    opened = _OPENED.get()
    if opened is not None:
        opened.add(reader)


@contextmanager
def finish_streams_at_exit() -> Iterator[OpenStreams]:
    """Record the streams and raw bodies opened inside the block that are still open when it ends.

    They are recorded as aborted, with the usage seen so far (the prompt's
    estimate if none was seen), once: a stream read on after the block ended
    adds nothing. Streams opened by tasks and threads that inherit the
    block's context count too. Where a response's body is read after the
    handler returned (Django's ``StreamingHttpResponse``), collect with
    :meth:`OpenStreams.collecting` around the handler and call
    :meth:`OpenStreams.finish` when the response is closed instead.

    Example (what an ASGI middleware does around one request)::

        with finish_streams_at_exit():
            await app(scope, receive, send)
    """
    opened = OpenStreams()
    try:
        with opened.collecting():
            yield opened
    finally:
        opened.finish()
