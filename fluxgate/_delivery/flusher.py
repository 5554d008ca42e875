"""The background flusher: one intake queue, a dispatcher, one worker per sink.

The caller's thread only appends to a deque (a length check, no lock, no I/O;
while the background threads are starved of the GIL it also yields it now and
then, see ``_YIELD_EVERY``, and it hands the GIL to a sink's writer that waits
for it between statements, see ``fluxgate._handoff``).
When the queue holds ``max_queue_size`` events the *new* event is dropped and
counted: the queued ones are older and closer to delivery, and dropping the
newest needs no lock on the caller's path. A dispatcher thread wakes when five
batches are full, every ``flush_interval_s``, or on ``flush()``; it cuts the queue
into batches and offers each to every sink's worker (``worker.py``), which has
its own thread, bounded queue, retries, circuit breaker and spill file.
Events are built (priced) by the workers, once, and only for sinks that need
a ``CostEvent``: the SQLite store reads a call's facts directly.

Every event recorded is either queued here, dropped here (``queue_full``,
``shut_down``), or handed to every sink, where it is queued, delivered,
dropped (by reason) or spilled: ``snapshot()`` shows each count.

``flush()`` sends a marker through every queue and waits, with one deadline,
until every worker has passed it; it returns True only if nothing recorded
before it was dropped either. ``close()`` spends one budget on flushing, stopping and
joining; what is still queued when it runs out is spilled or counted as
dropped, and a sink stuck in ``write`` is left to its daemon thread.

After ``os.fork()`` the child starts with empty queues and threads of its own
(``os.register_at_fork``; a pid check in ``submit`` where that does not exist); events
queued before the fork are delivered once, by the parent.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._guard import guarded, logger, start_quiet_thread, warn_once
from .._handoff import YIELD_S
from .._models import CostEvent
from ..sinks import Sink
from .items import DropHook, Item, LazyEvent, Marker, SinkStats, event_of
from .policy import RetryPolicy
from .spill import Spill
from .worker import SinkWorker

__all__ = [
    "DEFAULT_MAX_SPILL_BYTES",
    "DROP_REASONS",
    "DropHook",
    "Flusher",
    "LazyEvent",
    "RetryPolicy",
    "SinkStats",
    "sink_names",
]

#: Why an event was dropped. The first two happen before any sink saw the
#: event; the others are per sink (the hook is called once per sink). A sink
#: that fails is not a reason: its events wait in its queue and are retried.
DROP_REASONS = (
    "queue_full",  # the intake queue was at max_queue_size
    "shut_down",  # recorded after close(), or still queued when close() ran out of time
    "sink_queue_full",  # this sink's own queue was full (it is slow or down) and there is no spill
    "rejected",  # the sink refused the batch for good (SinkError, e.g. HTTP 400)
    "unserializable",  # this one event cannot be written (or built); the rest of its batch was
    "spill_full",  # the spill file is at max_spill_bytes
    "spill_failed",  # the spill file could not be written
)

#: Starved threads: a caller that keeps the interpreter busy and lets go of the
#: GIL only for moments (I/O that is ready at once) gets it straight back, and
#: threads waiting for it can wait for seconds while the queues fill. So while
#: the dispatcher has not answered its wake-up, or a sink's worker holds more
#: than ``_BEHIND_WAKES`` wake-ups' worth of events, every ``_YIELD_EVERY``-th
#: ``submit()`` lets go of the GIL for ``_YIELD_S`` (long enough for a waiting
#: thread to be scheduled and take it: ``sleep(0)`` hands it straight back). A
#: caller that delivery keeps up with never does.
_BEHIND_WAKES = 2
_YIELD_S = YIELD_S
#: The dispatcher is woken when this many batches are queued (or the interval passes, or on flush()).
_WAKE_BATCHES = 5
_YIELD_EVERY = 10

#: The default bound of each sink's spill file.
DEFAULT_MAX_SPILL_BYTES = 100 * 2**20


def sink_names(sinks: Sequence[Sink]) -> list[str]:
    """Stable names for ``sinks``: the class name, then ``-2``, ``-3`` for repeats."""
    seen: dict[str, int] = {}
    names = []
    for sink in sinks:
        base = type(sink).__name__
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return names


#: Whether ``submit()`` must compare pids to notice that it runs in a forked child.
#: Where ``os.register_at_fork`` exists its hook does that (a fork from C code that
#: goes on running Python calls ``PyOS_AfterFork_Child``, which runs the hook too),
#: and ``os.getpid()`` is a system call, three times a clock read, on every call.
_CHECK_PID = not hasattr(os, "register_at_fork")
_live: weakref.WeakSet[Flusher] = weakref.WeakSet()
_fork_hook = threading.Lock()
_fork_hook_installed = False


def _reset_in_child() -> None:
    for flusher in list(_live):
        flusher._after_fork()


def _install_fork_hook(flusher: Flusher) -> None:
    global _fork_hook_installed  # noqa: PLW0603 - one process-wide hook
    _live.add(flusher)
    with _fork_hook:
        if not _fork_hook_installed and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_reset_in_child)
            _fork_hook_installed = True


class Flusher:
    """Owns the intake queue, the dispatcher and one worker per sink.

    Args:
        sinks: Where batches go.
        max_queue_size: Events the intake holds; when full the new event is
            dropped. Each sink's queue holds at most as many events again.
        max_batch_size: Events per batch.
        flush_interval_s: The longest an event waits before its batch is cut.
        retry: Retries and circuit breaker, per sink.
        on_drop: Called with every dropped event and its reason.
        sleep: Replaces the pause between retries (tests).
        spill_path: A directory for spill files; None drops instead.
        max_spill_bytes: Bound of each sink's spill file.
    """

    def __init__(
        self,
        sinks: Sequence[Sink],
        *,
        max_queue_size: int = 10_000,
        max_batch_size: int = 100,
        flush_interval_s: float = 1.0,
        retry: RetryPolicy | None = None,
        on_drop: DropHook | None = None,
        sleep: Callable[[float], None] | None = None,
        spill_path: str | os.PathLike[str] | None = None,
        max_spill_bytes: int = DEFAULT_MAX_SPILL_BYTES,
    ) -> None:
        self.sinks = tuple(sinks)
        self._max_queue_size = max_queue_size
        self._max_batch_size = max_batch_size
        #: The intake length that wakes the dispatcher: several batches, so that
        #: one wake-up (and one write to a sink that merges them) serves them all;
        #: at most a quarter of the queue, so a burst never fills it first.
        self._wake_at = max(max_batch_size, min(max_batch_size * _WAKE_BATCHES, max_queue_size // 4))
        self._flush_interval_s = flush_interval_s
        self._on_drop = on_drop
        policy = retry or RetryPolicy()
        directory = Path(spill_path) if spill_path is not None else None
        self._workers = tuple(
            SinkWorker(
                sink,
                name,
                policy=policy,
                max_events=max_queue_size,
                batch_size=max_batch_size,
                spill=None if directory is None else Spill(directory, name, max_bytes=max_spill_bytes),
                drop=self._call_hook,
                sleep=sleep,
            )
            for sink, name in zip(self.sinks, sink_names(self.sinks), strict=True)
        )
        #: The sinks' writers that step statements without the GIL (see fluxgate._handoff).
        self._handoffs = tuple(worker.handoff for worker in self._workers if worker.handoff is not None)
        self._closed = False
        self._start_fresh()
        _install_fork_hook(self)
        for worker in self._workers:  # replay what an earlier run spilled
            if worker.spill is not None and worker.spill.pending():
                worker.start()

    def _start_fresh(self) -> None:
        self._queue: deque[Item | Marker] = deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._start_lock = threading.Lock()
        self._drop_lock = threading.Lock()
        # Reentrant: an on_drop hook run while a batch is offered may ask for stats().
        self._dispatch_lock = threading.RLock()
        self._dropped: dict[str, int] = {"queue_full": 0, "shut_down": 0}
        self._dispatched = 0  # events the dispatcher handed to the workers
        #: A sink's worker holds more than a few batches (see submit()).
        self._behind = False
        self._drops_seen = 0  # every drop counted when the latest flush() returned

    def _after_fork(self) -> None:
        # The parent still owns (and will deliver) what it had queued; the
        # child begins empty, with locks, counters and threads of its own.
        self._start_fresh()
        for handoff in self._handoffs:
            handoff.reset()
        for worker in self._workers:
            worker.after_fork()

    # -- the caller's side ------------------------------------------------------

    def submit(self, event: CostEvent | LazyEvent) -> bool:
        """Queue ``event``. Returns True if queued, False if dropped; never blocks
        (while delivery is behind, one call in ten yields the GIL for a moment).

        A :class:`LazyEvent` is turned into its ``CostEvent`` off the caller's
        thread, and only for sinks that need one.
        """
        if _CHECK_PID and self._pid != os.getpid():
            self._after_fork()
        if self._closed:
            self._count_drop(event, "shut_down")
            return False
        queue = self._queue
        if len(queue) >= self._max_queue_size:
            self._count_drop(event, "queue_full")
            return False
        queue.append(event)
        if self._thread is None:
            self._ensure_thread()
        for handoff in self._handoffs:
            if handoff.step & 1:  # a writer is inside its statements: it may be waiting for the GIL
                handoff.offer()
        waiting = len(queue)
        if waiting >= self._wake_at:
            if not self._wake.is_set():
                self._wake.set()
            elif waiting % _YIELD_EVERY == 0:
                time.sleep(_YIELD_S)  # woken a while ago, the dispatcher is still waiting for the GIL
        elif self._behind and waiting % _YIELD_EVERY == 0 and self._still_behind():
            time.sleep(_YIELD_S)  # a sink's worker is behind: let it have the GIL
        return True

    def _still_behind(self) -> bool:
        """Whether a sink's worker still holds more than ``_BEHIND_WAKES`` wake-ups' worth of events.

        ``_dispatch`` sets ``_behind`` as it hands a batch over; a worker may
        have caught up since, and a caller that yields to a worker with
        nothing left to do leaves the process idle.
        """
        limit = _BEHIND_WAKES * self._wake_at
        behind = self._behind = any(worker.holding() > limit for worker in self._workers)
        return behind

    def flush(self, timeout_s: float | None = 5.0) -> bool:
        """Wait until every sink has handled everything queued before this call.

        Returns True only if every event recorded before it (since the
        previous ``flush()`` began) was delivered to every sink or spilled.
        Returns False, and logs why, if ``timeout_s`` passed first or an
        event was dropped (``snapshot()`` says why); never raises.
        """
        if self._pid != os.getpid():
            self._after_fork()
        # Every drop since the previous flush returned counts against this one
        # (an event dropped as it was recorded was dropped before now); flushes
        # that overlap may both report one.
        before = self._drops_seen
        if self._closed or (self._thread is None and not self._queue and not any(w.started for w in self._workers)):
            return self._no_drops_since(before)
        marker = Marker()
        self._queue.append(marker)
        if self._ensure_thread():
            self._wake.set()
        else:  # no new threads while the interpreter exits (Python 3.12): deliver here
            with guarded():
                self._drain()
        if not marker.done.wait(timeout_s):
            logger.warning("fluxgate: flush timed out after %ss; %d events still queued", timeout_s, self._backlog())
            return False
        return self._no_drops_since(before)

    def _drops(self) -> int:
        return sum(self._dropped.values()) + sum(worker.dropped() for worker in self._workers)

    def _no_drops_since(self, before: int) -> bool:
        now = self._drops()
        self._drops_seen = max(self._drops_seen, now)
        dropped = now - before
        if dropped:
            logger.warning("fluxgate: %d events were dropped since the last flush; see stats()", dropped)
        return not dropped

    def close(self, timeout_s: float | None = 5.0) -> bool:
        """Flush, stop the threads and close the sinks, all within ``timeout_s``.

        What is still queued when time runs out is spilled, or dropped and
        counted (reason ``shut_down``); a sink stuck in ``write`` is left to
        its daemon thread and not closed. Returns False in that case, or when
        the flush did. A batch on its way to a spill file then gets up to
        ``SPILL_GRACE_S`` more (``SinkWorker.abandon``).
        """
        if self._closed:
            return True
        deadline = None if timeout_s is None else time.monotonic() + timeout_s

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        ok = self.flush(timeout_s)
        self._closed = True
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(left())
        while self._queue:  # only if the dispatcher is stuck (inline, at exit) or never ran
            item = self._queue.popleft()
            if isinstance(item, Marker):
                item.done.set()
            else:
                self._count_drop(item, "shut_down")
        for worker in self._workers:
            worker.stop()
        for worker in self._workers:
            if not worker.join(left()):
                ok = False
                worker.abandon()
            elif not worker.started:
                with guarded():
                    worker.sink.close()
        return ok

    def queued(self) -> int:
        """Events waiting in the intake queue."""
        return sum(1 for item in list(self._queue) if not isinstance(item, Marker))

    def snapshot(self) -> dict[str, Any]:
        """Counters as plain data (the shape ``FluxGate.stats()`` documents).

        For every sink: ``recorded == queued + dropped + (its queued +
        delivered + dropped + spilled)``, the first two being the intake's.
        """
        with self._dispatch_lock:  # nothing moves from the intake to the workers meanwhile
            queued = self.queued()
            with self._drop_lock:
                dropped = dict(self._dropped)
                dispatched = self._dispatched
            sinks = {worker.name: worker.snapshot() for worker in self._workers}
        return {
            "recorded": dispatched + queued + sum(dropped.values()),
            "queued": queued,
            "dropped": sum(dropped.values()),
            "dropped_queue_full": dropped["queue_full"],
            "dropped_by_reason": {reason: count for reason, count in dropped.items() if count},
            "sinks": sinks,
        }

    # -- the dispatcher's side ----------------------------------------------------

    def _backlog(self) -> int:
        return self.queued() + sum(int(w.snapshot()["queued"]) for w in self._workers)

    def _ensure_thread(self) -> bool:
        """Start the dispatcher if needed; False if it is not running and cannot start."""
        with self._start_lock:
            if self._thread is not None:
                return True
            if self._closed:
                return False
            thread = threading.Thread(target=self._run, name="fluxgate-flusher", daemon=True)
            try:
                start_quiet_thread(thread)
            except RuntimeError:  # the interpreter is exiting (Python 3.12, cpython#113964)
                return False
            self._thread = thread
            return True

    def _run(self) -> None:
        while True:
            woken = self._wake.wait(self._flush_interval_s)
            self._wake.clear()
            with guarded():
                self._drain(whole_batches_only=woken and not self._stopping.is_set())
            if self._stopping.is_set() and not self._queue:
                return

    def _drain(self, *, whole_batches_only: bool = False) -> None:
        """Cut the intake into batches and offer them to the workers.

        Woken because batches filled up, the dispatcher leaves a last, partial
        batch for later (more events, the timer, a flush or close), unless a
        flush's marker waits behind it: under load every batch is a full one.

        It holds the dispatch lock throughout, so that ``snapshot()`` sees each
        event either still queued here or in every worker, never both or neither.
        """
        queue = self._queue
        size = self._max_batch_size
        batch: list[Item] = []
        with self._dispatch_lock:
            while queue:
                if (
                    whole_batches_only
                    and not batch
                    and len(queue) < size
                    and not any(isinstance(item, Marker) for item in list(queue))
                ):
                    return
                item = queue.popleft()
                if isinstance(item, Marker):
                    if batch:
                        self._dispatch(batch)
                        batch = []
                    item.expect(len(self._workers))
                    for worker in self._workers:
                        worker.offer_marker(item)
                    continue
                batch.append(item)
                if len(batch) >= size:
                    self._dispatch(batch)
                    batch = []
            if batch:
                self._dispatch(batch)

    def _dispatch(self, batch: list[Item]) -> None:
        """Offer ``batch`` to every worker (call with the dispatch lock held)."""
        most = 0
        with self._drop_lock:
            self._dispatched += len(batch)
        for worker in self._workers:
            most = max(most, worker.offer(list(batch)))  # a copy each: a sink may not share a list
        self._behind = most > _BEHIND_WAKES * self._wake_at  # until a caller finds otherwise (_still_behind)

    def _count_drop(self, event: Item, reason: str) -> None:
        with self._drop_lock:
            self._dropped[reason] += 1
        if self._on_drop is None:
            return
        try:
            built = event_of(event)
        except Exception as exc:  # noqa: BLE001 - counted already; the hook just cannot see it
            warn_once(f"unbuilt:{type(exc).__name__}", "fluxgate: a dropped event could not be built: %s", exc)
            return
        self._call_hook(built, reason)

    def _call_hook(self, event: CostEvent, reason: str) -> None:
        hook = self._on_drop
        if hook is None:
            return
        try:
            hook(event, reason)
        except Exception as exc:  # noqa: BLE001 - the user's callback must not break delivery
            name = type(exc).__name__
            warn_once(f"on_drop:{name}", "fluxgate: the on_drop hook raised %s: %s", name, exc)
