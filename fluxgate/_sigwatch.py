"""Make sure a SIGTERM that reached a forked child runs fluxgate's handler, even if its main thread is blocked.

CPython runs a Python signal handler on the main thread, between two
bytecodes. If the signal arrives just before the main thread enters a
blocking call that only wakes on EINTR (a ``multiprocessing`` pool worker
waiting for its queue's lock, ``sem_wait``), or while a thread of ours is the
one the kernel interrupts, the handler is left pending and the call never
returns: ``Pool.terminate()`` then waits for that worker forever. This
happened in about one run in forty of ``with Pool(4) as pool: pool.map(...)``.

In a child that ``multiprocessing`` forks or spawns (a spawned pool worker runs
``init()`` as it imports the main module), while fluxgate's SIGTERM handler is
installed, a watcher learns of every signal from the interpreter's wakeup fd
(``signal.set_wakeup_fd``: written by the C-level handler, on whatever thread
it runs) and, if the Python handler has not started within
``GRACE_S``, sends SIGTERM to the main thread again: the blocking call then
fails with EINTR and the pending handler runs. The watcher stays out of the way
of anything else that set a wakeup fd (asyncio does): then it is not started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from ._guard import guarded, start_quiet_thread

__all__ = ["GRACE_S", "handling", "watch_sigterm"]

#: How long the main thread has to start the handler before it is interrupted again.
GRACE_S = 0.5
#: Set by the SIGTERM handler as it starts (the watcher then has nothing to do).
handling = threading.Event()
#: This process's wakeup pipe (read end, write end), once the watcher runs.
_pipe: tuple[int, int] | None = None


def _forget() -> None:
    """In a forked child: the parent's pipe and watcher are not ours (its watcher would read our signals)."""
    global _pipe  # noqa: PLW0603 - per-process state
    if _pipe is None:
        return
    read_end, write_end = _pipe
    _pipe = None
    with contextlib.suppress(ValueError, OSError):
        previous = signal.set_wakeup_fd(-1)
        if previous not in (-1, write_end):  # someone else's since: put it back
            signal.set_wakeup_fd(previous)
    for fd in (read_end, write_end):
        with contextlib.suppress(OSError):
            os.close(fd)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget)


def watch_sigterm(handler: Callable[[int, Any], None]) -> bool:
    """Start the watcher for ``handler`` (fluxgate's, installed); False where it cannot or must not run."""
    global _pipe  # noqa: PLW0603 - per-process state
    if _pipe is not None or not hasattr(signal, "pthread_kill"):
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except ValueError:  # not the main thread of the main interpreter
        previous = -2
    if previous != -1:  # someone else's (asyncio's) wakeup fd: leave it as it was
        if previous != -2:
            signal.set_wakeup_fd(previous)
        os.close(read_end)
        os.close(write_end)
        return False
    _pipe = (read_end, write_end)
    handling.clear()
    main = threading.main_thread().ident
    thread = threading.Thread(target=_watch, args=(read_end, main, handler), name="fluxgate-sigterm-watch", daemon=True)
    start_quiet_thread(thread)
    return True


def _watch(read_end: int, main: int | None, handler: Callable[[int, Any], None]) -> None:
    """Wait for a SIGTERM; until ``handler`` starts, interrupt the main thread every ``GRACE_S``.

    Retires once the handler has started: it ends the process (or an
    application handler it chains to chose to carry on), and interrupting a
    handled signal again would run the handler twice. Retires too once
    ``handler`` is no longer SIGTERM's: the application's own handler, put in
    its place, must see each SIGTERM once.
    """
    while True:
        try:
            received = os.read(read_end, 64)
        except OSError:
            return
        if not received or handling.is_set():
            return
        if signal.SIGTERM in received:
            break
    while not handling.wait(GRACE_S) and main is not None:
        if signal.getsignal(signal.SIGTERM) is not handler:
            return
        with guarded(), contextlib.suppress(ProcessLookupError):
            signal.pthread_kill(main, signal.SIGTERM)  # wakes a blocked call with EINTR
