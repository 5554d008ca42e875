"""Helpers for testing code that uses fluxgate, and fluxgate itself.

- :class:`MemorySink` keeps events in a list.
- :func:`capture_events` records every event made inside a ``with`` block.
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .._fluxgate import active
from .._lifecycle import init, shutdown
from .._models import CostEvent
from ._fake_api import FakeAnthropicAPI
from ._fake_wire import FakeReply, FakeRequest, sse_body

__all__ = ["FakeAnthropicAPI", "FakeReply", "FakeRequest", "MemorySink", "capture_events", "sse_body"]


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


@contextmanager
def capture_events(**options: Any) -> Iterator[list[CostEvent]]:
    """Record the events of every tracked call made inside the block.

    Starts fluxgate with a :class:`MemorySink` (``options`` go to ``init``),
    yields the sink's list, and on exit flushes, so the list is complete,
    then shuts down. A FluxGate that was active before is restored.

    >>> with capture_events() as events:
    ...     pass
    >>> events
    []
    """
    previous = active()
    sink = MemorySink()
    fg = init(sinks=[sink], **options)
    try:
        yield sink.events
    finally:
        fg.flush(timeout_s=10)
        shutdown(timeout_s=10)
        if previous is not None:
            from .._fluxgate import set_active
            from .._instrument import instrument

            set_active(previous)
            instrument()
