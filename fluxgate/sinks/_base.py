"""The interface every sink implements, and its error contract."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from .._models import CostEvent

__all__ = ["Sink"]


@runtime_checkable
class Sink(Protocol):
    """Where events go. Implement it without inheriting.

    ``write`` is called on the flusher's thread, never on the user's, with
    batches of events in the order they were recorded. It may raise
    :class:`fluxgate.TransientSinkError` to have the batch retried with backoff
    (it waits in the sink's queue meanwhile), or :class:`fluxgate.SinkError` to
    drop it (logged and counted). ``TypeError``, ``ValueError``,
    ``OverflowError`` and ``RecursionError`` mean an event's data cannot be
    written: the flusher writes the batch in parts to find that event and drops
    it alone (``unserializable``), so raise them only for data. Any other
    exception is treated as transient. A retried batch may be written twice:
    sinks de-duplicate on ``tracking_id``.
    """

    def write(self, batch: Sequence[CostEvent]) -> None:
        """Store or send ``batch``; return only once it is durable."""

    def close(self) -> None:
        """Release resources; called once, after the last ``write``."""
