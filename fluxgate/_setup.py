"""``init()`` and ``shutdown()``: compose the runtime with the patches."""

from __future__ import annotations

import atexit
import importlib
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ._budget import Budget, SpendStore
from ._config import env_flag
from ._flusher import DEFAULT_MAX_SPILL_BYTES, DropHook, RetryPolicy
from ._guard import guarded, logger
from ._instrument import instrument, uninstrument
from ._runtime import FluxGate, active, set_active
from .sinks._base import Sink

__all__ = ["init", "shutdown"]

_lock = threading.Lock()
_atexit_registered = False


def init(
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
    endpoint: str | None = None,
    api_key: str | None = None,
    allow_insecure_http: bool = False,
    spill_path: str | os.PathLike[str] | None = None,
    max_spill_bytes: int = DEFAULT_MAX_SPILL_BYTES,
    budgets: Sequence[Budget] | None = None,
    budget_store: SpendStore | None = None,
    budget_count_tokens: bool = False,
) -> FluxGate:
    """Start tracking every anthropic call in this process.

    Patches anthropic's resource classes once (clients made before or after
    this call are tracked) and makes a new :class:`FluxGate` the active one.
    Calling it again replaces the FluxGate (the old one is flushed and shut
    down) and never double-wraps. With ``FLUXGATE_DISABLED=1`` nothing is
    patched and calls pass straight through. Options are those of
    :class:`FluxGate`.

    Returns:
        The active :class:`FluxGate`.

    Raises:
        ConfigurationError: An option is invalid; the message says which.

    >>> import fluxgate
    >>> fg = fluxgate.init(sinks=[fluxgate.testing.MemorySink()])
    >>> fluxgate.shutdown()
    True
    """
    global _atexit_registered  # noqa: PLW0603
    fg = FluxGate(
        sinks=sinks,
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
    )
    if env_flag("FLUXGATE_DISABLED"):
        logger.info("fluxgate: FLUXGATE_DISABLED is set; anthropic calls are not tracked")
        return fg
    with _lock:
        previous = set_active(fg)
        instrument()
        if not _atexit_registered:
            atexit.register(_at_exit)
            _flush_at_child_exit()
            _atexit_registered = True
    if previous is not None and previous is not fg:
        with guarded():
            previous.shutdown(previous.config.exit_timeout_s)
    return fg


def shutdown(timeout_s: float | None = 5.0) -> bool:
    """Flush within ``timeout_s``, remove the patches and stop tracking.

    Returns False if some events could not be delivered in time. Safe to call
    when ``init()`` never ran.
    """
    with _lock:
        fg = set_active(None)
        uninstrument()
    if fg is None:
        return True
    ok = False
    with guarded():
        ok = fg.shutdown(timeout_s)
    return ok


def _at_exit() -> None:
    # Threads are daemons, so this is where the last events get out: within
    # exit_timeout_s, after which the process exits regardless.
    fg = active()
    if fg is not None:
        with guarded():
            fg.shutdown(fg.config.exit_timeout_s)


def _flush_at_child_exit() -> None:
    # multiprocessing (and celery's billiard) end a forked child with
    # os._exit(), which skips atexit: flush from their own exit finalizers.
    # The finalizer is registered in each child, after they clear the registry.
    modules = [importlib.import_module("multiprocessing.util")]
    if "billiard.util" in sys.modules:
        modules.append(sys.modules["billiard.util"])
    for util in modules:
        register = getattr(util, "register_after_fork", None)
        finalize = getattr(util, "Finalize", None)
        if register is None or finalize is None:
            continue

        def in_child(_: object, finalize: Any = finalize) -> None:
            finalize(None, _at_exit, exitpriority=100)

        register(_at_exit, in_child)
