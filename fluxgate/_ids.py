"""Tracking ids (unique, cheap to make, safe across fork) and the wall clock in milliseconds.

``uuid.uuid4()`` reads the kernel's random source on every call; inside some
virtual machines that system call alone took ~20 µs, more than everything
else fluxgate does for a call. An id here is a random 64-bit prefix, drawn
once per process (again in a forked child), followed by a 64-bit counter:
unique within a process by construction, and across processes unless two of
them draw the same 64-bit prefix.
"""

from __future__ import annotations

import itertools
import os
import time

__all__ = ["new_tracking_id", "now_ms"]

_prefix = ""
_counter = itertools.count()


def _reseed() -> None:
    global _prefix, _counter  # noqa: PLW0603 - per-process state is the point
    _prefix = os.urandom(8).hex()
    _counter = itertools.count()


_reseed()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def new_tracking_id() -> str:
    """A new 32-hex-digit tracking id."""
    # next() on itertools.count is atomic under the GIL (and in free-threaded
    # builds count is thread-safe), so no lock is needed on this path.
    return f"{_prefix}{next(_counter):016x}"


def now_ms() -> int:
    """Milliseconds since the epoch, as stored in ``created_at``."""
    return time.time_ns() // 1_000_000
