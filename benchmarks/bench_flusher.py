"""Events per second through the flusher, to SQLite and to a local HTTP ingest server.

Not a test: run it by hand and compare runs on one machine.

    python benchmarks/bench_flusher.py --events 50000

It reports three figures: the caller's cost of ``submit()`` (what a tracked
API call pays), and the end-to-end rate from the first ``submit()`` to the
return of ``flush()`` for a SQLite file and for an HTTP server on 127.0.0.1
(the ``IngestServer`` the tests use: a stdlib server, so it, not the client,
is usually the bottleneck).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fluxgate import CostEvent
from fluxgate._delivery.flusher import Flusher
from fluxgate.sinks import HTTPSink, SQLiteSink
from tests.sinks.conftest import IngestServer, make_events


class NullSink:
    """Takes every batch and keeps nothing."""

    def write(self, batch: Sequence[CostEvent]) -> None:
        pass

    def close(self) -> None:
        pass


def submit_cost_ns(events: list[CostEvent]) -> float:
    """Mean nanoseconds per submit() with a sink that costs nothing."""
    flusher = Flusher([NullSink()], max_queue_size=len(events) + 1, max_batch_size=500)
    started = time.perf_counter_ns()
    for event in events:
        flusher.submit(event)
    elapsed = time.perf_counter_ns() - started
    flusher.close(30)
    return elapsed / len(events)


def rate(sinks: Sequence[object], events: list[CostEvent], batch: int) -> tuple[float, dict[str, object]]:
    """Events per second from the first submit() to flush(), and the sink's counters."""
    flusher = Flusher(sinks, max_queue_size=len(events) + 1, max_batch_size=batch)  # type: ignore[arg-type]
    started = time.perf_counter()
    for event in events:
        flusher.submit(event)
    if not flusher.flush(120):
        print("  flush timed out", file=sys.stderr)
    elapsed = time.perf_counter() - started
    stats = flusher.snapshot()
    flusher.close(30)
    return len(events) / elapsed, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500, help="max_batch_size")
    args = parser.parse_args()
    events = make_events(args.events)
    print(f"{args.events} events, batches of {args.batch}, Python {sys.version.split()[0]}")
    print(f"submit():    {submit_cost_ns(events) / 1000:.2f} µs per event on the caller's thread")
    with tempfile.TemporaryDirectory() as tmp:
        per_s, stats = rate([SQLiteSink(Path(tmp) / "bench.db")], events, args.batch)
        print(f"SQLiteSink:  {per_s:,.0f} events/s  {stats['sinks']}")
    with IngestServer() as server:
        per_s, stats = rate([HTTPSink(server.url)], events, args.batch)
        print(f"HTTPSink:    {per_s:,.0f} events/s  ({len(server.requests)} requests)  {stats['sinks']}")


if __name__ == "__main__":
    main()
