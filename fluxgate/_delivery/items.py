"""What flows through the flusher: events (built or still lazy), flush markers, and per-sink counters."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

import attrs

from .._models import CostEvent

__all__ = ["DropHook", "Item", "LazyEvent", "Marker", "SinkStats", "event_of"]


#: Called with the dropped event and the reason, one of ``DROP_REASONS``.
DropHook = Callable[[CostEvent, str], None]


class LazyEvent(Protocol):
    """An event still to be built (priced), off the caller's thread."""

    def materialize(self) -> CostEvent:
        """Build the event (once: later calls return the same one)."""


Item = CostEvent | LazyEvent


def event_of(item: Item) -> CostEvent:
    """The ``CostEvent`` of ``item``, built if it is not yet."""
    return item if isinstance(item, CostEvent) else item.materialize()


@attrs.define
class SinkStats:
    """Counters for one sink; events unless the name says batches."""

    delivered: int = 0
    dropped: int = 0
    dropped_by_reason: dict[str, int] = attrs.field(factory=dict)
    spilled: int = 0
    retried: int = 0  # batch re-sends after a transient failure
    failed_batches: int = 0  # rounds of retries that failed, and refused batches
    replayed: int = 0  # spilled events delivered later
    replay_dropped: int = 0  # spilled events dropped when replayed (refused, unwritable, or a torn line)


class Marker:
    """A flush request; done once every worker has passed it."""

    __slots__ = ("_left", "_lock", "done")

    def __init__(self) -> None:
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._left = 0

    def expect(self, count: int) -> None:
        self._left = count
        if count == 0:
            self.done.set()

    def arrive(self) -> None:
        with self._lock:
            self._left -= 1
            if self._left <= 0:
                self.done.set()
