"""Where events leave the process: the flusher, one worker per sink, retries and spill.

``flusher`` takes events from the caller's thread (never blocking it) and
batches them; ``worker`` delivers a sink's batches with tenacity retries and
a circuit breaker; ``spill`` keeps what a sink can't take on local disk.
"""

from __future__ import annotations

from .flusher import DEFAULT_MAX_SPILL_BYTES, DROP_REASONS, Flusher, LazyEvent
from .worker import DropHook, RetryPolicy

__all__ = ["DEFAULT_MAX_SPILL_BYTES", "DROP_REASONS", "DropHook", "Flusher", "LazyEvent", "RetryPolicy"]
