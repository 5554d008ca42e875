"""Helpers for testing code that uses fluxgate, and fluxgate itself.

- :class:`MemorySink` keeps events in a list.
- :func:`capture_events` records every event made inside a ``with`` block;
  the ``fluxgate_events`` pytest fixture (this package's plugin) does the
  same for a test, with a store of its own.
- :class:`FakeAnthropicAPI` is an in-process fake of the Messages API that
  speaks the real wire format (JSON bodies and server-sent event streams). It
  plugs into a real anthropic client as its HTTP transport, so everything
  above the transport (the SDK, fluxgate's patches) runs for real.

>>> api = FakeAnthropicAPI()
>>> client = api.client()
>>> with capture_events() as events:
...     _ = client.messages.create(model="claude-sonnet-4-6", max_tokens=64,
...                                messages=[{"role": "user", "content": "Hi"}])
>>> events[0].model
'claude-sonnet-4-6'
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, overload

from .._fluxgate import FluxGate, active
from .._guard import env_flag
from .._lifecycle import shutdown, start
from .._models import CostEvent
from ._fake_api import FakeAnthropicAPI
from ._fake_wire import FakeReply, FakeRequest, sse_body

__all__ = [
    "CapturedEvents",
    "FakeAnthropicAPI",
    "FakeReply",
    "FakeRequest",
    "MemorySink",
    "capture_events",
    "sse_body",
]


class MemorySink:
    """A sink that keeps every event in ``.events`` (thread-safe appends)."""

    def __init__(self) -> None:
        self.events: list[CostEvent] = []
        self.closed = False
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemorySink({len(self.events)} events)"

    def write(self, batch: Sequence[CostEvent]) -> None:
        """Append the batch, skipping events already stored (retried batches)."""
        with self._lock:
            for event in batch:
                if event.tracking_id not in self._seen:
                    self._seen.add(event.tracking_id)
                    self.events.append(event)

    def close(self) -> None:
        """Mark the sink closed; the events stay readable."""
        self.closed = True


class CapturedEvents(Sequence[CostEvent]):
    """The events recorded so far, delivered before every read.

    Reading it (``len``, indexing, iterating, comparing) first flushes the
    FluxGate that records them, so an event is there right after its call
    returns, not only when the block ends. Compares equal to a list of the
    same events.
    """

    def __init__(self, sink: MemorySink, fg: FluxGate, api: FakeAnthropicAPI | None = None) -> None:
        self._sink = sink
        self._fg = fg
        self._api = api

    @property
    def api(self) -> FakeAnthropicAPI:
        """A :class:`FakeAnthropicAPI` to make calls with (``events.api.client()``)."""
        if self._api is None:
            self._api = FakeAnthropicAPI()
        return self._api

    def _events(self) -> list[CostEvent]:
        if not self._sink.closed:
            self._fg.flush(timeout_s=10)
        return self._sink.events

    def __len__(self) -> int:
        return len(self._events())

    @overload
    def __getitem__(self, index: int) -> CostEvent: ...
    @overload
    def __getitem__(self, index: slice) -> list[CostEvent]: ...
    def __getitem__(self, index: int | slice) -> CostEvent | list[CostEvent]:
        return self._events()[index]

    def __iter__(self) -> Iterator[CostEvent]:
        return iter(list(self._events()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CapturedEvents):
            other = list(other)
        return isinstance(other, (list, tuple)) and list(self._events()) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._events())


@contextmanager
def capture_events(**options: Any) -> Iterator[CapturedEvents]:
    """Record the events of every tracked call made inside the block.

    Starts fluxgate with a :class:`MemorySink` (``options`` go to ``init``)
    and yields the events, which are delivered before every read, so each is
    visible right after its call. On exit it flushes and shuts down; a
    FluxGate that was active before is restored. It records even when
    ``FLUXGATE_DISABLED`` is set (with a warning): a test that asks for events
    means it.

    >>> with capture_events() as events:
    ...     pass
    >>> events
    []
    """
    previous = active()
    sink = MemorySink()
    fg = FluxGate(sinks=[sink], **options)
    disabled = env_flag("FLUXGATE_DISABLED")
    if disabled:
        warnings.warn(
            "FLUXGATE_DISABLED is set, but capture_events() records anyway: tests that capture events need them.",
            RuntimeWarning,
            stacklevel=3,
        )
    start(fg, force=disabled)
    try:
        yield CapturedEvents(sink, fg)
    finally:
        fg.flush(timeout_s=10)
        shutdown(timeout_s=10)
        if previous is not None:
            start(previous)
