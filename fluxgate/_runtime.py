"""The FluxGate object (settings, prices, flusher) and the process-global one.

Nothing here patches anything: ``init()`` in ``_setup`` composes this module
with ``_instrument``. Until a FluxGate is active, tracked calls pass straight
through.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from ._config import Config
from ._flusher import DropHook, Flusher, RetryPolicy
from ._guard import guarded, internal_error_count
from ._models import CostEvent
from ._pricing import PriceTable
from .sinks._base import Sink
from .sinks.sqlite import SQLiteSink

__all__ = ["FluxGate", "active", "flush", "reporting_to", "set_active"]


class FluxGate:
    """One configured tracker: where events go and how they are priced.

    Most programs call :func:`fluxgate.init`, which builds one, makes it the
    process's active tracker and patches anthropic. Build one yourself to
    pass to :func:`fluxgate.anthropic.create_anthropic_cost_tracker`.

    Args:
        sinks: Where events go; default a :class:`~fluxgate.sinks.SQLiteSink`
            at ``db_path``.
        db_path: The default SQLite store (default ``$FLUXGATE_DB`` or
            ``~/.local/share/fluxgate/events.db``).
        prices: Extra or replacement price rows: a mapping of model id to row,
            or the path of a JSON file of that shape.
        flush_interval_s: The longest an event waits before its batch is sent.
        max_batch_size: Events per batch.
        max_queue_size: Events held at most; beyond it new events are dropped
            and counted (the caller is never blocked).
        exit_timeout_s: The most time spent flushing at interpreter exit.
        on_drop: Called as ``on_drop(event, reason)`` for every dropped event.

    Raises:
        ConfigurationError: An argument is invalid; the message says which.
    """

    def __init__(
        self,
        *,
        sinks: Sequence[Sink] | None = None,
        db_path: str | os.PathLike[str] | None = None,
        prices: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        flush_interval_s: float = 1.0,
        max_batch_size: int = 100,
        max_queue_size: int = 10_000,
        exit_timeout_s: float = 5.0,
        on_drop: DropHook | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.config = Config(
            sinks=list(sinks) if sinks is not None else None,
            db_path=Path(db_path) if db_path is not None else None,
            prices=prices,
            flush_interval_s=flush_interval_s,
            max_batch_size=max_batch_size,
            max_queue_size=max_queue_size,
            exit_timeout_s=exit_timeout_s,
        )
        table = PriceTable.default()
        self.prices = table.with_overrides(prices) if prices is not None else table
        chosen = self.config.sinks if self.config.sinks is not None else [SQLiteSink(self.config.db_path)]
        self._flusher = Flusher(
            chosen,
            max_queue_size=max_queue_size,
            max_batch_size=max_batch_size,
            flush_interval_s=flush_interval_s,
            retry=retry,
            on_drop=on_drop,
        )

    def __repr__(self) -> str:
        return f"<FluxGate sinks={list(self.sinks)!r}>"

    @property
    def sinks(self) -> tuple[Sink, ...]:
        """The sinks events are delivered to."""
        return self._flusher.sinks

    def record(self, event: CostEvent) -> bool:
        """Queue ``event`` for delivery; False if it had to be dropped."""
        return self._flusher.submit(event)

    def flush(self, timeout_s: float | None = 5.0) -> bool:
        """Block until every event recorded so far is delivered, or ``timeout_s`` passes.

        Returns False when the timeout passed first (a warning says how many
        events are still queued).
        """
        return self._flusher.flush(timeout_s)

    def shutdown(self, timeout_s: float | None = 5.0) -> bool:
        """Flush within ``timeout_s``, then stop the thread and close the sinks."""
        return self._flusher.close(timeout_s)

    def stats(self) -> dict[str, Any]:
        """Counters: queued, dropped, and delivered/retried/dropped per sink."""
        out = self._flusher.snapshot()
        out["internal_errors"] = internal_error_count()
        return out


_lock = threading.Lock()
_active: FluxGate | None = None
# Set by code that routes its calls to a FluxGate of its own (the
# create_anthropic_cost_tracker facade), over the process-global one.
_override: ContextVar[FluxGate | None] = ContextVar("fluxgate_override", default=None)


def active() -> FluxGate | None:
    """The FluxGate that tracked calls report to, or None (pass-through)."""
    return _override.get() or _active


@contextmanager
def reporting_to(fg: FluxGate) -> Iterator[FluxGate]:
    """Within the block (this thread or task only), tracked calls report to ``fg``."""
    token = _override.set(fg)
    try:
        yield fg
    finally:
        _override.reset(token)


def set_active(fg: FluxGate | None) -> FluxGate | None:
    """Make ``fg`` the active FluxGate; returns the previous one."""
    global _active  # noqa: PLW0603 - the process-global tracker is the point
    with _lock:
        previous, _active = _active, fg
    return previous


def flush(timeout_s: float | None = 5.0) -> bool:
    """Deliver everything recorded so far by the active FluxGate.

    Returns True once delivered, False if ``timeout_s`` passed first. Without
    ``init()`` there is nothing to flush and it returns True.
    """
    fg = _active
    if fg is None:
        return True
    ok = True
    with guarded():
        ok = fg.flush(timeout_s)
    return ok
