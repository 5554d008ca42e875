"""After os.fork() the child delivers its own events and the parent's are delivered once."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator

import pytest

import fluxgate
from fluxgate import CostEvent

from ..sinks.conftest import IngestServer, Reply, assert_all_arrived, make_events

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    pytest.mark.slow,
    # Python 3.12 warns about forking a process that has threads; that is the point here.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


@pytest.fixture
def ingest(monkeypatch: pytest.MonkeyPatch) -> Iterator[IngestServer]:
    """A healthy ingest server, and no endpoint from the environment."""
    monkeypatch.delenv("FLUXGATE_ENDPOINT", raising=False)
    monkeypatch.delenv("FLUXGATE_API_KEY", raising=False)
    with IngestServer() as server:
        yield server


def in_child(body: Callable[[], bool]) -> int:
    """Fork; the child runs ``body`` and exits 0 if it returned True. The parent gets the pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            code = 0 if body() else 2
        finally:
            os._exit(code)
    return pid


def exit_code(pid: int) -> int:
    """Wait for ``pid`` and return its exit code."""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def record_all(events: list[CostEvent]) -> None:
    """Record ``events`` with the active FluxGate, and nothing else."""
    fg = fluxgate._fluxgate.active()
    assert fg is not None
    for event in events:
        fg.record(event)


class TestFork:
    def test_child_events_arrive_and_parent_queue_is_delivered_once(self, ingest: IngestServer) -> None:
        """A forked child's events arrive; events queued before the fork arrive once, from the parent."""
        fg = fluxgate.init(endpoint=ingest.url, flush_interval_s=60, max_batch_size=1000)
        warm, queued, childs = make_events(3), make_events(20), make_events(7)
        record_all(warm)
        assert fg.flush(timeout_s=10)  # the parent now holds a pooled connection
        record_all(queued)
        assert fg.stats()["queued"] == 20

        def child() -> bool:
            fresh = fg.stats()
            if fresh["queued"] or fresh["sinks"]["HTTPSink"]["delivered"]:
                return False
            record_all(childs)
            return fg.flush(timeout_s=10) and fg.stats()["sinks"]["HTTPSink"]["delivered"] == 7

        assert exit_code(in_child(child)) == 0
        assert fg.flush(timeout_s=10)
        assert_all_arrived(ingest, warm + queued + childs)
        ids = ingest.tracking_ids()
        assert len(ids) == len(set(ids)), "an event was delivered twice"
        assert fg.stats()["sinks"]["HTTPSink"]["delivered"] == 23

    def test_preload_pattern(self, ingest: IngestServer) -> None:
        """init() in a parent that never records, then workers forked from it, as gunicorn --preload does."""
        fg = fluxgate.init(endpoint=ingest.url, flush_interval_s=0.05)
        per_worker = [make_events(10) for _ in range(3)]

        def worker(events: list[CostEvent]) -> Callable[[], bool]:
            def body() -> bool:
                record_all(events)
                return fg.flush(timeout_s=10)

            return body

        pids = [in_child(worker(events)) for events in per_worker]
        assert [exit_code(pid) for pid in pids] == [0, 0, 0]
        after = make_events(4)
        record_all(after)
        assert fg.flush(timeout_s=10)
        assert_all_arrived(ingest, [e for events in per_worker for e in events] + after)
        ids = ingest.tracking_ids()
        assert len(ids) == len(set(ids))

    def test_fork_while_a_batch_is_in_flight(self) -> None:
        """A fork while the parent is mid-delivery leaves the child a working flusher."""
        with IngestServer(lambda _index, _events: Reply(hang_s=0.3)) as server:
            fg = fluxgate.init(endpoint=server.url, flush_interval_s=60)
            parents, childs = make_events(5), make_events(5)
            record_all(parents)
            fg.flush(timeout_s=0.05)  # the parent's worker is now waiting on the server

            def child() -> bool:
                record_all(childs)
                return fg.flush(timeout_s=10)

            assert exit_code(in_child(child)) == 0
            assert fg.flush(timeout_s=10)
            assert_all_arrived(server, parents + childs)

    def test_multiprocessing_child_flushes_at_exit(self, ingest: IngestServer) -> None:
        """A multiprocessing child that never flushes still delivers: its exit flushes."""
        fluxgate.init(endpoint=ingest.url, flush_interval_s=60)
        events = make_events(6)
        process = multiprocessing.get_context("fork").Process(target=record_all, args=(events,))
        process.start()
        process.join(30)
        assert process.exitcode == 0
        assert_all_arrived(ingest, events)
