"""Handing the GIL to a background writer that waits for it behind a busy caller.

Python's sqlite3 lets go of the GIL around every statement it steps, psycopg
while it waits for the server's answer, and the writer then has to get it back.
A thread waiting for the GIL asks its holder to let go only after waiting
``sys.getswitchinterval()`` (5 ms) *in which nobody else had it*; each time the
holder lets go for a moment, the waiter is woken, finds the GIL taken again and
starts a new wait. A caller that keeps the interpreter busy and lets go only
for such moments (the SDK reads ``os.urandom`` for every request) so starves
the writer for as long as it runs: on a 2-core VM the SQLite writer was woken
in vain about once per call, each wake costing the process more CPU than
writing the event did.

So the writer says where it is: ``enter`` when it is handed work (woken, it
needs the GIL) and as a write begins, ``advance`` after each statement or wait
for the server (each ends with taking the GIL back) and each few rows it made
(a forced switch may have taken the GIL from it), ``leave`` when the write is
done; ``step`` is odd in between. The flusher's ``submit`` looks at it on the
caller's thread: a writer inside, at the same step as at the previous call, has
been in one statement or waiting for the GIL for a whole call, and the caller
sleeps ``YIELD_S`` (``sleep(0)`` would take the GIL straight back). A statement
can outlast a few calls (the writer then does not wait yet), so callers pause
at each of the step's first ``FIRST_PAUSES`` calls, then at its calls 16, 32,
64 and so on: a writer in a long statement (a lock another process holds, a
slow disk, a distant server) costs a busy caller a millisecond and a pause
each time the statement's length doubles, not a pause per call. Back from
such a statement the writer waits for the GIL at the same step, and is handed
it at most as many calls later as the statement lasted (were the pauses
simply used up, it would wait for as long as the caller stays busy).
Without a busy caller the writer never waits and nobody pauses.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["FIRST_PAUSES", "ROWS_PER_STEP", "YIELD_S", "Handoff"]

#: How long a caller lets go of the GIL for a writer that waits for it: long
#: enough for the waiting thread to be scheduled and take it.
YIELD_S = 0.0001
#: A step's first calls that pause each; after them, only its calls 16, 32, 64...
FIRST_PAUSES = 10
#: Rows a writer makes between two steps: about a millisecond's work.
ROWS_PER_STEP = 64


class Handoff:
    """Where a writer is in its statements, for callers to hand it the GIL (see the module)."""

    __slots__ = ("_calls", "_seen", "_sleep", "step")

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        #: Odd while the writer is inside its statements; new at each statement.
        self.step = 0
        self._seen = 0  # the odd step a caller saw last
        self._calls = 0  # the calls that saw it since
        self._sleep = sleep

    def enter(self) -> None:
        """The writer starts stepping statements (a new, odd step)."""
        self.step = (self.step | 1) + 2

    def advance(self) -> None:
        """The writer finished a statement and has the GIL back."""
        self.step += 2

    def leave(self) -> None:
        """The writer is done with its statements (an even step)."""
        self.step = (self.step + 1) & ~1

    def __enter__(self) -> Handoff:
        """A write: ``enter`` now, ``leave`` however it ends."""
        self.enter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.leave()

    def offer(self) -> None:
        """Called by a caller that found ``step`` odd: pause if the writer made no progress since the last call."""
        step = self.step
        if step != self._seen:
            self._seen, self._calls = step, 0
        elif step & 1:
            calls = self._calls = self._calls + 1
            if calls <= FIRST_PAUSES or not calls & (calls - 1):  # the first few, then each power of two
                self._sleep(YIELD_S)

    def reset(self) -> None:
        """Forget any writer (a forked child has none)."""
        self.step = self._seen = self._calls = 0
