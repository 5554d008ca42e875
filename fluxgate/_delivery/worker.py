"""One sink's worker: its thread, bounded queue, retries, circuit breaker and spill.

The flusher (``_flusher.py``) gives every sink a worker, so a slow or dead sink
never delays another. A worker retries transient failures with tenacity
(exponential backoff with full jitter; a ``Retry-After`` the sink asked for is
honoured, and one that does not fit in the batch's budget ends the attempts).
After ``breaker_failures`` failed batches in a row its circuit opens: the sink
is left alone for a cool-down, then probed with one batch; each failed probe
doubles the cool-down, up to a cap. What the worker cannot deliver (circuit
open, retries spent, its queue full) goes to its spill file when there is one,
and is otherwise dropped and counted: nothing waits in memory beyond the bounds.
Spilled events are replayed when the worker starts and when the circuit closes.

This module and ``_flusher.py`` are one unit split for size; tenacity is
imported here and nowhere else.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    wait_random_exponential,
)

from .._errors import ConfigurationError, SinkError, TransientSinkError
from .._guard import guarded, logger, warn_once
from .._models import CostEvent
from ..sinks._base import Sink
from .spill import Spill

__all__ = ["DropHook", "Marker", "RetryPolicy", "SinkStats", "SinkWorker"]

#: Called with the dropped event and the reason, one of :data:`DROP_REASONS`.
DropHook = Callable[[CostEvent, str], None]


def _at_least(minimum: float) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum:
            msg = f"RetryPolicy '{attribute.name}' must be a number >= {minimum} (got {value!r})."
            raise ConfigurationError(msg)

    return check


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How hard the flusher tries one batch on one sink, and when it pauses a sink.

    Args:
        max_attempts: Attempts per batch, the first included.
        max_delay_s: Time budget per batch; a ``Retry-After`` that does not
            fit in it ends the attempts and pauses the sink for that long.
        backoff_multiplier_s: Scale of the exponential backoff (full jitter).
        backoff_max_s: Cap of one backoff pause.
        breaker_failures: Failed batches in a row that open the circuit.
        breaker_cooldown_s: How long the first opening lasts; each failed
            probe doubles it.
        breaker_max_cooldown_s: Cap of the cool-down.

    >>> RetryPolicy(max_attempts=3, backoff_max_s=1.0).max_attempts
    3
    """

    max_attempts: int = attrs.field(default=5, validator=_at_least(1))
    max_delay_s: float = attrs.field(default=30.0, validator=_at_least(0))
    backoff_multiplier_s: float = attrs.field(default=0.5, validator=_at_least(0))
    backoff_max_s: float = attrs.field(default=10.0, validator=_at_least(0))
    breaker_failures: int = attrs.field(default=3, validator=_at_least(1))
    breaker_cooldown_s: float = attrs.field(default=5.0, validator=_at_least(0))
    breaker_max_cooldown_s: float = attrs.field(default=300.0, validator=_at_least(0))


@attrs.define
class SinkStats:
    """Counters for one sink; events unless the name says batches."""

    delivered: int = 0
    retried: int = 0  # batch re-sends after a transient failure
    dropped: int = 0
    failed_batches: int = 0
    spilled: int = 0
    replayed: int = 0  # events delivered from the spill file


class Marker:
    """A flush request; done once every worker has passed it."""

    __slots__ = ("_left", "_lock", "done")

    def __init__(self) -> None:
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._left = 0

    def expect(self, count: int) -> None:
        self._left = count
        if count == 0:
            self.done.set()

    def arrive(self) -> None:
        with self._lock:
            self._left -= 1
            if self._left <= 0:
                self.done.set()


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, Exception) and (isinstance(exc, TransientSinkError) or not isinstance(exc, SinkError))


def _asked_s(state: RetryCallState) -> float | None:
    exc = state.outcome.exception() if state.outcome is not None else None
    asked = getattr(exc, "retry_after_s", None)
    if isinstance(asked, (int, float)) and asked > 0:
        return float(asked)
    return None


class _Breaker:
    """Closed, open until ``open_until``, then one probe (half open)."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._failures = 0
        self._cooldown_s = policy.breaker_cooldown_s
        self.open_until: float | None = None

    def mode(self, now: float) -> str:
        if self.open_until is None:
            return "closed"
        return "half_open" if now >= self.open_until else "open"

    def succeeded(self) -> bool:
        """Close; True if the circuit was open."""
        was_open = self.open_until is not None
        self._failures = 0
        self._cooldown_s = self._policy.breaker_cooldown_s
        self.open_until = None
        return was_open

    def failed(self, now: float, asked_s: float | None) -> float | None:
        """Count a failed batch; the cool-down if the circuit (re)opens."""
        self._failures += 1
        if self.open_until is not None:  # the probe failed
            self._cooldown_s = min(self._cooldown_s * 2, self._policy.breaker_max_cooldown_s)
        elif self._failures < self._policy.breaker_failures and not asked_s:
            return None  # a sink that named a pause gets it at once
        cap = max(self._policy.breaker_max_cooldown_s, self._cooldown_s)
        cooldown = min(max(self._cooldown_s, asked_s or 0.0), cap)
        self.open_until = now + cooldown
        return cooldown


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
        self._drop = drop
        self._sleep = sleep
        self._backoff = wait_random_exponential(multiplier=policy.backoff_multiplier_s, max=policy.backoff_max_s)
        self._reset()

    def _reset(self) -> None:
        self.stats = SinkStats()
        self._breaker = _Breaker(self._policy)
        self._cond = threading.Condition()
        self._queue: deque[list[CostEvent] | Marker] = deque()
        self._pending = 0
        self._inflight: list[CostEvent] | None = None
        self._thread: threading.Thread | None = None
        self._inline = False
        self._busy = False
        self._stopping = False
        self._abandoned = threading.Event()

    def after_fork(self) -> None:
        self._reset()
        if self._spill is not None:
            self._spill.after_fork()

    # -- called by the dispatcher and by close() ---------------------------

    def offer(self, batch: list[CostEvent]) -> None:
        """Queue ``batch``; spill or drop it if this sink is too far behind."""
        with self._cond:
            taken = not self._abandoned.is_set() and self._pending + len(batch) <= self._max_events
            if taken:
                self._queue.append(batch)
                self._pending += len(batch)
                self._cond.notify()
        if taken:
            self._kick()
        else:
            self._give_up(batch, "shut_down" if self._abandoned.is_set() else "sink_queue_full")

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
                thread.start()
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

    def abandon(self) -> None:
        """Give up on the thread: spill or drop what it still holds."""
        with self._cond:
            self._abandoned.set()
            leftovers = [item for item in self._queue if not isinstance(item, Marker)]
            markers = [item for item in self._queue if isinstance(item, Marker)]
            if self._inflight is not None:
                leftovers.append(self._inflight)
                self._inflight = None
            self._queue.clear()
            self._pending = 0
        for marker in markers:
            marker.arrive()
        for batch in leftovers:
            self._give_up(batch, "shut_down")

    def snapshot(self) -> dict[str, Any]:
        with self._cond:
            out: dict[str, Any] = {"queued": self._pending + len(self._inflight or ())}
            out.update(attrs.asdict(self.stats))
            out["circuit"] = self._breaker.mode(time.monotonic())
        return out

    # -- the worker's thread -------------------------------------------------

    def _run(self) -> None:
        with guarded():
            self._replay()
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    wait_s = self._idle_wait_s()
                    if not self._cond.wait(wait_s) and wait_s is not None:
                        break
                if self._abandoned.is_set():
                    return
                item: list[CostEvent] | Marker | None = None
                if self._queue:
                    item = self._take()
                elif self._stopping:
                    break
            if item is None:
                with guarded():
                    self._replay()
            else:
                self._process(item)
        with guarded():
            self.sink.close()

    def _drain_inline(self) -> None:
        while True:
            with self._cond:
                if self._abandoned.is_set() or not self._queue:
                    self._busy = False
                    return
                self._busy = True
                item = self._take()
            self._process(item)

    def _take(self) -> list[CostEvent] | Marker:
        """The next item; a batch becomes the one in flight. Call with the lock held."""
        item = self._queue.popleft()
        if not isinstance(item, Marker):
            self._pending -= len(item)
            self._inflight = item
        return item

    def _process(self, item: list[CostEvent] | Marker) -> None:
        if isinstance(item, Marker):
            item.arrive()
        else:
            with guarded():
                self._handle(item)

    def _idle_wait_s(self) -> float | None:
        """How long to sleep when idle: until the breaker allows a replay of spilled events."""
        if self._spill is None or not self._spill.pending():
            return None
        until = self._breaker.open_until
        return 1.0 if until is None else max(0.05, until - time.monotonic())

    def _handle(self, batch: list[CostEvent]) -> None:
        mode = self._breaker.mode(time.monotonic())
        if mode == "open":
            with self._cond:
                mine = self._inflight is batch
                self._inflight = None
            if mine:
                self._give_up(batch, "circuit_open")
            return
        error = self._attempt(batch, probe=mode == "half_open")
        with self._cond:
            if self._inflight is not batch:
                return  # close() took it over
            self._inflight = None
        if self._settle(batch, error, replayed=False) and self._spill is not None and self._spill.pending():
            self._replay()

    def _replay(self) -> None:
        """Deliver spilled events while the sink takes them."""
        spill = self._spill
        if spill is None or self._breaker.mode(time.monotonic()) == "open":
            return

        def deliver(batch: list[CostEvent]) -> bool:
            if self._stopping or self._abandoned.is_set() or self._breaker.mode(time.monotonic()) == "open":
                return False
            error = self._attempt(batch, probe=self._breaker.mode(time.monotonic()) == "half_open")
            if self._abandoned.is_set():
                return False
            return self._settle(batch, error, replayed=True)

        while (claimed := spill.claim()) is not None:
            if not spill.replay(claimed, self._batch_size, deliver):
                return

    def _attempt(self, batch: list[CostEvent], *, probe: bool) -> Exception | None:
        """Write ``batch`` with retries (one attempt for a probe); the final error, if any."""
        policy = self._policy
        limits = stop_any(stop_after_attempt(1 if probe else policy.max_attempts), stop_after_delay(policy.max_delay_s))
        retrying = Retrying(
            stop=lambda state: limits(state) or self._stop_early(state),
            wait=self._wait_s,
            retry=retry_if_exception(_is_transient),
            before_sleep=self._count_retry,
            sleep=self._pause,
            reraise=True,
        )
        try:
            retrying(self.sink.write, batch)
        except Exception as exc:  # noqa: BLE001 - a failing sink must not stop the thread
            return exc
        return None

    def _settle(self, batch: list[CostEvent], error: Exception | None, *, replayed: bool) -> bool:
        """Count the outcome of one batch; True if the sink took it (or refused it for good)."""
        count = len(batch)
        if error is None:
            with self._cond:
                if replayed:
                    self.stats.replayed += count
                else:
                    self.stats.delivered += count
                reopened = self._breaker.succeeded()
            if reopened:
                logger.warning("fluxgate: sink %s recovered; its circuit is closed", self.name)
            return True
        if not _is_transient(error):
            with self._cond:
                self.stats.failed_batches += 1
                self.stats.dropped += count
                self._breaker.succeeded()  # it answered: it is alive
            logger.error("fluxgate: sink %s refused a batch of %d events; dropped: %s", self.name, count, error)
            for event in batch:
                self._drop(event, "rejected")
            return True
        with self._cond:
            self.stats.failed_batches += 1
            probing = self._breaker.open_until is not None
            cooldown = self._breaker.failed(time.monotonic(), getattr(error, "retry_after_s", None))
        # One warning per failed batch while the circuit is closed, and one when
        # it opens; failed probes of an open circuit are only worth a debug line.
        log = logger.debug if probing else logger.warning
        log("fluxgate: sink %s failed a batch of %d events (%s: %s)", self.name, count, type(error).__name__, error)
        if cooldown is not None:
            log("fluxgate: sink %s keeps failing; circuit open for %.1fs", self.name, cooldown)
        if not replayed:
            self._give_up(batch, "sink_failed")
        return False

    def _give_up(self, batch: list[CostEvent], reason: str) -> None:
        """Spill ``batch``, or drop it and count why."""
        if self._spill is not None:
            try:
                spilled = self._spill.append(batch)
            except OSError as exc:
                warn_once(f"spill:{self.name}", "fluxgate: cannot write spill file of %s: %s", self.name, exc)
                reason = "spill_failed"
            else:
                if spilled:
                    with self._cond:
                        self.stats.spilled += len(batch)
                    return
                reason = "spill_full"
        with self._cond:
            self.stats.dropped += len(batch)
        for event in batch:
            self._drop(event, reason)

    # -- tenacity hooks --------------------------------------------------------

    def _stop_early(self, state: RetryCallState) -> bool:
        if self._abandoned.is_set():
            return True
        asked = _asked_s(state)
        # A Retry-After beyond the budget ends the attempts; the breaker then waits it out.
        return asked is not None and (state.seconds_since_start or 0.0) + asked > self._policy.max_delay_s

    def _wait_s(self, state: RetryCallState) -> float:
        backoff = float(self._backoff(state))
        asked = _asked_s(state)
        return backoff if asked is None else max(backoff, asked)

    def _count_retry(self, state: RetryCallState) -> None:
        with self._cond:
            self.stats.retried += 1

    def _pause(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._abandoned.wait(seconds)
