"""The flusher: bounds, retries, circuit breaker, spill, lifecycle and exit."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import select
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fluxgate
from fluxgate import AiEventUser, ConfigurationError, CostEvent, RetryPolicy, SinkError, Status, TransientSinkError
from fluxgate._delivery import flusher as flusher_module
from fluxgate._delivery.flusher import Flusher, sink_names
from fluxgate._delivery.policy import Breaker as _Breaker
from fluxgate._delivery.spill import Spill
from fluxgate._lifecycle import flush_after
from fluxgate._store.lines import event_from_dict
from fluxgate.sinks import SQLiteSink
from fluxgate.testing import MemorySink

from ..sinks.conftest import FAST, make_event, make_events

REPO = Path(fluxgate.__file__).resolve().parents[1]


class ScriptedSink:
    """Raises the scripted errors in turn, then stores batches."""

    def __init__(self, *errors: Exception | None, forever: Exception | None = None) -> None:
        self.errors = list(errors)
        self.forever = forever
        self.calls = 0
        self.events: list[CostEvent] = []
        self.closed = 0

    def write(self, batch: Sequence[CostEvent]) -> None:
        self.calls += 1
        error = self.errors.pop(0) if self.errors else self.forever
        if error is not None:
            raise error
        self.events.extend(batch)

    def close(self) -> None:
        self.closed += 1


class HangingSink:
    """Blocks in write until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.events: list[CostEvent] = []
        self.closed = False

    def __repr__(self) -> str:
        return "HangingSink()"

    def write(self, batch: Sequence[CostEvent]) -> None:
        self.entered.set()
        self.release.wait(30)
        self.events.extend(batch)

    def close(self) -> None:
        self.closed = True


class CountingSink(MemorySink):
    """A MemorySink that signals once it holds ``expected`` events."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.expected = expected
        self.full = threading.Event()

    def write(self, batch: Sequence[CostEvent]) -> None:
        super().write(batch)
        if len(self.events) >= self.expected:
            self.full.set()


@pytest.fixture(autouse=True)
def _no_endpoint_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sure the developer's FLUXGATE_ENDPOINT never leaks into a test."""
    monkeypatch.delenv("FLUXGATE_ENDPOINT", raising=False)
    monkeypatch.delenv("FLUXGATE_API_KEY", raising=False)


@pytest.fixture
def hanging() -> Iterator[HangingSink]:
    """A hanging sink, released after the test."""
    sink = HangingSink()
    yield sink
    sink.release.set()


def make_flusher(sinks: Sequence[Any], **options: Any) -> Flusher:
    """A flusher with fast retries and no timer-driven batches."""
    defaults: dict[str, Any] = {"retry": FAST, "max_batch_size": 10, "flush_interval_s": 60.0}
    return Flusher(sinks, **{**defaults, **options})


class Drops:
    """An on_drop hook that remembers (tracking_id, reason) pairs."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, event: CostEvent, reason: str) -> None:
        with self._lock:
            self.seen.append((event.tracking_id, reason))

    def reasons(self) -> set[str]:
        return {reason for _, reason in self.seen}


class TestSubmit:
    def test_delivers_to_every_sink(self) -> None:
        """Every event reaches every sink, in order."""
        first, second = MemorySink(), MemorySink()
        f = make_flusher([first, second])
        events = make_events(35)
        for event in events:
            assert f.submit(event)
        assert f.flush(5)
        assert first.events == events
        assert second.events == events
        assert f.close(5)

    def test_full_queue_drops_the_new_event(self) -> None:
        """When the intake is full the newest event is dropped, counted and reported."""
        sink, drops = MemorySink(), Drops()
        f = make_flusher([sink], max_queue_size=5, max_batch_size=100, on_drop=drops)
        events = make_events(7)
        assert [f.submit(event) for event in events] == [True] * 5 + [False] * 2
        assert drops.seen == [(events[5].tracking_id, "queue_full"), (events[6].tracking_id, "queue_full")]
        assert f.snapshot()["dropped_queue_full"] == 2
        assert not f.flush(5)  # two events recorded before it were dropped
        assert sink.events == events[:5]
        assert f.flush(5)  # and nothing since

    def test_after_close_events_are_dropped(self) -> None:
        """An event submitted after close() is dropped with reason shut_down."""
        drops = Drops()
        f = make_flusher([MemorySink()], on_drop=drops)
        assert f.close(5)
        event = make_event()
        assert not f.submit(event)
        assert drops.seen == [(event.tracking_id, "shut_down")]
        assert f.snapshot()["dropped"] == 1

    def test_on_drop_that_raises(self, caplog: pytest.LogCaptureFixture) -> None:
        """A failing on_drop hook is logged once and never stops delivery."""

        def hook(event: CostEvent, reason: str) -> None:
            raise RuntimeError("hook bug")

        sink = MemorySink()
        f = make_flusher([sink], max_queue_size=1, max_batch_size=100, on_drop=hook)
        with caplog.at_level(logging.WARNING, logger="fluxgate"):
            for event in make_events(4):
                f.submit(event)
        assert not f.flush(5)
        assert len(sink.events) == 1
        assert caplog.text.count("hook bug") == 1

    def test_a_sink_gets_its_own_list(self) -> None:
        """A sink that mutates its batch cannot change what another sink gets."""

        class Greedy(MemorySink):
            def write(self, batch: Sequence[CostEvent]) -> None:
                super().write(batch)
                batch.clear()  # type: ignore[attr-defined]

        greedy, other = Greedy(), MemorySink()
        f = make_flusher([greedy, other])
        for event in make_events(5):
            f.submit(event)
        assert f.flush(5)
        assert len(other.events) == 5


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Each pause a caller's ``submit()`` takes to yield the GIL, noted instead of taken."""
    noted: list[float] = []

    class Clock:  # the flusher module's view of time
        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def sleep(seconds: float) -> None:
            noted.append(seconds)

    monkeypatch.setattr(flusher_module, "time", Clock)
    return noted


class TestBusyCaller:
    def test_a_busy_caller_does_not_starve_delivery(self, tmp_path: Path) -> None:
        """A caller that keeps the interpreter busy loses no event to a starved flusher.

        Each round computes for a while, then lets go of the GIL for a moment, as
        I/O that is ready at once does: CPython then hands the GIL straight back,
        and threads waiting for it (the dispatcher, a worker back from SQLite)
        could wait for seconds. Another thread of the application wakes every
        half millisecond. The intake holds a quarter of what is recorded.
        """
        stop = threading.Event()

        def neighbour() -> None:
            while not stop.wait(0.0005):
                sum(range(200))

        other = threading.Thread(target=neighbour, daemon=True)
        other.start()
        store = SQLiteSink(tmp_path / "events.db")
        f = Flusher([store], max_queue_size=1000)  # default batching and retries
        events = make_events(4000)
        try:
            for event in events:
                sum(range(15_000))  # an application busy computing
                select.select([], [], [], 0)
                f.submit(event)
            assert f.flush(30), f.snapshot()
        finally:
            stop.set()
        other.join(5)
        assert f.snapshot()["sinks"]["SQLiteSink"]["delivered"] == len(events)
        assert f.close(5)

    def test_a_dead_sink_never_makes_the_caller_pause(self, pauses: list[float]) -> None:
        """A sink that keeps failing holds events for its own reasons: tracked calls do not yield for it."""
        sink = ScriptedSink(forever=TransientSinkError("down"))
        f = make_flusher([sink], retry=attrs.evolve(FAST, max_attempts=1, breaker_cooldown_s=60), max_queue_size=400)
        # Chunks under the wake-up threshold (five batches of 10), each handed to the
        # worker by a flush (it cannot succeed: the sink is down): the worker soon
        # holds all it may, and every chunk's submits would pause if that counted.
        for _ in range(40):
            for event in make_events(40):
                f.submit(event)
            assert not f.flush(0.01)
        stats = f.snapshot()["sinks"]["ScriptedSink"]
        assert stats["circuit"] == "open"
        assert stats["dropped_by_reason"].get("sink_queue_full", 0) > 0  # it held all it could
        assert pauses == []

    def test_a_caller_stops_pausing_once_the_worker_caught_up(self, pauses: list[float]) -> None:
        """A caller yields the GIL to a worker that is behind, and no longer once it has caught up.

        Whether a worker is behind is noted as batches are handed to it, which
        may be a while before the next hand-over: a caller that kept yielding
        to a worker with nothing left to do would leave the process idle.
        """
        gate = threading.Event()

        class GatedSink(ScriptedSink):
            def write(self, batch: Sequence[CostEvent]) -> None:
                assert gate.wait(10)
                super().write(batch)

        sink = GatedSink()
        f = make_flusher([sink], max_queue_size=400)  # batches of 10: behind past 100 held
        for _ in range(4):
            for event in make_events(40):
                f.submit(event)
            f._drain()  # hand them over here and now, as a flush would
        assert pauses  # 160 held, the first in a write that waits: each tenth submit yielded
        pauses.clear()
        gate.set()
        assert f.flush(5)
        for event in make_events(40):
            f.submit(event)
        assert pauses == []
        assert f.flush(5)
        assert len(sink.events) == 200


class TestFlush:
    def test_nothing_recorded(self) -> None:
        """Flushing a flusher that never saw an event returns at once and starts no thread."""
        f = make_flusher([MemorySink()])
        before = threading.active_count()
        assert f.flush(0.01)
        assert threading.active_count() == before

    def test_one_deadline_for_all_sinks(self) -> None:
        """flush(timeout_s) is one budget, however many sinks hang."""
        sinks = [HangingSink(), HangingSink(), HangingSink()]
        try:
            f = make_flusher(sinks)
            f.submit(make_event())
            started = time.monotonic()
            assert not f.flush(0.3)
            assert time.monotonic() - started < 0.6
        finally:
            for sink in sinks:
                sink.release.set()

    def test_slow_sink_never_delays_the_others(self, hanging: HangingSink) -> None:
        """A sink stuck in write does not hold back another sink's events."""
        fast = CountingSink(expected=50)
        f = make_flusher([hanging, fast])
        for event in make_events(50):
            f.submit(event)
        f.flush(0.01)
        assert fast.full.wait(5)
        assert hanging.entered.is_set()
        assert not hanging.events

    def test_a_slow_sink_overflows_alone(self, hanging: HangingSink) -> None:
        """When a sink's own queue is full its batches are dropped for it only."""
        fast, drops = CountingSink(expected=60), Drops()
        f = make_flusher([hanging, fast], max_queue_size=20, on_drop=drops)
        events = make_events(60)
        for i, event in enumerate(events):
            f.submit(event)
            if i % 10 == 9:
                f.flush(0.01)
        assert fast.full.wait(5)  # batches are offered to the hanging sink first
        assert hanging.entered.is_set()
        stats = f.snapshot()["sinks"]
        assert len(fast.events) == 60
        assert stats["HangingSink"]["dropped"] > 0
        assert drops.reasons() == {"sink_queue_full"}
        handed = sum(stats["HangingSink"][k] for k in ("delivered", "dropped", "spilled", "queued"))
        assert handed == 60


class TestClose:
    def test_closes_every_sink_once(self) -> None:
        """close() closes each sink once, and a second close() does nothing."""
        first, second = ScriptedSink(), ScriptedSink()
        f = make_flusher([first, second])
        f.submit(make_event())
        assert f.close(5)
        assert f.close(5)
        assert (first.closed, second.closed) == (1, 1)
        assert len(first.events) == 1

    def test_closes_sinks_that_never_saw_an_event(self) -> None:
        """Sinks are closed even when no thread ever started."""
        sink = ScriptedSink()
        assert make_flusher([sink]).close(5)
        assert sink.closed == 1

    def test_shutdown_with_hanging_sink_keeps_its_budget(self, hanging: HangingSink) -> None:
        """shutdown(timeout_s=1) returns within the budget and counts what it left behind."""
        drops = Drops()
        fg = fluxgate.init(sinks=[hanging], flush_interval_s=60, max_batch_size=10, on_drop=drops)
        events = make_events(30)
        for event in events:
            fg.record(event)
        started = time.monotonic()
        assert not fluxgate.shutdown(timeout_s=1)
        assert time.monotonic() - started < 1.3
        stats = fg.stats()["sinks"]["HangingSink"]
        assert stats["dropped"] == 30
        assert drops.reasons() == {"shut_down"}
        assert {tracking_id for tracking_id, _ in drops.seen} == {e.tracking_id for e in events}
        assert not hanging.closed  # it is still inside write

    def test_no_new_threads_at_exit(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """When the interpreter refuses new threads (exit on Python 3.12), close() still delivers."""
        sink = ScriptedSink()
        f = make_flusher([sink])
        events = make_events(3)
        for event in events:
            f.submit(event)  # starts the dispatcher, not yet the sink's worker

        def refuse(self: threading.Thread) -> None:
            raise RuntimeError("can't create new thread at interpreter shutdown")

        monkeypatch.setattr(threading.Thread, "start", refuse)
        assert f.close(5)
        assert sink.events == events
        assert sink.closed == 1

    def test_no_thread_at_all(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Events recorded when no thread can start are delivered by close() on the caller's thread."""

        def refuse(self: threading.Thread) -> None:
            raise RuntimeError("can't create new thread at interpreter shutdown")

        monkeypatch.setattr(threading.Thread, "start", refuse)
        sink = ScriptedSink()
        f = make_flusher([sink])
        events = make_events(3)
        for event in events:
            assert f.submit(event)
        assert f.close(5)
        assert sink.events == events
        assert sink.closed == 1

    def test_close_spills_what_it_leaves(self, hanging: HangingSink, tmp_path: Path) -> None:
        """With a spill file, what close() cannot deliver in time is spilled, not dropped."""
        f = make_flusher([hanging], spill_path=tmp_path)
        for event in make_events(25):
            f.submit(event)
        assert not f.close(0.3)
        stats = f.snapshot()["sinks"]["HangingSink"]
        assert (stats["spilled"], stats["dropped"]) == (25, 0)
        assert len((tmp_path / "HangingSink.jsonl").read_text().splitlines()) == 25


class TestRetry:
    def test_transient_failures_are_retried(self) -> None:
        """A batch that fails twice, then succeeds, is delivered once."""
        sink = ScriptedSink(TransientSinkError("busy"), TransientSinkError("busy"))
        f = make_flusher([sink])
        f.submit(make_event())
        assert f.flush(5)
        assert len(sink.events) == 1
        stats = f.snapshot()["sinks"]["ScriptedSink"]
        assert (stats["delivered"], stats["retried"], stats["failed_batches"]) == (1, 2, 0)

    def test_unknown_errors_are_transient(self) -> None:
        """An exception that is not a SinkError is retried."""
        sink = ScriptedSink(OSError("disk"))
        f = make_flusher([sink])
        f.submit(make_event())
        assert f.flush(5)
        assert sink.calls == 2

    def test_permanent_errors_drop_the_batch(self) -> None:
        """A SinkError drops the batch after one attempt, with reason rejected."""
        sink, drops = ScriptedSink(SinkError("bad batch")), Drops()
        f = make_flusher([sink], on_drop=drops)
        f.submit(make_event())
        f.submit(make_event())
        assert not f.flush(5)
        assert sink.calls == 1
        assert drops.reasons() == {"rejected"}
        assert f.snapshot()["sinks"]["ScriptedSink"]["dropped"] == 2

    def test_a_failed_round_keeps_the_batch(self) -> None:
        """When a round of max_attempts fails, the batch stays queued and the next round delivers it."""
        sink, drops = ScriptedSink(*[TransientSinkError("down")] * 3), Drops()
        f = make_flusher([sink], on_drop=drops, retry=attrs.evolve(FAST, max_attempts=3))
        event = make_event()
        f.submit(event)
        assert f.flush(5)
        assert (sink.calls, sink.events, drops.seen) == (4, [event], [])
        stats = f.snapshot()["sinks"]["ScriptedSink"]
        assert (stats["delivered"], stats["failed_batches"], stats["dropped"]) == (1, 1, 0)

    def test_retry_after_is_honoured(self) -> None:
        """The pause before a retry is at least the Retry-After the sink asked for."""
        pauses: list[float] = []
        sink = ScriptedSink(TransientSinkError("slow down", retry_after_s=0.75))
        f = make_flusher([sink], sleep=pauses.append)
        f.submit(make_event())
        assert f.flush(5)
        assert pauses == [0.75]
        assert len(sink.events) == 1

    def test_backoff_is_capped(self) -> None:
        """Backoff pauses stay under backoff_max_s."""
        pauses: list[float] = []
        sink = ScriptedSink(*[TransientSinkError("x")] * 6)
        policy = RetryPolicy(max_attempts=7, backoff_multiplier_s=1, backoff_max_s=0.5)
        f = make_flusher([sink], sleep=pauses.append, retry=policy)
        f.submit(make_event())
        assert f.flush(5)
        assert len(pauses) == 6
        assert all(0 <= p <= 0.5 for p in pauses)

    def test_retry_after_beyond_the_budget(self) -> None:
        """A Retry-After longer than max_delay_s ends the round at once and pauses the sink that long."""
        pauses: list[float] = []
        sink, drops = ScriptedSink(TransientSinkError("later", retry_after_s=120)), Drops()
        policy = attrs.evolve(FAST, max_delay_s=5, breaker_failures=5, breaker_max_cooldown_s=600)
        f = make_flusher([sink], sleep=pauses.append, retry=policy, on_drop=drops)
        f.submit(make_event())
        f.submit(make_event())
        assert not f.flush(0.2)
        assert (sink.calls, pauses) == (1, [])
        stats = f.snapshot()["sinks"]["ScriptedSink"]
        assert (stats["circuit"], stats["queued"], stats["dropped"]) == ("open", 2, 0)
        assert not f.close(0.2)  # the sink asked for two minutes
        assert [reason for _, reason in drops.seen] == ["shut_down", "shut_down"]

    def test_policy_is_validated(self) -> None:
        """A RetryPolicy with a nonsensical value is a ConfigurationError."""
        with pytest.raises(ConfigurationError, match="max_attempts"):
            RetryPolicy(max_attempts=0)
        with pytest.raises(ConfigurationError, match="backoff_max_s"):
            RetryPolicy(backoff_max_s=-1)


class TestBreaker:
    def test_open_circuit_holds_the_batches(self) -> None:
        """After breaker_failures failed rounds the sink is left alone and its batches wait, none dropped."""
        sink, drops = ScriptedSink(forever=TransientSinkError("down")), Drops()
        policy = attrs.evolve(FAST, max_attempts=2, breaker_failures=2, breaker_cooldown_s=60)
        f = make_flusher([sink], retry=policy, on_drop=drops)
        for _ in range(5):
            f.submit(make_event())
            assert not f.flush(0.1)
        assert sink.calls == 4  # two rounds of two attempts, then nothing while the circuit is open
        stats = f.snapshot()["sinks"]["ScriptedSink"]
        assert (stats["circuit"], stats["queued"], stats["dropped"], drops.seen) == ("open", 5, 0, [])
        assert not f.close(0.2)
        assert drops.reasons() == {"shut_down"}
        assert f.snapshot()["sinks"]["ScriptedSink"]["dropped"] == 5

    def test_probe_closes_the_circuit(self) -> None:
        """After the cool-down the held batch probes the sink; success closes the circuit and delivers everything."""
        sink = ScriptedSink(*[TransientSinkError("down")] * 4)
        policy = attrs.evolve(FAST, max_attempts=2, breaker_failures=2, breaker_cooldown_s=0)
        f = make_flusher([sink], retry=policy)
        events = make_events(4)
        for event in events:
            f.submit(event)
            assert f.flush(5)
        assert sink.events == events
        assert sink.calls == 2 + 2 + 1 + 3  # two failed rounds, the probe, then one write per batch
        assert f.snapshot()["sinks"]["ScriptedSink"]["circuit"] == "closed"

    def test_probe_failure_doubles_the_cooldown(self) -> None:
        """A failed probe keeps the batch and opens the circuit for twice as long."""
        sink = ScriptedSink(*[TransientSinkError("down")] * 3)
        policy = attrs.evolve(FAST, max_attempts=1, breaker_failures=2, breaker_cooldown_s=0.05)
        f = make_flusher([sink], retry=policy)
        event = make_event()
        f.submit(event)
        assert f.flush(5)
        assert (sink.calls, sink.events) == (4, [event])  # two rounds, a failed probe, a good one

    def test_cooldown_doubles_up_to_the_cap(self) -> None:
        """Each failed probe doubles the cool-down, up to breaker_max_cooldown_s."""
        breaker = _Breaker(RetryPolicy(breaker_failures=2, breaker_cooldown_s=1, breaker_max_cooldown_s=5))
        assert breaker.failed(0, None) is None
        assert breaker.failed(0, None) == 1
        assert breaker.mode(0.5) == "open"
        assert breaker.mode(1.0) == "half_open"
        assert [breaker.failed(10, None) for _ in range(4)] == [2, 4, 5, 5]
        assert breaker.succeeded()
        assert breaker.mode(100) == "closed"

    def test_cooldown_covers_retry_after(self) -> None:
        """A sink that asked for a long pause is paused at least that long (within the cap)."""
        breaker = _Breaker(RetryPolicy(breaker_failures=1, breaker_cooldown_s=1, breaker_max_cooldown_s=60))
        assert breaker.failed(0, 30) == 30
        assert breaker.succeeded()
        assert breaker.failed(0, 1e9) == 60


class TestSpill:
    def test_event_round_trip(self) -> None:
        """event_from_dict(event.to_dict()) gives the event back, every field."""
        event = make_event(
            user=AiEventUser("u1", name="Ada", monthly_revenue=49.5),
            user_id="u1",
            metadata={"plan": "pro", "n": 3, "tags": ["a"]},
            status=Status.MAX_TOKENS,
            cost_usd=Decimal("0.000000123456789"),
            reasoning_tokens=5,
            cache_creation_5m_input_tokens=7,
        )
        assert event_from_dict(json.loads(json.dumps(event.to_dict()))) == event

    @given(
        tokens=st.integers(min_value=0, max_value=10**9),
        cost=st.none() | st.decimals(min_value=0, max_value=10**6, allow_nan=False, places=12),
        feature=st.none() | st.text(min_size=1).filter(str.strip),
        latency=st.none() | st.floats(min_value=0, max_value=1e7),
    )
    def test_round_trip_property(
        self, tokens: int, cost: Decimal | None, feature: str | None, latency: float | None
    ) -> None:
        """Any event survives a trip through the spill format."""
        event = make_event(input_tokens=tokens, cost_usd=cost, feature=feature, latency_ms=latency)
        assert event_from_dict(json.loads(json.dumps(event.to_dict()))) == event

    def test_dead_sink_loses_nothing_and_next_start_replays(self, tmp_path: Path) -> None:
        """With a spill directory a dead sink drops nothing; the next flusher delivers it all."""
        dead = ScriptedSink(forever=TransientSinkError("down"))
        f = make_flusher([dead], spill_path=tmp_path, max_queue_size=30)
        events = make_events(100)
        for i, event in enumerate(events):
            f.submit(event)
            if i % 30 == 29:
                assert f.flush(5)
        assert f.close(5)
        assert f.snapshot()["sinks"]["ScriptedSink"]["spilled"] == 100
        healthy = ScriptedSink()
        again = make_flusher([healthy], spill_path=tmp_path)
        assert again.flush(5)
        assert sorted(e.tracking_id for e in healthy.events) == sorted(e.tracking_id for e in events)
        assert healthy.events[0] == next(e for e in events if e.tracking_id == healthy.events[0].tracking_id)
        assert again.snapshot()["sinks"]["ScriptedSink"]["replayed"] == 100
        assert not any(p.stat().st_size for p in tmp_path.iterdir())

    def test_spill_is_bounded(self, tmp_path: Path) -> None:
        """Past max_spill_bytes events are dropped with reason spill_full, and counted."""
        drops = Drops()
        dead = ScriptedSink(forever=TransientSinkError("down"))
        f = make_flusher([dead], spill_path=tmp_path, max_spill_bytes=15_000, on_drop=drops)
        results = []
        for _ in range(10):
            for event in make_events(10):
                f.submit(event)
            results.append(f.flush(5))
        assert results[0]
        assert not results[-1]
        stats = f.snapshot()["sinks"]["ScriptedSink"]
        assert stats["spilled"] + stats["dropped"] == 100
        assert 0 < stats["spilled"] < 100
        assert drops.reasons() == {"spill_full"}
        assert (tmp_path / "ScriptedSink.jsonl").stat().st_size <= 15_000

    def test_failed_replay_puts_lines_back(self, tmp_path: Path) -> None:
        """A replay that fails part-way leaves the undelivered lines in the spill file."""
        spill = Spill(tmp_path, "ScriptedSink", max_bytes=10**9)
        events = make_events(30)
        assert spill.append(events)
        sink = ScriptedSink(None, *[TransientSinkError("down again")] * 100)
        f = make_flusher(
            [sink],
            spill_path=tmp_path,
            retry=attrs.evolve(FAST, max_attempts=1, breaker_failures=1, breaker_cooldown_s=60),
        )
        assert f.flush(5)
        assert sink.events == events[:10]
        lines = (tmp_path / "ScriptedSink.jsonl").read_text().splitlines()
        assert [json.loads(line)["tracking_id"] for line in lines] == [e.tracking_id for e in events[10:]]
        assert f.snapshot()["sinks"]["ScriptedSink"]["replayed"] == 10

    def test_orphans_of_dead_processes_are_adopted(self, tmp_path: Path) -> None:
        """A file a crashed process was replaying is replayed by the next one."""
        done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
        dead_pid = int(done.stdout)
        events = make_events(3)
        orphan = tmp_path / f"ScriptedSink.{dead_pid}.replaying"
        orphan.write_text("".join(json.dumps(e.to_dict()) + "\n" for e in events))
        sink = ScriptedSink()
        f = make_flusher([sink], spill_path=tmp_path)
        assert f.flush(5)
        assert sink.events == events
        assert not orphan.exists()

    def test_unreadable_lines_are_skipped(self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        """A torn or foreign line is logged and skipped; the rest is replayed."""
        events = make_events(2)
        lines = [json.dumps(events[0].to_dict()), '{"torn": ', json.dumps(events[1].to_dict())]
        (tmp_path / "ScriptedSink.jsonl").write_text("\n".join(lines))  # and no final newline
        sink = ScriptedSink()
        with caplog.at_level(logging.ERROR, logger="fluxgate"):
            f = make_flusher([sink], spill_path=tmp_path)
            assert f.flush(5)
        assert sink.events == events
        assert "skipped 1 unreadable" in caplog.text
        assert f.snapshot()["sinks"]["ScriptedSink"]["replay_dropped"] == 1

    def test_each_sink_spills_to_its_own_file(self, tmp_path: Path) -> None:
        """Only the failing sink spills, into a file named after it."""
        healthy, dead = MemorySink(), ScriptedSink(forever=TransientSinkError("down"))
        f = make_flusher([healthy, dead], spill_path=tmp_path)
        for event in make_events(10):
            f.submit(event)
        assert f.flush(5)
        assert len(healthy.events) == 10
        assert sorted(p.name for p in tmp_path.iterdir()) == ["ScriptedSink.jsonl"]

    def test_spill_path_must_be_a_directory(self, tmp_path: Path) -> None:
        """A spill_path that is a file is a ConfigurationError."""
        afile = tmp_path / "f"
        afile.write_text("")
        with pytest.raises(ConfigurationError, match="spill_path"):
            fluxgate.init(sinks=[MemorySink()], spill_path=afile)


class TestStats:
    def test_shape(self) -> None:
        """FluxGate.stats() reports the intake and every sink under a stable name."""
        fg = fluxgate.init(sinks=[MemorySink(), MemorySink(), ScriptedSink(SinkError("no"))])
        for event in make_events(3):
            fg.record(event)
        assert not fg.flush(timeout_s=5)  # the third sink dropped them
        stats = fg.stats()
        assert set(stats) >= {"recorded", "queued", "dropped", "dropped_by_reason", "sinks", "internal_errors"}
        assert (stats["recorded"], stats["queued"], stats["dropped"], stats["dropped_by_reason"]) == (3, 0, 0, {})
        assert list(stats["sinks"]) == ["MemorySink", "MemorySink-2", "ScriptedSink"]
        assert stats["sinks"]["MemorySink-2"] == {
            "queued": 0,
            "delivered": 3,
            "dropped": 0,
            "dropped_by_reason": {},
            "spilled": 0,
            "retried": 0,
            "failed_batches": 0,
            "replayed": 0,
            "replay_dropped": 0,
            "circuit": "closed",
        }
        assert stats["sinks"]["ScriptedSink"]["dropped_by_reason"] == {"rejected": 3}

    def test_sink_names(self) -> None:
        """Names are class names, numbered from the second of a kind."""
        assert sink_names([MemorySink(), ScriptedSink(), MemorySink()]) == [
            "MemorySink",
            "ScriptedSink",
            "MemorySink-2",
        ]


def run_python(code: str, tmp_path: Path, timeout_s: float = 30) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``code`` in a fresh interpreter; the result and how long it took."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("FLUXGATE_ENDPOINT", None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    return done, time.monotonic() - started


@pytest.mark.slow
class TestSnapshotWhileRunning:
    def test_every_snapshot_accounts_for_every_event(self) -> None:
        """Snapshots taken while events flow each add up: an event is queued or with the sinks, never both."""
        f = make_flusher([MemorySink(), MemorySink()], max_batch_size=7, max_queue_size=100_000)
        stop = threading.Event()
        wrong: list[dict[str, Any]] = []

        def watch() -> None:
            while not stop.is_set():
                snapshot = f.snapshot()
                before = snapshot["queued"] + snapshot["dropped"]
                for sink in snapshot["sinks"].values():
                    handled = sink["queued"] + sink["delivered"] + sink["dropped"] + sink["spilled"]
                    if before + handled != snapshot["recorded"]:
                        wrong.append(snapshot)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            for event in make_events(5_000):
                f.submit(event)
            assert f.flush(30)
        finally:
            stop.set()
            watcher.join(10)
        assert wrong == []
        assert f.snapshot()["recorded"] == 5_000


class TestExit:
    @pytest.mark.parametrize("count", [3, 250])
    def test_events_are_delivered_at_exit(self, tmp_path: Path, count: int) -> None:
        """Events recorded just before the interpreter exits reach the sink, less than a batch or more."""
        code = f"""
            import fluxgate
            from fluxgate.sinks import JSONLSink
            from tests.sinks.conftest import make_events
            fg = fluxgate.init(sinks=[JSONLSink("events.jsonl")], flush_interval_s=60)
            for event in make_events({count}):
                fg.record(event)
        """
        done, _ = run_python(code, tmp_path)
        assert done.returncode == 0, done.stderr
        assert "internal error" not in done.stderr
        assert len((tmp_path / "events.jsonl").read_text().splitlines()) == count

    def test_exit_is_bounded(self, tmp_path: Path) -> None:
        """A sink that hangs delays exit by at most exit_timeout_s."""
        code = """
            import threading, time
            import fluxgate
            from tests.sinks.conftest import make_events
            class Hang:
                def write(self, batch):
                    threading.Event().wait(60)
                def close(self):
                    pass
            fg = fluxgate.init(sinks=[Hang()], exit_timeout_s=1)
            for event in make_events(5):
                fg.record(event)
            print(time.monotonic(), flush=True)
        """
        done, _ = run_python(code, tmp_path)
        end = time.monotonic()
        assert done.returncode == 0, done.stderr
        assert end - float(done.stdout) < 3


class TestFlushAfter:
    def test_sync_handler(self) -> None:
        """The handler's events are delivered by the time it returns."""
        sink = MemorySink()
        fg = fluxgate.init(sinks=[sink], flush_interval_s=60)

        @flush_after
        def handler(event: dict[str, Any], context: object) -> dict[str, int]:
            fg.record(make_event())
            return {"statusCode": 200}

        assert handler({}, None) == {"statusCode": 200}
        assert len(sink.events) == 1
        assert handler.__name__ == "handler"

    def test_errors_pass_through(self) -> None:
        """The handler's exception comes back unchanged, after the flush."""
        sink = MemorySink()
        fg = fluxgate.init(sinks=[sink], flush_interval_s=60)
        error = ValueError("boom")

        @flush_after(timeout_s=2)
        def handler() -> None:
            fg.record(make_event())
            raise error

        with pytest.raises(ValueError, match="boom") as info:
            handler()
        assert info.value is error
        assert len(sink.events) == 1

    def test_async_handler(self) -> None:
        """An async handler is flushed before its coroutine finishes."""
        sink = MemorySink()
        fg = fluxgate.init(sinks=[sink], flush_interval_s=60)

        @flush_after(timeout_s=2)
        async def handler(n: int) -> int:
            for event in make_events(n):
                fg.record(event)
            return n

        assert asyncio.run(handler(3)) == 3
        assert len(sink.events) == 3

    def test_without_init(self) -> None:
        """Without an active FluxGate the handler just runs."""
        assert flush_after(lambda: 42)() == 42

    def test_flush_is_bounded(self, hanging: HangingSink) -> None:
        """A hanging sink delays the handler by at most timeout_s."""
        fg = fluxgate.init(sinks=[hanging], flush_interval_s=60)

        @flush_after(timeout_s=0.2)
        def handler() -> str:
            fg.record(make_event())
            return "ok"

        started = time.monotonic()
        assert handler() == "ok"
        assert time.monotonic() - started < 1
