"""The background flusher: a bounded queue, one daemon thread, batches to sinks.

The caller's thread only appends to a deque (never blocks, never does I/O).
The thread wakes when a batch is full, when ``flush_interval_s`` passes, or
when someone calls ``flush()``; it delivers each batch to every sink, retrying
transient failures with tenacity. A ``flush()`` puts a marker in the queue and
waits for the thread to reach it, so it returns once everything queued before
it was handled, or when its time is up.

After ``os.fork()`` the child starts with an empty queue and its own thread on
first use; events queued before the fork are delivered once, by the parent.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from ._errors import SinkError, TransientSinkError
from ._guard import guarded, logger
from ._models import CostEvent
from .sinks._base import Sink

__all__ = ["DropHook", "Flusher", "RetryPolicy", "SinkStats"]

#: Called with the dropped event and the reason ("queue_full", "sink_failed", ...).
DropHook = Callable[[CostEvent, str], None]


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How hard the flusher tries one batch on one sink."""

    max_attempts: int = 5
    max_delay_s: float = 30.0
    backoff_multiplier_s: float = 0.5
    backoff_max_s: float = 10.0


@attrs.define
class SinkStats:
    """Counters for one sink."""

    delivered: int = 0
    retried: int = 0
    dropped: int = 0
    failed_batches: int = 0


class _Marker:
    """A flush request travelling through the queue."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, Exception) and (isinstance(exc, TransientSinkError) or not isinstance(exc, SinkError))


class Flusher:
    """Owns the queue and the thread that empties it into ``sinks``."""

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
    ) -> None:
        self.sinks = tuple(sinks)
        self._max_queue_size = max_queue_size
        self._max_batch_size = max_batch_size
        self._flush_interval_s = flush_interval_s
        self._retry = retry or RetryPolicy()
        self._on_drop = on_drop
        self._sleep = sleep
        self.stats = {id(sink): SinkStats() for sink in self.sinks}
        self.dropped_queue_full = 0
        self._closed = False
        self._start_fresh()

    def _start_fresh(self) -> None:
        self._queue: deque[CostEvent | _Marker] = deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._start_lock = threading.Lock()

    # -- the caller's side ------------------------------------------------

    def submit(self, event: CostEvent) -> bool:
        """Queue ``event``. Returns True if queued, False if dropped; never blocks."""
        if self._pid != os.getpid():
            self._after_fork()
        if self._closed:
            self._drop(event, "shut_down")
            return False
        queue = self._queue
        if len(queue) >= self._max_queue_size:
            self.dropped_queue_full += 1
            self._drop(event, "queue_full")
            return False
        queue.append(event)
        if self._thread is None:
            self._ensure_thread()
        if len(queue) >= self._max_batch_size:
            self._wake.set()
        return True

    def flush(self, timeout_s: float | None = 5.0) -> bool:
        """Wait until everything queued before this call is delivered.

        Returns False (and logs how many events are still queued) if
        ``timeout_s`` passes first; never raises.
        """
        if self._pid != os.getpid():
            self._after_fork()
        if not self._queue and (self._thread is None or not self._thread.is_alive()):
            return True
        marker = _Marker()
        self._queue.append(marker)
        self._ensure_thread()
        self._wake.set()
        if marker.done.wait(timeout_s):
            return True
        logger.warning("fluxgate flush timed out after %ss; %d events still queued", timeout_s, self.queued())
        return False

    def close(self, timeout_s: float | None = 5.0) -> bool:
        """Flush within ``timeout_s``, stop the thread and close the sinks.

        Events still undelivered when time runs out are counted as dropped.
        """
        if self._closed:
            return True
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        ok = self.flush(timeout_s)
        self._closed = True
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if thread is None or not thread.is_alive():
            # The thread is gone, so nothing else touches the sinks.
            for sink in self.sinks:
                with guarded():
                    sink.close()
            while self._queue:
                item = self._queue.popleft()
                if isinstance(item, CostEvent):
                    self._drop(item, "shut_down")
        return ok

    def queued(self) -> int:
        """Events waiting in the queue."""
        return sum(1 for item in list(self._queue) if isinstance(item, CostEvent))

    # -- the thread's side ------------------------------------------------

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is not None or self._closed:
                return
            thread = threading.Thread(target=self._run, name="fluxgate-flusher", daemon=True)
            thread.start()
            self._thread = thread

    def _after_fork(self) -> None:
        # The parent still owns (and will deliver) what it had queued; the
        # child begins empty, with locks and a thread of its own.
        self._start_fresh()
        self._closed = False

    def _run(self) -> None:
        while True:
            self._wake.wait(self._flush_interval_s)
            self._wake.clear()
            self._drain()
            if self._stopping.is_set() and not self._queue:
                return

    def _drain(self) -> None:
        queue = self._queue
        batch: list[CostEvent] = []
        while queue:
            item = queue.popleft()
            if isinstance(item, _Marker):
                if batch:
                    self._deliver(batch)
                    batch = []
                item.done.set()
                continue
            batch.append(item)
            if len(batch) >= self._max_batch_size:
                self._deliver(batch)
                batch = []
        if batch:
            self._deliver(batch)

    def _deliver(self, batch: list[CostEvent]) -> None:
        for sink in self.sinks:
            with guarded():
                self._deliver_to(sink, batch)

    def _wait_s(self, state: RetryCallState) -> float:
        policy = self._retry
        backoff = wait_random_exponential(multiplier=policy.backoff_multiplier_s, max=policy.backoff_max_s)(state)
        exc = state.outcome.exception() if state.outcome is not None else None
        asked = getattr(exc, "retry_after_s", None)
        if isinstance(asked, (int, float)) and asked > 0:
            return float(min(max(backoff, asked), policy.max_delay_s))
        return float(backoff)

    def _interruptible_sleep(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._stopping.wait(seconds)

    def _deliver_to(self, sink: Sink, batch: list[CostEvent]) -> None:
        stats = self.stats[id(sink)]
        policy = self._retry

        def on_retry(state: RetryCallState) -> None:
            stats.retried += 1

        retrying = Retrying(
            stop=stop_after_attempt(policy.max_attempts) | stop_after_delay(policy.max_delay_s),
            wait=self._wait_s,
            retry=retry_if_exception(_is_transient),
            before_sleep=on_retry,
            sleep=self._interruptible_sleep,
            reraise=True,
        )
        try:
            retrying(sink.write, batch)
        except Exception as exc:  # noqa: BLE001 - a dead sink must not stop the thread
            stats.failed_batches += 1
            stats.dropped += len(batch)
            logger.error(
                "fluxgate: %r dropped a batch of %d events after retries: %s: %s",
                sink,
                len(batch),
                type(exc).__name__,
                exc,
            )
            for event in batch:
                self._drop(event, "sink_failed")
            return
        stats.delivered += len(batch)

    def _drop(self, event: CostEvent, reason: str) -> None:
        hook = self._on_drop
        if hook is not None:
            with guarded():
                hook(event, reason)

    def snapshot(self) -> dict[str, Any]:
        """Counters as plain data, for ``FluxGate.stats()``."""
        return {
            "queued": self.queued(),
            "dropped_queue_full": self.dropped_queue_full,
            "sinks": {repr(sink): attrs.asdict(self.stats[id(sink)]) for sink in self.sinks},
        }
