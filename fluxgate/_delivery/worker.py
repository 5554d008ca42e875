"""One sink's worker: its thread, bounded queue, circuit breaker, spill and counters.

The flusher (``flusher.py``) gives every sink a worker, so a slow or dead sink
never delays another. The worker writes each batch with its ``BatchWriter``
(``writer.py``: retries, and the search for events the sink cannot write). A
batch whose round of retries failed is not dropped: it stays at the head of
the queue, and after ``breaker_failures`` failed rounds the circuit opens and
the sink is left alone for a cool-down, then probed with that batch. So a
burst of errors costs time, not events; what the queue cannot hold goes to the
spill file, or is dropped and counted (``sink_queue_full``). A flush() that
waits behind a failing sink has its batches spilled, when there is a file.

Counting: every event handed to a worker is in exactly one of ``queued``,
``delivered``, ``dropped`` and ``spilled`` (between two of them for the
moment it takes to move it). Events replayed from a
spill file were counted when they were spilled; what happens to them is
counted apart (``replayed``, ``replay_dropped``).
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from .._guard import guarded, logger, start_quiet_thread, swallow, warn_once
from .._handoff import Handoff
from .._models import CostEvent
from .._store import event_line
from ..sinks import Sink
from .items import DropHook, Item, Marker, SinkStats, event_of
from .policy import Breaker, Failure, RetryPolicy
from .spill import Spill
from .writer import BatchWriter

__all__ = ["SPILL_GRACE_S", "SinkWorker"]

#: How long abandon() waits for a batch on its way to the spill file (local
#: disk: milliseconds, unless the disk is stuck).
SPILL_GRACE_S = 1.0


class _Step(enum.Enum):
    BATCH = 1  # deliver the batch now in flight
    MARKER = 2  # pass a flush marker
    SET_ASIDE = 3  # spill (or drop) batches a failing sink holds
    REPLAY = 4  # replay the spill file
    WAIT = 5  # nothing to do without waiting (inline delivery only)
    EXIT = 6  # stopped: close the sink
    ABANDONED = 7  # close() gave up on this thread


_Next = tuple[_Step, Any]


class SinkWorker:
    """One sink's thread, bounded queue, retries, breaker and spill."""

    def __init__(
        self,
        sink: Sink,
        name: str,
        *,
        policy: RetryPolicy,
        max_events: int,
        batch_size: int,
        spill: Spill | None,
        drop: DropHook,
        sleep: Callable[[float], None] | None,
    ) -> None:
        self.sink = sink
        self.name = name
        self._policy = policy
        self._max_events = max_events
        self._batch_size = batch_size
        self._spill = spill
        self._drop_hook = drop
        self._sleep = sleep
        # Sinks that read a call's facts themselves (SQLite, OTel) skip building its CostEvent.
        self._raw = getattr(sink, "accepts_pending_events", False) is True
        # Sinks whose cost is per write (a SQLite transaction) take the batches
        # waiting in their queue in one write, up to this many events: no
        # batch waits longer for it, and a backlog drains several times faster.
        merge = getattr(sink, "max_events_per_write", 0)
        self._merge_up_to = merge if isinstance(merge, int) and merge > batch_size else 0
        #: Where this thread is, for a sink that says where its writes are (SQLite, PostgreSQL):
        #: woken, the thread may wait for the GIL behind a busy caller, who then
        #: hands it over (fluxgate._handoff). Marked in ``offer``, left once handled.
        handoff = getattr(sink, "_handoff", None)
        self.handoff = handoff if isinstance(handoff, Handoff) else None
        self._reset()

    def _reset(self) -> None:
        self.stats = SinkStats()
        self._breaker = Breaker(self._policy)
        self._cond = threading.Condition()
        self._queue: deque[list[Item] | Marker] = deque()
        self._pending = 0
        self._inflight: list[Item] | None = None
        self._held: list[Item] | None = None  # the batch that failed its last round, back at the head
        self._thread: threading.Thread | None = None
        self._inline = False
        self._busy = False
        self._stopping = False
        self._abandoned = threading.Event()
        self._aside: deque[list[Item]] = deque()  # taken from the queue, to be spilled (or dropped) by the thread
        self._spilling: list[Item] | None = None  # the batch on its way to the spill file, not yet counted
        self._giving_up = threading.Lock()  # held while a batch goes to the spill file: abandon() waits for it
        self._writer = BatchWriter(
            self.sink, self._policy, sleep=self._sleep, stopped=self._abandoned, retried=self._count_retry
        )

    def after_fork(self) -> None:
        self._reset()
        if self._spill is not None:
            self._spill.after_fork()

    @property
    def spill(self) -> Spill | None:
        return self._spill

    # -- called by the dispatcher and by close() ---------------------------

    def offer(self, batch: list[Item]) -> int:
        """Queue ``batch``; spill or drop it if this sink is too far behind.

        Returns how many events this sink now holds (waiting or in flight),
        or 0 while its writes are failing.
        """
        with self._cond:
            held = self._pending + len(self._inflight or ()) + len(batch)
            taken = not self._abandoned.is_set() and held <= self._max_events
            if taken:
                self._queue.append(batch)
                self._pending += len(batch)
                self._cond.notify()
                if self.handoff is not None and not self._breaker.failing:
                    self.handoff.enter()  # woken, this thread needs the GIL
            # A failing sink is behind for a reason more GIL time would not cure.
            waiting = self.holding()
        if taken:
            self._kick()
        else:
            self._give_up(batch, "shut_down" if self._abandoned.is_set() else "sink_queue_full")
        return waiting

    def holding(self) -> int:
        """Events this sink holds now (waiting or in flight); 0 while its writes are failing.

        Read without the lock, as a hint: the caller's thread asks it before
        yielding the GIL to a worker that may have caught up since.
        """
        if self._breaker.failing:
            return 0
        inflight = self._inflight
        return self._pending + (0 if inflight is None else len(inflight))

    def offer_marker(self, marker: Marker) -> None:
        with self._cond:
            if self._abandoned.is_set():
                marker.arrive()
                return
            self._queue.append(marker)
            self._cond.notify()
        self._kick()

    def start(self) -> None:
        with self._cond:
            if self._thread is not None or self._inline or self._stopping:
                return
            thread = threading.Thread(target=self._run, name=f"fluxgate-{self.name}", daemon=True)
            try:
                start_quiet_thread(thread)
            except RuntimeError:
                # Python 3.12 refuses new threads once the interpreter is exiting
                # (cpython#113964), which is when atexit flushes: deliver on the
                # calling thread instead.
                self._inline = True
                return
            self._thread = thread

    def _kick(self) -> None:
        self.start()
        if self._inline:
            self._drain_inline()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._inline:
            self._drain_inline()

    def join(self, timeout_s: float | None) -> bool:
        """Wait for the thread; True once it has ended (or never started)."""
        thread = self._thread
        if thread is None:
            return not self._busy  # inline delivery runs on another thread, which may be stuck
        if thread is not threading.current_thread():
            thread.join(timeout_s)
        return not thread.is_alive()

    @property
    def started(self) -> bool:
        return self._thread is not None

    def abandon(self, grace_s: float = SPILL_GRACE_S) -> None:
        """Give up on the thread: spill or drop what it still holds.

        A batch another thread is writing to the spill file gets ``grace_s``
        to get there. Past that the file is stuck: that batch and the rest are
        counted as dropped (``shut_down``), so that none leaves uncounted.
        """
        with self._cond:
            self._abandoned.set()
            leftovers = [*self._aside, *(item for item in self._queue if not isinstance(item, Marker))]
            markers = [item for item in self._queue if isinstance(item, Marker)]
            if self._inflight is not None:
                leftovers.insert(0, self._inflight)
                self._inflight = None
            self._aside.clear()
            self._queue.clear()
            self._pending = 0
            self._cond.notify()
        for marker in markers:
            marker.arrive()
        if self._giving_up.acquire(timeout=grace_s):
            self._giving_up.release()
            for batch in leftovers:
                self._give_up(batch, "shut_down")
            return
        with self._cond:
            stuck, self._spilling = self._spilling, None
        if stuck is not None:
            leftovers.insert(0, stuck)
        held = sum(len(batch) for batch in leftovers)
        logger.error(
            "fluxgate: the spill file of sink %s took nothing for %.1fs; %d events it held are dropped",
            self.name,
            grace_s,
            held,
        )
        for batch in leftovers:
            self._count_drop(batch, "shut_down")

    def snapshot(self) -> dict[str, Any]:
        with self._cond:
            aside = sum(len(batch) for batch in self._aside) + len(self._spilling or ())
            out: dict[str, Any] = {"queued": self._pending + len(self._inflight or ()) + aside}
            out.update(attrs.asdict(self.stats))
            out["circuit"] = self._breaker.mode(time.monotonic())
        return out

    def dropped(self) -> int:
        """Events this sink dropped so far."""
        return self.stats.dropped

    # -- the worker's thread -------------------------------------------------

    def _run(self) -> None:
        with guarded():
            self._replay()
        while True:
            with self._cond:
                step, what = self._next(block=True)
            if step is _Step.ABANDONED:
                return
            if step is _Step.EXIT:
                break
            self._do(step, what)
        with guarded():
            self.sink.close()

    def _drain_inline(self) -> None:
        while True:
            with self._cond:
                step, what = self._next(block=False)
                self._busy = step not in (_Step.WAIT, _Step.EXIT, _Step.ABANDONED)
            if not self._busy:
                return
            self._do(step, what)

    def _do(self, step: _Step, what: Any) -> None:
        if step is _Step.MARKER:
            what.arrive()
            return
        with guarded():
            if step is _Step.BATCH:
                try:
                    self._handle(what)
                finally:
                    if self.handoff is not None:  # whatever the sink's write did with it
                        self.handoff.leave()
            elif step is _Step.SET_ASIDE:
                self._spill_aside(what)
            elif step is _Step.REPLAY:
                self._replay()

    def _next(self, *, block: bool) -> _Next:
        """The next thing to do, waiting for it if ``block``. Call with the lock held."""
        while True:
            if self._abandoned.is_set():
                return _Step.ABANDONED, None
            queue = self._queue
            if not queue:
                if self._stopping:
                    return _Step.EXIT, None
                if not block:
                    return _Step.WAIT, None
                wait_s = self._idle_wait_s()
                if not self._cond.wait(wait_s) and wait_s is not None:
                    return _Step.REPLAY, None
                continue
            head = queue[0]
            if isinstance(head, Marker):
                queue.popleft()
                return _Step.MARKER, head
            wait_s = self._breaker.wait_s(time.monotonic())
            held = head is self._held or wait_s > 0  # the sink is failing: this batch would wait
            if held and self._stopping:  # close() spends no more time on a failing sink
                return self._put_aside(len(queue))
            # A flush() waiting behind a failing sink has the batches ahead of it
            # spilled, when there is a spill file: durable now, replayed later.
            if held and self._spill is not None and any(isinstance(i, Marker) for i in queue):
                last = max(i for i, item in enumerate(queue) if isinstance(item, Marker))
                return self._put_aside(last)
            if wait_s <= 0:
                return _Step.BATCH, self._take()
            if not block:
                return _Step.WAIT, None
            self._cond.wait(wait_s)  # the circuit is open: batches wait for the probe

    def _take(self) -> list[Item]:
        """The batch at the head (with those right behind it, if the sink merges), now in flight.

        Call with the lock held.
        """
        queue = self._queue
        batch = queue.popleft()
        assert not isinstance(batch, Marker)
        limit = self._merge_up_to
        while limit and queue:
            following = queue[0]
            if isinstance(following, Marker) or len(batch) + len(following) > limit:
                break
            queue.popleft()
            batch.extend(following)
        self._pending -= len(batch)
        self._inflight = batch
        self._held = None
        return batch

    def _put_aside(self, before: int) -> _Next:
        """Put aside the batches among the first ``before`` items, leaving markers. Call with the lock held.

        They stay where ``abandon()`` sees them until the thread has spilled them.
        """
        self._held = None
        kept: list[list[Item] | Marker] = []
        for _ in range(before):
            item = self._queue.popleft()
            if isinstance(item, Marker):
                kept.append(item)
            else:
                self._aside.append(item)
                self._pending -= len(item)
        self._queue.extendleft(reversed(kept))
        return _Step.SET_ASIDE, "shut_down"

    def _idle_wait_s(self) -> float | None:
        """How long to sleep when idle: until the breaker allows a replay of spilled events."""
        if self._spill is None or not self._spill.pending():
            return None
        until = self._breaker.open_until
        return 1.0 if until is None else max(0.05, until - time.monotonic())

    def _handle(self, batch: list[Item]) -> None:
        items = batch if self._raw else self._built(batch)
        if items is None:
            return  # close() took it over
        if not items:
            self._own(items, None)
            return
        probe = self._breaker.mode(time.monotonic()) == "half_open"
        delivered = self._deliver(items, probe=probe, owned=True)
        if delivered and self._spill is not None and self._spill.pending():
            self._replay()

    def _own(self, current: list[Item], successor: list[Item] | None) -> bool:
        """Make ``successor`` the batch in flight, if ``current`` still is (else close() took it over)."""
        with self._cond:
            if self._inflight is not current:
                return False
            self._inflight = successor
            return True

    def _built(self, batch: list[Item]) -> list[Item] | None:
        """``batch`` with every event built, for sinks that take ``CostEvent`` only."""
        events: list[Item] = []
        broken: list[Item] = []
        for item in batch:
            try:
                events.append(event_of(item))
            except Exception as exc:  # noqa: BLE001 - one event that cannot be built costs only itself
                swallow(exc)
                broken.append(item)
        if not self._own(batch, events):
            return None
        if broken:
            self._count_drop(broken, "unserializable")
        return events

    # -- writing -----------------------------------------------------------------

    def _deliver(self, events: list[Item], *, probe: bool, owned: bool, replayed: bool = False) -> bool:
        """Write ``events``; count each part as it settles. True if the sink took (or refused) them all.

        After a transient failure what is left goes back to the head of the
        queue (``owned``: the batch in flight), or is left to the caller (a
        replay puts it back in the spill file).
        """
        current = events
        done = 0
        for outcome in self._writer.write(events, probe=probe):
            if outcome.failure is Failure.TRANSIENT:
                assert outcome.error is not None
                self._failed(outcome.part, outcome.error, owned=owned, current=current, replayed=replayed)
                return False
            done += len(outcome.part)
            with self._cond:
                if owned and self._inflight is not current:
                    return False  # close() took it over and counted it
                if owned:
                    current = events[done:]
                    self._inflight = current or None
                recovered = self._count(outcome.part, outcome.failure, replayed=replayed)
            if outcome.failure is not None:
                assert outcome.error is not None
                self._set_aside(outcome.part, outcome.failure, outcome.error, replayed=replayed)
            elif recovered:
                logger.warning("fluxgate: sink %s recovered; its circuit is closed", self.name)
        return True

    def _count(self, part: list[Item], kind: Failure | None, *, replayed: bool) -> bool:
        """Count a settled part. Call with the lock held; True if the circuit just closed."""
        stats = self.stats
        if kind is None:
            if replayed:
                stats.replayed += len(part)
            else:
                stats.delivered += len(part)
            return self._breaker.succeeded()
        if kind is Failure.REFUSED:
            stats.failed_batches += 1
            self._breaker.succeeded()  # it answered: it is alive
        if replayed:
            stats.replay_dropped += len(part)
        else:
            self._add_drops(len(part), "rejected" if kind is Failure.REFUSED else "unserializable")
        return False

    def _set_aside(self, part: list[Item], kind: Failure, error: Exception, *, replayed: bool) -> None:
        """Log a part the sink refused or could not write (already counted), and report its drops."""
        if kind is Failure.REFUSED:
            logger.error("fluxgate: sink %s refused a batch of %d events; dropped: %s", self.name, len(part), error)
            reason = "rejected"
        else:
            reason = "unserializable"
            warn_once(
                f"unwritable:{self.name}:{type(error).__name__}",
                "fluxgate: sink %s cannot write an event (%s: %s); it is dropped alone, the rest of its batch is not",
                self.name,
                type(error).__name__,
                error,
            )
        self._report(part, reason)

    def _failed(
        self, remaining: list[Item], error: Exception, *, owned: bool, current: list[Item], replayed: bool
    ) -> None:
        """A round of retries failed: count it, maybe open the circuit, and hold what is left."""
        with self._cond:
            if owned and self._inflight is not current:
                return  # close() took it over
            self.stats.failed_batches += 1
            probing = self._breaker.open_until is not None
            cooldown = self._breaker.failed(time.monotonic(), getattr(error, "retry_after_s", None))
            if owned:
                self._inflight = None
                self._held = remaining
                self._queue.appendleft(remaining)
                self._pending += len(remaining)
        # One warning per failed round while the circuit is closed, and one when
        # it opens; failed probes of an open circuit are only worth a debug line.
        log = logger.debug if probing else logger.warning
        what = "replayed batch" if replayed else "batch"
        kind = type(error).__name__
        log("fluxgate: sink %s failed a %s of %d events (%s: %s)", self.name, what, len(remaining), kind, error)
        if cooldown is not None:
            log("fluxgate: sink %s keeps failing; circuit open for %.1fs; its events wait", self.name, cooldown)

    def _replay(self) -> None:
        """Deliver spilled events while the sink takes them."""
        spill = self._spill
        if spill is None or self._breaker.wait_s(time.monotonic()) > 0:
            return

        def deliver(batch: list[CostEvent]) -> bool:
            if self._stopping or self._abandoned.is_set() or self._breaker.wait_s(time.monotonic()) > 0:
                return False
            probe = self._breaker.mode(time.monotonic()) == "half_open"
            done = self._deliver(list(batch), probe=probe, owned=False, replayed=True)
            return done and not self._abandoned.is_set()

        try:
            while (claimed := spill.claim()) is not None:
                if not spill.replay(claimed, self._batch_size, deliver):
                    return
        finally:
            with self._cond:
                self.stats.replay_dropped += spill.skipped
                spill.skipped = 0

    # -- giving up ---------------------------------------------------------------

    def _spill_aside(self, reason: str) -> None:
        """Spill (or drop) the batches set aside, one at a time; abandon() takes over those left."""
        spill = self._spill
        if spill is None:  # nowhere to keep them: each is dropped, and counted
            with self._cond:
                batches = list(self._aside)
                self._aside.clear()
            for batch in batches:
                self._count_drop(batch, reason)
            return
        while True:
            with self._giving_up:
                with self._cond:
                    if not self._aside:
                        return
                    batch = self._spilling = self._aside.popleft()
                dropped = self._spill_now(spill, batch, reason)
            self._report_all(dropped)

    def _give_up(self, batch: list[Item], reason: str) -> None:
        """Spill ``batch``, or drop it and count why."""
        spill = self._spill
        if spill is None:
            self._count_drop(batch, reason)
            return
        with self._giving_up:
            with self._cond:
                self._spilling = batch
            dropped = self._spill_now(spill, batch, reason)
        self._report_all(dropped)

    def _spill_now(self, spill: Spill, batch: list[Item], reason: str) -> list[tuple[list[Item], str]]:
        """Spill ``batch``, the one in ``_spilling``, and count it unless abandon() did. Hold ``_giving_up``.

        Returns the drops to report, once the lock is released (the hook is the application's code).
        """
        lines: list[bytes] = []
        kept: list[Item] = []
        unwritable: list[Item] = []
        for item in batch:
            try:
                lines.append(event_line(event_of(item)))
            except Exception:  # noqa: BLE001 - one event that cannot be encoded costs only itself
                unwritable.append(item)
            else:
                kept.append(item)
        spilled = False
        if lines:
            try:
                spilled = spill.append_lines(lines)
            except Exception as exc:  # noqa: BLE001 - a failed spill is counted, never lost
                warn_once(f"spill:{self.name}", "fluxgate: cannot write spill file of %s: %s", self.name, exc)
                reason = "spill_failed"
            else:
                reason = reason if spilled else "spill_full"
        dropped = [] if spilled else kept
        with self._cond:
            if self._spilling is not batch:
                return []  # abandon() stopped waiting for the spill file, and counted this batch
            self._spilling = None
            if spilled:
                self.stats.spilled += len(kept)
            if unwritable:
                self._add_drops(len(unwritable), "unserializable")
            if dropped:
                self._add_drops(len(dropped), reason)
        return [(unwritable, "unserializable"), (dropped, reason)]

    def _report_all(self, drops: list[tuple[list[Item], str]]) -> None:
        for items, reason in drops:
            self._report(items, reason)

    def _add_drops(self, count: int, reason: str) -> None:
        """Count ``count`` drops. Call with the lock held."""
        stats = self.stats
        stats.dropped += count
        stats.dropped_by_reason[reason] = stats.dropped_by_reason.get(reason, 0) + count

    def _count_drop(self, items: Sequence[Item], reason: str) -> None:
        if not items:
            return
        with self._cond:
            self._add_drops(len(items), reason)
        self._report(items, reason)

    def _report(self, items: Sequence[Item], reason: str) -> None:
        """Tell the on_drop hook about each dropped event that can be built."""
        for item in items:
            try:
                event = event_of(item)
            except Exception as exc:  # noqa: BLE001 - counted already; the hook just cannot see it
                warn_once(f"unbuilt:{type(exc).__name__}", "fluxgate: a dropped event could not be built: %s", exc)
                continue
            self._drop_hook(event, reason)

    def _count_retry(self) -> None:
        with self._cond:
            self.stats.retried += 1
