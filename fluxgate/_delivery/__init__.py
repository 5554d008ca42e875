"""Where events leave the process: the flusher, one worker per sink, retries and spill.

``flusher`` takes events from the caller's thread (never blocking it) and
batches them; ``worker`` delivers a sink's batches with tenacity retries,
holding them through a sink's outage, and sets aside the one event a sink
cannot write (``writer``: retries and that search); ``policy`` says what a
failure means and when a circuit opens; ``spill`` keeps what a sink can't take
on local disk; ``items`` are the events, markers and counters in between.
"""

from __future__ import annotations

from .flusher import DEFAULT_MAX_SPILL_BYTES, DROP_REASONS, Flusher
from .items import DropHook, LazyEvent
from .policy import RetryPolicy

__all__ = ["DEFAULT_MAX_SPILL_BYTES", "DROP_REASONS", "DropHook", "Flusher", "LazyEvent", "RetryPolicy"]
