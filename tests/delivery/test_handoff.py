"""Handing the GIL to the SQLite writer when it waits for it behind a busy caller (fluxgate._handoff)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from fluxgate import CostEvent, TransientSinkError
from fluxgate._delivery.flusher import Flusher
from fluxgate._handoff import FIRST_PAUSES, YIELD_S, Handoff
from fluxgate._recording import PendingEvent
from fluxgate.sinks import SQLiteSink

from ..sinks.conftest import make_events, make_pending


@pytest.fixture
def pauses() -> list[float]:
    return []


@pytest.fixture
def handoff(pauses: list[float]) -> Handoff:
    return Handoff(sleep=pauses.append)


class TestHandoff:
    def test_an_idle_writer_costs_callers_nothing(self, handoff: Handoff, pauses: list[float]) -> None:
        for _ in range(50):
            handoff.offer()
        handoff.enter()
        handoff.leave()
        for _ in range(50):
            handoff.offer()
        assert pauses == []

    def test_a_writer_that_moves_on_between_calls_is_left_alone(self, handoff: Handoff, pauses: list[float]) -> None:
        handoff.enter()
        for _ in range(50):
            handoff.offer()
            handoff.advance()
        assert pauses == []

    def test_a_writer_stuck_for_a_call_is_handed_the_gil(self, handoff: Handoff, pauses: list[float]) -> None:
        handoff.enter()
        handoff.offer()  # the first call to see this step: the statement may just have begun
        assert pauses == []
        handoff.offer()
        handoff.offer()
        assert pauses == [YIELD_S, YIELD_S]

    def test_pauses_per_step_are_bounded(self, handoff: Handoff, pauses: list[float]) -> None:
        """A long statement (a lock held by another process) costs a busy caller a few pauses, not one per call."""
        handoff.enter()
        for _ in range(1001):
            handoff.offer()
        # The call that first saw the step, then FIRST_PAUSES calls, then calls 16, 32, 64, 128, 256, 512.
        assert len(pauses) == FIRST_PAUSES + 6
        handoff.advance()  # the next statement is a new step
        for _ in range(1001):
            handoff.offer()
        assert len(pauses) == 2 * (FIRST_PAUSES + 6)

    @pytest.mark.parametrize("lasted", [FIRST_PAUSES + 1, 17, 100, 1000, 5000])
    def test_a_writer_back_from_a_long_statement_is_handed_the_gil_again(
        self, handoff: Handoff, pauses: list[float], lasted: int
    ) -> None:
        """Back from a statement that outlasted its pauses, the writer waits at the same step: it is not left for good.

        It is handed the GIL again at most as many calls later as the statement lasted.
        """
        handoff.enter()
        for _ in range(lasted + 1):  # the statement, the writer not waiting for the GIL
            handoff.offer()
        before = len(pauses)
        for _ in range(lasted):  # the writer is back, waiting for the GIL
            handoff.offer()
            if len(pauses) > before:
                break
        assert len(pauses) == before + 1, f"no pause in the {lasted} calls after a statement of {lasted} calls"

    def test_steps_are_odd_inside_and_new_each_time(self, handoff: Handoff) -> None:
        seen = set()
        for _ in range(3):
            handoff.enter()
            assert handoff.step % 2 == 1
            seen.add(handoff.step)
            handoff.enter()  # woken while inside: still inside, at a new step
            assert handoff.step % 2 == 1
            seen.add(handoff.step)
            handoff.advance()
            seen.add(handoff.step)
            handoff.leave()
            assert handoff.step % 2 == 0
            handoff.leave()
            assert handoff.step % 2 == 0
        assert len(seen) == 9

    def test_a_write_is_inside_however_it_ends(self, handoff: Handoff) -> None:
        """``with handoff:`` enters (an odd step) and leaves (an even one), also when the write raises."""
        with handoff:
            assert handoff.step % 2 == 1
        assert handoff.step % 2 == 0
        with pytest.raises(ValueError, match="refused"), handoff:
            raise ValueError("refused")
        assert handoff.step % 2 == 0


class TestSQLiteWriter:
    def test_each_statement_of_a_write_is_a_step(self, tmp_path: Path) -> None:
        """SQLite itself reports every statement it runs: each one is inside the write, at a step of its own."""
        sink = SQLiteSink(tmp_path / "events.db")
        sink.write(make_events(2))  # opens the connection and its schema
        steps: list[int] = []
        sink._connect().set_trace_callback(lambda _sql: steps.append(sink._handoff.step))
        sink.write([make_pending() for _ in range(300)])  # rows made in steps, then BEGIN, 3 INSERTs, COMMIT
        assert len(steps) >= 5
        assert all(step % 2 == 1 for step in steps)
        inserts = steps[1:-1]
        assert len(set(inserts)) == len(inserts)
        assert sink._handoff.step % 2 == 0  # out again

    def test_a_failed_write_leaves_its_statements(self, tmp_path: Path) -> None:
        path = tmp_path / "events.db"
        sink = SQLiteSink(path, timeout_s=0.05)
        sink.write(make_events(1))
        other = sqlite3.connect(path)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with pytest.raises(TransientSinkError):
                sink.write(make_events(300))
        finally:
            other.rollback()
            other.close()
        assert sink._handoff.step % 2 == 0


def delivered(f: Flusher) -> int:
    """The events the flusher's SQLite sink has delivered so far."""
    return int(f.snapshot()["sinks"]["SQLiteSink"]["delivered"])


class TestBusyCaller:
    def test_the_writer_keeps_pace_with_a_busy_caller(self, tmp_path: Path) -> None:
        """A caller that keeps the interpreter busy, letting go of the GIL only for moments, does not starve the writer.

        The SDK reads ``os.urandom`` for every request: the GIL goes and comes
        straight back, and a writer waiting for it is woken in vain, each time.
        Handed the GIL, the writer delivers the first wake-up's 500 events while
        the caller is still at it, long before the backlog (1,000 held) would
        make callers pause on the flusher's own rule.
        """
        sink = SQLiteSink(tmp_path / "events.db")
        # The store made and opened first (its first write syncs the new file to disk): the race
        # is for the GIL, not for a disk that other machines share.
        sink.write(make_events(1))
        f = Flusher([sink])  # default batching: wakes at 500 queued
        for n, event in enumerate(make_events(1000), 1):
            sum(range(15_000))  # an application busy computing
            os.urandom(16)  # and a moment without the GIL
            f.submit(event)
            if n % 50 == 0 and delivered(f) >= 500:
                break
        assert delivered(f) >= 500, f.snapshot()
        assert f.flush(30)
        assert f.close(5)

    def test_a_writer_back_from_waiting_for_a_lock_keeps_pace(self, tmp_path: Path) -> None:
        """A write that waited for another process's lock through many calls is handed the GIL once it has the lock.

        Its pauses were spent while it waited without wanting the GIL; back
        from the lock at the same step, it must not be left waiting for the
        GIL for as long as the caller stays busy.
        """
        sink = SQLiteSink(tmp_path / "events.db")
        sink.write(make_events(1))  # the store made and opened: the next write waits only for the lock
        other = sqlite3.connect(tmp_path / "events.db")
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        f = Flusher([sink])
        try:
            for n, event in enumerate(make_events(1000), 1):
                sum(range(15_000))
                os.urandom(16)
                f.submit(event)
                if n == 600:  # the writer has waited for the lock for a hundred calls
                    other.rollback()
                if n % 50 == 0 and delivered(f) >= 500:
                    break
            assert delivered(f) >= 500, f.snapshot()
        finally:
            other.rollback()
            other.close()
        assert f.flush(30)
        assert f.close(5)


class TestOtherWriters:
    def test_a_subclass_with_its_own_write_never_makes_callers_pause(
        self, tmp_path: Path, handoff: Handoff, pauses: list[float]
    ) -> None:
        """The worker marks the writer when it hands it work; it leaves the mark however the write went."""

        class Elsewhere(SQLiteSink):
            def write(self, batch: Sequence[CostEvent | PendingEvent]) -> None:
                self.written = [*getattr(self, "written", []), *batch]

        sink = Elsewhere(tmp_path / "events.db")
        sink._handoff = handoff
        f = Flusher([sink])
        for event in make_events(150):
            f.submit(event)
        assert f.flush(5)
        for event in make_events(50):
            f.submit(event)
        assert handoff.step % 2 == 0
        assert pauses == []
        assert f.close(5)
        assert len(sink.written) == 200
