"""The process's tracking lifecycle: ``init``, ``shutdown``, ``flush``, ``flush_after`` and the exit hooks.

``init()`` composes a :class:`FluxGate` with the patches and makes it the
active one; ``shutdown()`` undoes both. Events still queued at interpreter
exit (or at a multiprocessing child's exit) are flushed within
``exit_timeout_s``.

``flush_after`` is for serverless handlers: AWS Lambda, Cloud Functions and
Cloud Run freeze the process as soon as a handler returns, so the flusher's
threads stop mid-batch; flushing before returning is the only reliable point.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import importlib
import inspect
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, ParamSpec, Protocol, TypeVar, overload

from ._budget import Budget, SpendStore
from ._delivery import DEFAULT_MAX_SPILL_BYTES, DropHook, RetryPolicy
from ._fluxgate import FluxGate, active, set_active
from ._guard import env_flag, guarded, logger, start_quiet_thread
from ._instrument import instrument
from ._instrument import uninstrument as _uninstrument_sdk
from ._sigwatch import handling as sigterm_handling
from ._sigwatch import watch_sigterm
from ._threads import propagate as propagate_scopes
from ._threads import stop as stop_propagating
from .sinks import Sink

__all__ = ["flush", "flush_after", "init", "shutdown", "start", "uninstrument"]

_lock = threading.Lock()
_atexit_registered = False


def init(
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
) -> FluxGate:
    """Start tracking every anthropic call in this process.

    Patches anthropic's resource classes once (clients made before or after
    this call are tracked) and makes a new :class:`FluxGate` the active one.
    Calling it again replaces the FluxGate (the old one is flushed and shut
    down) and never double-wraps. With ``FLUXGATE_DISABLED=1`` nothing is
    patched and calls pass straight through. Options are those of
    :class:`FluxGate` (one list: ``fluxgate._config.Config``).

    Returns:
        The active :class:`FluxGate`.

    Raises:
        ConfigurationError: An option is invalid; the message says which.

    >>> import fluxgate
    >>> fg = fluxgate.init(sinks=[fluxgate.testing.MemorySink()])
    >>> fluxgate.shutdown()
    True
    """
    options = dict(locals())  # exactly this function's keywords, as FluxGate takes them
    fg = FluxGate(**options)
    if env_flag("FLUXGATE_DISABLED"):
        logger.info("fluxgate: FLUXGATE_DISABLED is set; anthropic calls are not tracked")
        return fg
    return start(fg)


def start(fg: FluxGate, *, force: bool = False) -> FluxGate:
    """Make ``fg`` the active FluxGate and install the patches (``init()`` without its checks).

    ``force`` patches even while ``FLUXGATE_DISABLED`` is set.
    """
    global _atexit_registered  # noqa: PLW0603
    with _lock:
        previous = set_active(fg)
        instrument(force=force)
        if fg.config.propagate_context:
            propagate_scopes()
        else:
            stop_propagating()
        if not _atexit_registered:
            atexit.register(_at_exit)
            _flush_at_child_exit()
            _atexit_registered = True
        _install_sigterm()
    if previous is not None and previous is not fg:
        with guarded():
            previous.shutdown(previous.config.exit_timeout_s)
    logger.info("fluxgate: tracking anthropic calls; events go to %s", ", ".join(map(repr, fg.sinks)))
    return fg


def uninstrument() -> None:
    """Remove every patch fluxgate installed: anthropic's methods and the thread-pool hook.

    Calling it twice warns and returns. Tracked calls then pass straight through.
    """
    _uninstrument_sdk()
    stop_propagating()


def shutdown(timeout_s: float | None = 5.0) -> bool:
    """Flush within ``timeout_s``, remove the patches and stop tracking.

    Returns False if some events could not be delivered in time. Safe to call
    when ``init()`` never ran.
    """
    with _lock:
        fg = set_active(None)
        _uninstrument_sdk()
        stop_propagating()
    if fg is None:
        return True
    ok = False
    with guarded():
        ok = fg.shutdown(timeout_s)
    return ok


_exiting = threading.Event()  # an exit flush is under way in this process
_signalled: list[int] = []  # a signal that arrived during it, to obey once it is done


def _at_exit() -> None:
    # Threads are daemons, so this is where the last events get out: within
    # exit_timeout_s, after which the process exits regardless.
    fg = active()
    if fg is not None:
        _exiting.set()
        try:
            with guarded():
                fg.shutdown(fg.config.exit_timeout_s)
        finally:
            _exiting.clear()
    if _signalled:
        _die_of(_signalled[-1])


def _die_of(signum: int) -> None:
    """End the process as ``signum``'s default action does, with its exit status."""
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


_previous_sigterm: Any = None


def _install_sigterm() -> None:
    """Deliver what is queued when SIGTERM arrives, then do what the signal asked.

    ``multiprocessing.Pool`` ends its workers with SIGTERM (a ``with`` block's
    exit calls ``terminate()``), as do container runtimes and process
    managers: without this, what a process still held was lost. Installed
    only from the main thread (where Python allows it), once; a handler the
    application had installed is chained, never replaced.
    """
    global _previous_sigterm  # noqa: PLW0603 - one handler per process
    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        return
    with guarded():
        current = signal.getsignal(signal.SIGTERM)
        if current is _on_sigterm:
            return
        _previous_sigterm = current
        signal.signal(signal.SIGTERM, _on_sigterm)
        if _spawned_child():
            # A spawned pool worker runs init() as it imports the main module,
            # and a pool ends it with SIGTERM as it does a forked one
            # (_flush_at_child_exit starts the watcher there).
            watch_sigterm(_on_sigterm)


def _spawned_child() -> bool:
    """Whether this process is a multiprocessing child (spawn or forkserver: it imported multiprocessing to start).

    A spawned child imports the parent's main module (and so runs its
    ``init()``) before ``parent_process()`` is set; while it does, its
    current process is marked ``_inheriting`` (what ``multiprocessing.spawn``
    itself checks to refuse starting processes from there).
    """
    process = sys.modules.get("multiprocessing.process")
    if process is None:
        return False
    parent_process = getattr(process, "parent_process", None)
    if parent_process is not None and parent_process() is not None:
        return True
    return bool(getattr(process.current_process(), "_inheriting", False))


def _on_sigterm(signum: int, frame: Any) -> None:
    sigterm_handling.set()
    previous = _previous_sigterm
    if _exiting.is_set() and not callable(previous):
        # We interrupted the exit flush itself (a pool worker leaving as the
        # pool terminates it): let it finish within its bound, then obey.
        _signalled.append(signum)
        return
    fg = active()
    if fg is not None:
        # The handler runs on the main thread, between two bytecodes of
        # whatever it interrupted, which may hold a lock delivery needs: the
        # work happens on a thread of its own, waited for within the bound.
        keep_running = callable(previous)  # the application may carry on: flush, don't stop
        worker = threading.Thread(target=_deliver, args=(fg, keep_running), name="fluxgate-sigterm", daemon=True)
        with guarded():
            start_quiet_thread(worker)
            worker.join(fg.config.exit_timeout_s + 1.0)
    if callable(previous):
        previous(signum, frame)
        return
    if previous != signal.SIG_IGN:
        _die_of(signum)


def _deliver(fg: FluxGate, keep_running: bool) -> None:
    with guarded():
        if keep_running:
            fg.flush(fg.config.exit_timeout_s)
        else:
            fg.shutdown(fg.config.exit_timeout_s)  # delivers, else spills, within the bound


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
            if signal.getsignal(signal.SIGTERM) is _on_sigterm:
                with guarded():
                    watch_sigterm(_on_sigterm)  # a pool worker blocked on its queue still obeys SIGTERM

        register(_at_exit, in_child)


def flush(timeout_s: float | None = 5.0) -> bool:
    """Deliver everything recorded so far by the active FluxGate.

    Returns True once delivered, False if ``timeout_s`` passed first. Without
    ``init()`` there is nothing to flush and it returns True.
    """
    fg = active()
    if fg is None:
        return True
    ok = True
    with guarded():
        ok = fg.flush(timeout_s)
    return ok


P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class _Decorator(Protocol):
    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, T]], /) -> Callable[P, Coroutine[Any, Any, T]]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def flush_after(fn: Callable[P, Coroutine[Any, Any, T]], /) -> Callable[P, Coroutine[Any, Any, T]]: ...
@overload
def flush_after(fn: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def flush_after(fn: None = None, /, *, timeout_s: float = 5.0) -> _Decorator: ...
def flush_after(fn: Callable[..., Any] | None = None, /, *, timeout_s: float = 5.0) -> Any:
    """Flush fluxgate's events when the decorated handler returns or raises.

    Works on plain and ``async`` functions; the async form flushes in a worker
    thread, so the event loop keeps running. The flush waits at most
    ``timeout_s``, never raises, and the handler's own result or exception
    comes back unchanged.

    Args:
        fn: The handler (the bare ``@flush_after`` form).
        timeout_s: The most time spent flushing per invocation.

    >>> import fluxgate
    >>> @fluxgate.flush_after(timeout_s=2)
    ... def handler(event, context):
    ...     return {"statusCode": 200}
    >>> handler({}, None)
    {'statusCode': 200}
    """
    if fn is None:
        return functools.partial(_wrap, timeout_s=timeout_s)
    return _wrap(fn, timeout_s=timeout_s)


def _flush(timeout_s: float) -> None:
    with guarded():
        fg = active()
        if fg is not None:
            fg.flush(timeout_s)


def _wrap(fn: Callable[..., Any], *, timeout_s: float) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            finally:
                await asyncio.to_thread(_flush, timeout_s)

        return run_async

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            _flush(timeout_s)

    return run
