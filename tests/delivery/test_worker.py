"""A sink's worker: one unwritable event costs only itself, and a burst of errors costs time, not events."""

from __future__ import annotations

import gc
import json
import logging
import os
import sqlite3
import threading
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
import pytest

import fluxgate
from fluxgate import AiEventUser, CostEvent, TransientSinkError
from fluxgate._delivery import Flusher
from fluxgate.sinks import JSONLSink, SQLiteSink
from fluxgate.testing import FakeAnthropicAPI, MemorySink

from ..helpers import create, message_body
from ..sinks.conftest import FAST, IngestServer, Reply, make_event, make_events, make_pending, script
from .test_flusher import Drops, ScriptedSink, make_flusher
from .test_invariant import assert_accounted

SURROGATE = json.loads('"eve\\ud800"')


class PickySink(MemorySink):
    """Stores batches, but cannot write an event whose feature is "poison" (as a serialiser would fail)."""

    def __init__(self, *errors: Exception) -> None:
        super().__init__()
        self.errors = list(errors)
        self.writes = 0

    def write(self, batch: Sequence[CostEvent]) -> None:
        self.writes += 1
        if any(event.feature == "poison" for event in batch):
            raise TypeError("Object of type Poison is not JSON serializable")
        if self.errors:
            raise self.errors.pop(0)
        super().write(batch)


class Unbuildable:
    """A lazy event whose CostEvent cannot be built."""

    def materialize(self) -> CostEvent:
        raise ValueError("cannot price this")


class TestIsolation:
    def test_one_unwritable_event_costs_only_itself(self) -> None:
        """The event a sink cannot write is dropped alone; the other 99 of its batch are delivered."""
        sink, drops = PickySink(), Drops()
        f = make_flusher([sink], max_batch_size=100, on_drop=drops)
        events = make_events(100)
        events[37] = make_event(feature="poison")
        for event in events:
            f.submit(event)
        assert not f.flush(5)  # one event was dropped
        assert sink.events == events[:37] + events[38:]
        assert drops.seen == [(events[37].tracking_id, "unserializable")]
        stats = f.snapshot()["sinks"]["PickySink"]
        assert (stats["delivered"], stats["dropped_by_reason"]) == (99, {"unserializable": 1})
        assert (stats["failed_batches"], stats["retried"], stats["circuit"]) == (0, 0, "closed")

    def test_the_search_is_logarithmic(self) -> None:
        """Finding one unwritable event in a batch of 64 takes at most 13 writes, none retried."""
        sink = PickySink()
        f = make_flusher([sink], max_batch_size=64)
        events = make_events(64)
        events[5] = make_event(feature="poison")
        for event in events:
            f.submit(event)
        f.flush(5)
        assert len(sink.events) == 63
        assert sink.writes <= 1 + 2 * 6

    def test_unwritable_events_never_open_the_circuit(self) -> None:
        """Batch after batch with an unwritable event: the circuit stays closed and the rest arrives."""
        sink = PickySink()
        f = make_flusher([sink], retry=attrs.evolve(FAST, breaker_failures=1, breaker_cooldown_s=60))
        for _ in range(10):
            batch = make_events(10)
            batch[3] = make_event(feature="poison")
            for event in batch:
                f.submit(event)
            f.flush(5)
        stats = f.snapshot()["sinks"]["PickySink"]
        assert (stats["delivered"], stats["dropped"], stats["circuit"]) == (90, 10, "closed")

    def test_a_transient_failure_during_the_search(self) -> None:
        """A sink that also fails for a moment while the event is searched for still gets the rest."""
        sink = PickySink(TransientSinkError("busy"), TransientSinkError("busy"))
        f = make_flusher([sink], max_batch_size=20)
        events = make_events(20)
        events[11] = make_event(feature="poison")
        for event in events:
            f.submit(event)
        assert not f.flush(5)
        assert sorted(e.tracking_id for e in sink.events) == sorted(
            e.tracking_id for e in events if e is not events[11]
        )
        assert f.snapshot()["sinks"]["PickySink"]["dropped"] == 1

    def test_an_event_that_cannot_be_built(self, swallowed: list[BaseException]) -> None:
        """An event that cannot be built is dropped alone (and logged as a fluxgate fault); the rest arrive."""
        sink = MemorySink()
        f = make_flusher([sink])
        events = make_events(5)
        f.submit(events[0])
        f.submit(Unbuildable())
        for event in events[1:]:
            f.submit(event)
        assert not f.flush(5)
        assert sink.events == events
        assert f.snapshot()["sinks"]["MemorySink"]["dropped_by_reason"] == {"unserializable": 1}
        assert [type(exc) for exc in swallowed] == [ValueError]
        swallowed.clear()

    def test_spill_sets_aside_what_it_cannot_encode(self, tmp_path: Path) -> None:
        """A dead sink's batch goes to the spill file, all but the event JSON has no form for."""
        dead, drops = ScriptedSink(forever=TransientSinkError("down")), Drops()
        f = make_flusher([dead], spill_path=tmp_path, on_drop=drops)
        events = make_events(10)
        events[4] = make_event(metadata=MappingProxyType({"when": object()}))
        for event in events:
            f.submit(event)
        assert not f.flush(5)
        lines = (tmp_path / "ScriptedSink.jsonl").read_text().splitlines()
        assert [json.loads(line)["tracking_id"] for line in lines] == [
            e.tracking_id for e in events if e is not events[4]
        ]
        assert drops.seen == [(events[4].tracking_id, "unserializable")]
        stats = f.snapshot()["sinks"]["ScriptedSink"]
        assert (stats["spilled"], stats["dropped"], stats["queued"]) == (9, 1, 0)


def poison_calls(fg: fluxgate.FluxGate, api: FakeAnthropicAPI, count: int) -> tuple[list[str], list[str]]:
    """``count`` tracked calls, one in ten of them bad in one way or another.

    Returns the tracking ids of the events every sink should store, and of those none can.
    """
    client = api.client()
    good: list[str] = []
    bad: list[str] = []
    for i in range(count):
        kind = (i // 10) % 4 if i % 10 == 9 else None
        if kind == 3:  # metadata no JSON can hold, recorded directly: cannot be written anywhere
            event = make_event(metadata=MappingProxyType({"when": object()}))
            fg.record(event)
            bad.append(event.tracking_id)
            continue
        if kind == 2:  # usage large enough to overflow the pico-dollar column
            api.reply_json(message_body(input_tokens=10**16, output_tokens=10**16))
        user: Any = {0: SURROGATE, 1: AiEventUser("u", monthly_revenue=Decimal("49"))}.get(kind, f"user-{i}")  # type: ignore[arg-type]
        with fluxgate.track_context(feature="mix", user=user):
            message = create(client)
        good.append(message.fluxgate_cost_tracking_response.tracking_id)
    return good, bad


class TestPoisonMix:
    @pytest.mark.parametrize("spill", [False, True], ids=["no-spill", "spill"])
    def test_bad_calls_cost_only_themselves(self, tmp_path: Path, spill: bool) -> None:
        """With 1 bad call in 10, SQLite, JSONL and HTTP store every call that can be stored, and count the rest."""
        drops = Drops()
        with IngestServer() as server:
            fg = fluxgate.init(
                sinks=[SQLiteSink(tmp_path / "events.db"), JSONLSink(tmp_path / "events.jsonl")],
                endpoint=server.url,
                spill_path=tmp_path / "spill" if spill else None,
                on_drop=drops,
                flush_interval_s=60,
            )
            good, bad = poison_calls(fg, FakeAnthropicAPI(), 400)
            assert not fluxgate.flush(timeout_s=30)  # the unwritable ones were dropped
            received = server.tracking_ids()
        conn = sqlite3.connect(tmp_path / "events.db")
        in_sqlite = [row[0] for row in conn.execute("SELECT tracking_id FROM events")]
        conn.close()
        in_jsonl = [json.loads(line)["tracking_id"] for line in (tmp_path / "events.jsonl").read_text().splitlines()]
        assert (len(good), len(bad)) == (390, 10)
        for arrived in (in_sqlite, in_jsonl, received):
            assert sorted(arrived) == sorted(good)
        stats = fg.stats()
        assert stats["recorded"] == 400
        for name in ("SQLiteSink", "JSONLSink", "HTTPSink"):
            sink = stats["sinks"][name]
            assert (sink["delivered"], sink["dropped_by_reason"], sink["spilled"], sink["queued"]) == (
                390,
                {"unserializable": 10},
                0,
                0,
            ), name
            assert (sink["failed_batches"], sink["circuit"]) == (0, "closed"), name
        assert sorted(drops.seen) == sorted((tracking_id, "unserializable") for tracking_id in bad * 3)
        if spill:
            assert not any(p.stat().st_size for p in (tmp_path / "spill").glob("*"))


class TestBursts:
    @pytest.mark.slow
    def test_5xx_then_429_with_default_settings(self) -> None:
        """500, 500, 500, 503 then 429 Retry-After: 1, with default settings: all 300 events arrive."""
        burst = [Reply(status=500)] * 3 + [Reply(status=503), Reply(status=429, headers={"Retry-After": "1"})]
        with IngestServer(script(*burst)) as server:
            fg = fluxgate.init(endpoint=server.url)
            events = make_events(300)
            for event in events:
                fg.record(event)
            assert fluxgate.flush(timeout_s=60)
            assert sorted(server.tracking_ids()) == sorted(e.tracking_id for e in events)
            stats = fg.stats()["sinks"]["HTTPSink"]
            assert (stats["delivered"], stats["dropped"], stats["queued"], stats["circuit"]) == (300, 0, 0, "closed")
            statuses = [seen.status for seen in server.requests]
            assert statuses == [500, 500, 500, 503, 429, 200, 200, 200]
            pause = server.requests[5].at - server.requests[4].at
            assert 0.95 <= pause < 4, "the cool-down is the Retry-After, as given"

    def test_open_circuit_keeps_the_order_of_batches(self) -> None:
        """Batches held behind an open circuit are delivered in the order they were recorded."""
        sink = ScriptedSink(*[TransientSinkError("down")] * 6)
        f = make_flusher([sink], retry=attrs.evolve(FAST, max_attempts=2, breaker_failures=3, breaker_cooldown_s=0.05))
        events = make_events(50)
        for event in events:
            f.submit(event)
        assert f.flush(5)
        assert sink.events == events

    def test_cooldown_is_the_retry_after_given(self) -> None:
        """A sink asking for 0.3 s is left alone 0.3 s, not breaker_cooldown_s."""
        calls: list[float] = []

        class Slow(ScriptedSink):
            def write(self, batch: Sequence[CostEvent]) -> None:
                calls.append(time.monotonic())
                super().write(batch)

        sink = Slow(TransientSinkError("slow down", retry_after_s=0.3))
        policy = attrs.evolve(
            FAST, max_attempts=1, breaker_failures=1, breaker_cooldown_s=30, breaker_max_cooldown_s=60
        )
        f = make_flusher([sink], retry=policy)
        f.submit(make_event())
        assert f.flush(5)
        assert len(calls) == 2
        assert 0.28 <= calls[1] - calls[0] < 2

    def test_a_flush_spills_what_a_failing_sink_holds(self, tmp_path: Path) -> None:
        """With a spill file, flush() during an outage returns True once the held events are on disk."""
        dead = ScriptedSink(forever=TransientSinkError("down"))
        f = make_flusher([dead], spill_path=tmp_path, retry=attrs.evolve(FAST, breaker_cooldown_s=60))
        events = make_events(30)
        for event in events:
            f.submit(event)
        started = time.monotonic()
        assert f.flush(5)
        assert time.monotonic() - started < 3
        stats = f.snapshot()["sinks"]["ScriptedSink"]
        assert (stats["spilled"], stats["dropped"], stats["queued"]) == (30, 0, 0)

    def test_only_a_full_queue_drops(self) -> None:
        """A dead sink without spill holds what its queue has room for and drops only the overflow."""
        dead, drops = ScriptedSink(forever=TransientSinkError("down")), Drops()
        f = make_flusher([dead], max_queue_size=30, on_drop=drops, retry=attrs.evolve(FAST, breaker_cooldown_s=60))
        for _ in range(10):
            for event in make_events(10):
                f.submit(event)
            f.flush(0.05)
        stats = f.snapshot()["sinks"]["ScriptedSink"]
        assert stats["queued"] == 30
        assert stats["dropped_by_reason"] == {"sink_queue_full": 70}
        assert drops.reasons() == {"sink_queue_full"}

    def test_recovery_releases_the_held_batches(self) -> None:
        """When a dead sink comes back, everything it held is delivered."""
        down = threading.Event()
        down.set()

        class Flaky(MemorySink):
            def write(self, batch: Sequence[CostEvent]) -> None:
                if down.is_set():
                    raise TransientSinkError("down")
                super().write(batch)

        sink = Flaky()
        f = Flusher([sink], retry=attrs.evolve(FAST, breaker_cooldown_s=0.05), max_batch_size=10, flush_interval_s=60)
        events = make_events(40)
        for event in events:
            f.submit(event)
        assert not f.flush(0.3)
        down.clear()
        assert f.flush(5)
        assert sink.events == events
        assert f.close(5)


class TestCloseWhileSpilling:
    """close() never returns while a batch is in the worker's hands and nowhere counted."""

    @pytest.fixture
    def stuck_spill(self, tmp_path: Path) -> Iterator[Path]:
        """A spill file that blocks whoever opens it to write (a FIFO nobody reads), released at the end."""
        fifo = tmp_path / "ScriptedSink.jsonl"
        os.mkfifo(fifo)
        yield fifo
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # lets a blocked writer through (30 lines fit the pipe)
        try:
            for thread in threading.enumerate():
                if thread.name == "fluxgate-ScriptedSink":
                    thread.join(10)
        finally:
            os.close(reader)

    def test_a_spill_that_hangs_is_counted_at_close(self, stuck_spill: Path, tmp_path: Path) -> None:
        """The worker is spilling what a dead sink held when close() runs out of time: those events are counted."""
        dead, drops = ScriptedSink(forever=TransientSinkError("down")), Drops()
        policy = attrs.evolve(FAST, max_attempts=1, breaker_cooldown_s=60)
        f = make_flusher([dead], spill_path=tmp_path, retry=policy, on_drop=drops)
        for event in make_events(30):
            f.submit(event)
        assert not f.flush(1)  # the worker set the batches aside and is stuck opening the spill file
        assert not f.close(0.2)
        snapshot = f.snapshot()
        assert_accounted(snapshot, 30)
        assert snapshot["sinks"]["ScriptedSink"]["dropped_by_reason"] == {"shut_down": 30}
        assert len(drops.seen) == 30

    def test_close_waits_for_a_spill_under_way(self, stuck_spill: Path, tmp_path: Path) -> None:
        """The spill file takes the batch only once close() has run out of time: it is spilled, and counted so."""
        dead = ScriptedSink(forever=TransientSinkError("down"))
        policy = attrs.evolve(FAST, max_attempts=1, breaker_cooldown_s=60)
        f = make_flusher([dead], spill_path=tmp_path, retry=policy)
        for event in make_events(30):
            f.submit(event)
        opened: list[int] = []

        class OpenOnTimeout(logging.Handler):
            """Once close()'s flush timed out, opens the spill file for reading: the worker's open goes through."""

            def emit(self, record: logging.LogRecord) -> None:
                if "flush timed out" in record.getMessage() and not opened:
                    opened.append(os.open(stuck_spill, os.O_RDWR | os.O_NONBLOCK))

        handler = OpenOnTimeout()
        logging.getLogger("fluxgate").addHandler(handler)
        try:
            assert not f.close(0.2)
        finally:
            logging.getLogger("fluxgate").removeHandler(handler)
        snapshot = f.snapshot()
        assert_accounted(snapshot, 30)
        assert snapshot["sinks"]["ScriptedSink"]["spilled"] == 30
        [fifo] = opened
        try:
            spilled = os.read(fifo, 1 << 16)  # every batch was written before close() returned
        finally:
            os.close(fifo)
        assert len(spilled.splitlines()) == 30


class GatedStore(SQLiteSink):
    """A real SQLite store that counts its transactions, and holds the first until released."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.writes: list[int] = []

    def _insert_rows(self, rows: list[tuple[Any, ...]]) -> None:
        self.entered.set()
        self.gate.wait(10)
        self.writes.append(len(rows))
        super()._insert_rows(rows)


class TestMerging:
    def test_a_backlog_is_written_in_few_transactions(self, tmp_path: Path) -> None:
        """Batches waiting for the SQLite store are written together, up to max_events_per_write."""
        store = GatedStore(tmp_path / "events.db")
        f = make_flusher([store], max_batch_size=100, max_queue_size=10_000)
        events = make_events(2500)
        f.submit(events[0])
        f.flush(0.01)
        assert store.entered.wait(5)  # the first write holds the thread while the backlog builds
        for event in events[1:]:
            f.submit(event)
        f.flush(0.01)
        store.gate.set()
        assert f.flush(10)
        assert store.writes == [1, 1000, 1000, 499]
        assert f.snapshot()["sinks"]["GatedStore"]["delivered"] == 2500

    def test_sinks_that_do_not_merge_get_their_batches(self) -> None:
        """A sink without max_events_per_write gets batches of max_batch_size, however long its queue."""
        gate = threading.Event()
        sizes: list[int] = []

        class Slow(MemorySink):
            def write(self, batch: Sequence[CostEvent]) -> None:
                gate.wait(10)
                sizes.append(len(batch))
                super().write(batch)

        f = make_flusher([Slow()], max_batch_size=10)
        for event in make_events(50):
            f.submit(event)
        f.flush(0.01)
        gate.set()
        assert f.flush(10)
        assert sizes == [10] * 5


class TestMemory:
    def test_nothing_is_kept_after_delivery(self, tmp_path: Path) -> None:
        """Once delivered, a call's event leaves nothing behind: memory is flat over many calls."""
        f = Flusher([SQLiteSink(tmp_path / "events.db")], flush_interval_s=60)
        context = fluxgate.ContextFrame.build(feature="f", user="u1", metadata={"plan": "pro"})
        for _ in range(500):  # warm up: the connection, caches, the threads
            f.submit(make_pending(context=context))
        assert f.flush(10)
        gc.collect()
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            for _ in range(5):
                for _ in range(1000):
                    f.submit(make_pending(context=context))
                assert f.flush(10)
            gc.collect()
            after, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert f.snapshot()["sinks"]["SQLiteSink"]["delivered"] == 5500
        assert after - before < 256 * 1024, f"{(after - before) / 1024:.0f} KiB kept after 5,000 calls"
