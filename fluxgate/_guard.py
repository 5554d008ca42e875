"""The one place where fluxgate swallows its own exceptions, and the one parser of its environment flags.

Errors here are most likely bugs in fluxgate (or a response shape we did not
expect). They must never reach the user's code: they are logged once per
distinct problem on the ``fluxgate`` logger and counted. Set
``FLUXGATE_DEBUG=1`` to have them re-raised instead.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from ._errors import BudgetExceeded

__all__ = ["env_flag", "guarded", "internal_error_count", "logger", "start_quiet_thread", "swallow", "warn_once"]

logger = logging.getLogger("fluxgate")

_lock = threading.Lock()
_seen: set[str] = set()
_count = 0


def _report(exc: BaseException) -> None:
    """Log an internal error, once per exception type and message."""
    global _count  # noqa: PLW0603 - a process-wide counter is the point
    key = f"{type(exc).__name__}: {exc}"
    with _lock:
        _count += 1
        first = key not in _seen
        _seen.add(key)
    if first:
        logger.warning("fluxgate internal error (further identical ones are not logged): %s", key, exc_info=exc)


def internal_error_count() -> int:
    """How many internal errors were swallowed in this process."""
    return _count


_TRUE = frozenset({"1", "true", "yes", "on"})


def env_flag(name: str) -> bool:
    """True when the environment variable is set to 1, true, yes or on (any case).

    Every other value, ``0``, ``no``, ``off`` and the empty string included,
    means off: ``FLUXGATE_DEBUG=no`` must not turn debugging on.
    """
    return os.environ.get(name, "").strip().lower() in _TRUE


def _debug() -> bool:
    return env_flag("FLUXGATE_DEBUG")


def swallow(exc: Exception) -> None:
    """Report ``exc`` from an ``except Exception`` block on a hot path (cheaper than ``guarded``).

    Handles what ``guarded`` handles alike: a budget stop and, under
    ``FLUXGATE_DEBUG``, every error is raised again.
    """
    if isinstance(exc, BudgetExceeded) or _debug():
        raise exc
    _report(exc)


class _Guard:
    """``with guarded():`` as a plain class: a generator-based context manager
    costs about a microsecond per use, and a tracked call uses several."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, BudgetExceeded):
            return False  # BaseExceptions (KeyboardInterrupt) and budget stops pass
        if _debug():
            return False
        _report(exc)
        return True


_GUARD = _Guard()


def guarded() -> _Guard:
    """Run fluxgate bookkeeping; log and swallow what it raises.

    Never wrap the user's own call in this: their exceptions must propagate.
    """
    return _GUARD


def warn_once(key: str, message: str, *args: object) -> None:
    """Log a warning the first time ``key`` is seen in this process."""
    with _lock:
        if key in _seen:
            return
        _seen.add(key)
    logger.warning(message, *args)


# Signals fluxgate's handlers act on: its own threads must never be the one
# the kernel picks to deliver them. A process-directed signal goes to any
# thread that does not block it; if that is a background thread, CPython only
# flags it, and a main thread blocked in a lock or a pipe read (a
# multiprocessing pool worker waiting for work) never runs the handler: the
# process neither flushes nor dies.
_QUIET = frozenset(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGINT", None)) if s is not None)


def start_quiet_thread(thread: threading.Thread) -> None:
    """Start ``thread`` with SIGTERM and SIGINT blocked in it (it inherits the mask it is started with)."""
    block = getattr(signal, "pthread_sigmask", None)
    if block is None or not _QUIET:  # pragma: no cover - Windows
        thread.start()
        return
    previous = block(signal.SIG_BLOCK, _QUIET)
    try:
        thread.start()
    finally:
        block(signal.SIG_SETMASK, previous)
