"""The FluxGate object (settings, prices, flusher) and the process-global one.

Nothing here patches anything: ``init()`` in ``_lifecycle`` composes this module
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

from ._budget import Budget, BudgetGuard, SpendStore
from ._config import Config, resolve_endpoint
from ._delivery import DEFAULT_MAX_SPILL_BYTES, DropHook, Flusher, LazyEvent, RetryPolicy
from ._guard import guarded, internal_error_count
from ._models import CostEvent
from ._pricing import PriceTable
from ._store import BatchStore, SQLiteSink, SQLiteSpendStore, resolve_store
from .sinks import HTTPSink, Sink

__all__ = ["FluxGate", "active", "reporting_to", "set_active"]


class FluxGate:
    """One configured tracker: where events go and how they are priced.

    Most programs call :func:`fluxgate.init`, which builds one, makes it the
    process's active tracker and patches anthropic. Build one yourself to
    pass to :func:`fluxgate.anthropic.create_anthropic_cost_tracker`.

    Args:
        sinks: Where events go; default the store (a
            :class:`~fluxgate.sinks.SQLiteSink` or a
            :class:`~fluxgate.sinks.PostgresSink`), or only the HTTP sink when
            ``endpoint`` is set.
        store: Where events, budget spend and batch contexts live: a
            ``postgresql://user:pass@host:5432/db`` URL (shared by every
            process on every host; ``pip install 'fluxgate[postgres]'``) or a
            SQLite file's path. Default ``$FLUXGATE_DB``, else
            ``~/.local/share/fluxgate/events.db``.
        db_path: The older name for a SQLite ``store``.
        prices: Extra or replacement price rows: a mapping of model id to row,
            or the path of a JSON file of that shape.
        flush_interval_s: The longest an event waits before its batch is sent.
        max_batch_size: Events per batch.
        max_queue_size: Events held at most; beyond it new events are dropped
            and counted (the caller is never blocked).
        exit_timeout_s: The most time spent flushing at interpreter exit.
        on_drop: Called as ``on_drop(event, reason)`` for every dropped event
            (once per sink that dropped it); reasons are listed in
            ``docs/delivery.md``.
        retry: Retries and circuit breaker, per sink.
        endpoint: A FluxGate ingest endpoint (``$FLUXGATE_ENDPOINT``): adds
            a :class:`~fluxgate.sinks.HTTPSink` to ``sinks``.
        api_key: Its Bearer key (``$FLUXGATE_API_KEY``); never logged.
        allow_insecure_http: Allow ``http://`` to a host that is not loopback.
        spill_path: A directory where batches a sink cannot take are kept
            (one file per sink) and replayed later, even by the next run.
        max_spill_bytes: Bound of each sink's spill file; beyond it events
            are dropped and counted.
        budgets: Spending limits checked before each call (see
            :class:`fluxgate.Budget` and ``docs/budgets.md``).
        budget_store: Where budgets keep their spend (default: the local
            SQLite store, shared by the processes of the host).
        budget_count_tokens: Count a budgeted call's input exactly with the
            free ``count_tokens`` endpoint instead of a conservative estimate.
        budget_on_error: ``"block"`` (the default: fail closed) or ``"allow"``:
            what a budgeted call does when its spend can't be read or reserved.
        budget_lock_timeout_s: The longest a budgeted call waits for a
            budget store locked by another process before that counts as
            an error (see ``budget_on_error``).
        propagate_context: Carry the caller's scope into
            ``ThreadPoolExecutor.submit``/``map`` and ``loop.run_in_executor``
            (``init()`` installs the hook; ``uninstrument()`` removes it).

    Raises:
        ConfigurationError: An argument is invalid; the message says which.
    """

    def __init__(
        self,
        *,
        sinks: Sequence[Sink] | None = None,
        store: str | os.PathLike[str] | None = None,
        db_path: str | os.PathLike[str] | None = None,
        prices: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        flush_interval_s: float = 1.0,
        max_batch_size: int = 100,
        max_queue_size: int = 10_000,
        exit_timeout_s: float = 5.0,
        on_drop: DropHook | None = None,
        retry: RetryPolicy | None = None,
        endpoint: str | None = None,
        api_key: str | None = None,
        allow_insecure_http: bool = False,
        spill_path: str | os.PathLike[str] | None = None,
        max_spill_bytes: int = DEFAULT_MAX_SPILL_BYTES,
        budgets: Sequence[Budget] | None = None,
        budget_store: SpendStore | None = None,
        budget_count_tokens: bool = False,
        budget_on_error: str = "block",
        budget_lock_timeout_s: float = 2.0,
        propagate_context: bool = True,
    ) -> None:
        endpoint, api_key = resolve_endpoint(endpoint, api_key)
        self.config = config = Config(
            sinks=list(sinks) if isinstance(sinks, (list, tuple)) else sinks,
            store=store,
            db_path=db_path,
            prices=prices,
            flush_interval_s=flush_interval_s,
            max_batch_size=max_batch_size,
            max_queue_size=max_queue_size,
            exit_timeout_s=exit_timeout_s,
            on_drop=on_drop,
            retry=retry,
            endpoint=endpoint,
            api_key=api_key,
            allow_insecure_http=allow_insecure_http,
            spill_path=spill_path,
            max_spill_bytes=max_spill_bytes,
            budgets=budgets,
            budget_store=budget_store,
            budget_count_tokens=budget_count_tokens,
            budget_on_error=budget_on_error,
            budget_lock_timeout_s=budget_lock_timeout_s,
            propagate_context=propagate_context,
        )
        #: Where events, budget spend and batch contexts live: a SQLite file
        #: (a Path) or a PostgreSQL URL (a str; show it with describe_store()).
        self.store: str | Path = resolve_store(config.store, config.db_path)
        self._batch_store: Any = None
        self.budget_guard = _budget_guard(config, self.store)
        #: Ask the free count_tokens endpoint for a budgeted call's exact input
        #: (one more request before each such call) instead of estimating it.
        self.budget_count_tokens = config.budget_count_tokens
        table = PriceTable.default()
        self.prices = table.with_overrides(prices) if prices is not None else table
        chosen = list(config.sinks or [])
        if config.endpoint is not None:
            chosen.append(HTTPSink(config.endpoint, api_key=config.api_key, allow_insecure_http=allow_insecure_http))
        elif config.sinks is None:
            chosen.append(_store_sink(self.store))
        self._flusher = Flusher(
            chosen,
            max_queue_size=config.max_queue_size,
            max_batch_size=config.max_batch_size,
            flush_interval_s=config.flush_interval_s,
            retry=config.retry,
            on_drop=config.on_drop,
            spill_path=config.spill_path,
            max_spill_bytes=config.max_spill_bytes,
        )

    def __repr__(self) -> str:
        return f"<FluxGate sinks={list(self.sinks)!r}>"

    @property
    def sinks(self) -> tuple[Sink, ...]:
        """The sinks events are delivered to."""
        return self._flusher.sinks

    def record(self, event: CostEvent | LazyEvent) -> bool:
        """Queue ``event`` for delivery; False if it had to be dropped."""
        return self._flusher.submit(event)

    def flush(self, timeout_s: float | None = 5.0) -> bool:
        """Block until every event recorded so far is delivered or durably spilled, or ``timeout_s`` passes.

        Returns True only when everything recorded before the call was
        delivered to every sink or spilled to disk, and nothing was dropped
        since the previous flush; False when the timeout passed first (a
        warning says how many events are still queued) or something was
        dropped (``stats()`` says why). ``timeout_s`` is one budget for all
        sinks together.
        """
        return self._flusher.flush(timeout_s)

    def shutdown(self, timeout_s: float | None = 5.0) -> bool:
        """Flush, stop the threads and close the sinks, all within ``timeout_s``.

        Never hangs: what is still queued when the budget is spent is spilled,
        or dropped and counted (``shut_down``), and False is returned.
        """
        ok = self._flusher.close(timeout_s)
        for owned in (self._batch_store, None if self.config.budget_store else self._spend_store()):
            close = getattr(owned, "close", None)
            if close is not None:
                with guarded():
                    close()
        return ok

    @property
    def batch_store(self) -> Any:
        """Where batch creators' contexts are kept, made on first use.

        The configured store when events go to it (the default sink, or an
        explicit ``store=``/``db_path=``); otherwise a process-local one, so
        nothing is written to disk that the configuration did not ask for.
        """
        found = self._batch_store
        if found is None:
            with _lock:
                found = self._batch_store
                if found is None:
                    found = self._batch_store = _batch_store(self)
        return found

    def _spend_store(self) -> Any:
        return None if self.budget_guard is None else self.budget_guard.store

    def stats(self) -> dict[str, Any]:
        """Delivery counters, as plain data (see ``docs/delivery.md``).

        At rest (after ``flush()`` or ``shutdown()`` returns) one invariant
        holds: ``recorded`` = the intake's ``queued`` + ``dropped`` + for
        every sink its ``queued`` + ``delivered`` + ``dropped`` (by reason,
        in ``dropped_by_reason``) + ``spilled``. ``internal_errors`` counts
        the faults fluxgate swallowed.
        """
        out = self._flusher.snapshot()
        out["internal_errors"] = internal_error_count()
        return out


def _store_sink(store: str | Path) -> Sink:
    if isinstance(store, str):
        from .sinks import PostgresSink

        return PostgresSink(store)
    return SQLiteSink(store)


def _budget_guard(config: Config, store: str | Path) -> BudgetGuard | None:
    if config.budgets is None:
        return None
    spend = config.budget_store
    if spend is None:
        if isinstance(store, str):
            from ._store import PostgresSpendStore

            spend = PostgresSpendStore(store, connect_timeout_s=max(2.0, config.budget_lock_timeout_s))
        else:
            spend = SQLiteSpendStore(store, timeout_s=config.budget_lock_timeout_s)
    return BudgetGuard(config.budgets, spend, on_error=config.budget_on_error)


def _batch_store(fg: FluxGate) -> Any:
    config = fg.config
    if config.sinks is not None and config.store is None and config.db_path is None:
        return BatchStore(":memory:")  # explicit sinks only: keep batch contexts in the process
    if isinstance(fg.store, str):
        from ._store import PostgresBatchStore

        return PostgresBatchStore(fg.store)
    return BatchStore(fg.store)


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
    global _active  # the process-global tracker is the point
    with _lock:
        previous, _active = _active, fg
    return previous
