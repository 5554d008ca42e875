"""Events per second through the flusher into the default SQLite store, and to a local HTTP server.

Not a test: run it by hand and compare runs on one machine.

    python benchmarks/bench_flusher.py --events 200000

It reports the caller's cost of ``submit()`` (what a tracked API call pays),
then the end-to-end rate, from the first ``submit()`` to the return of
``flush()``, into a ``SQLiteSink`` with the settings ``fluxgate.init()`` uses:

- of what tracked calls submit (``PendingEvent``: the call's facts, priced
  and stored by the flusher's threads, the figure that matters);
- of ready ``CostEvent`` objects (what ``FluxGate.record`` takes);

and to an HTTP server on 127.0.0.1 (the ``IngestServer`` the tests use: a
stdlib server, so it, not the client, is usually the bottleneck). The last
line is the peak of Python allocations while a million events go to a dead
sink: it must not grow with the number of events.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anthropic.types import Usage as SDKUsage

from fluxgate import AiEventUser, CostEvent, Status
from fluxgate._delivery import Flusher, LazyEvent
from fluxgate._ids import new_tracking_id, now_ms
from fluxgate._models import ContextFrame
from fluxgate._pricing import PriceTable
from fluxgate._recording import PendingEvent
from fluxgate._recording.usage import detached
from fluxgate.sinks import HTTPSink, SQLiteSink
from tests.sinks.conftest import IngestServer, make_events

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_overhead import USAGE  # the path above first

#: What ``fluxgate.init()`` passes the flusher by default.
DEFAULTS = {"max_batch_size": 100, "flush_interval_s": 1.0}


class NullSink:
    """Takes every batch and keeps nothing."""

    def write(self, batch: Sequence[CostEvent]) -> None:
        pass

    def close(self) -> None:
        pass


class DeadSink(NullSink):
    """Refuses every batch as a transient failure."""

    def write(self, batch: Sequence[CostEvent]) -> None:
        raise ConnectionError("down")


def pending_events(count: int) -> list[PendingEvent]:
    """What ``count`` tracked calls in one scope hand to the flusher: their facts, the SDK's usage unread."""
    table = PriceTable.default()
    context = ContextFrame.build(feature="summarize", user=AiEventUser("u1", name="Ada"), metadata={"plan": "pro"})
    usage = detached(SDKUsage.model_validate(USAGE))  # as a tracked call hands the SDK's over
    return [
        PendingEvent(
            table,
            "messages.create",
            "anthropic",
            False,
            context,
            now_ms(),
            None,
            None,
            None,
            new_tracking_id(),
            Status.SUCCESS,
            usage,
            "claude-sonnet-4-6",
            "end_turn",
            f"req_{i}",
            None,
            None,
            False,
            812.5,
            None,
            None,
        )
        for i in range(count)
    ]


def submit_cost_ns(events: Sequence[CostEvent | LazyEvent]) -> float:
    """Mean nanoseconds per submit() with a sink that costs nothing."""
    flusher = Flusher([NullSink()], max_queue_size=len(events) + 1, max_batch_size=500)
    started = time.perf_counter_ns()
    for event in events:
        flusher.submit(event)
    elapsed = time.perf_counter_ns() - started
    flusher.close(30)
    return elapsed / len(events)


def rate(sinks: Sequence[object], events: list[CostEvent | LazyEvent]) -> tuple[float, float]:
    """Events per second from the first submit() to flush(): per wall-clock second, and per CPU second.

    Takes (and empties) ``events``.

    The second figure is what the process spent on all its threads (the
    caller's loop included): on a machine whose cores are busy with other
    work it is the one that says what the code costs.
    """
    count = len(events)
    flusher = Flusher(sinks, max_queue_size=count + 1, **DEFAULTS)  # type: ignore[arg-type]
    # Each event is let go of once submitted, as a tracked call lets go of
    # its own: what delivery allocates for it is freed and reused, as in an
    # application, instead of growing the heap by 200,000 priced events.
    waiting = list(reversed(events))
    events.clear()
    started, cpu = time.perf_counter(), time.process_time()
    while waiting:
        flusher.submit(waiting.pop())
    if not flusher.flush(300):
        print("  flush did not deliver everything", file=sys.stderr)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    delivered = sum(int(sink["delivered"]) for sink in flusher.snapshot()["sinks"].values())
    if delivered != count * len(sinks):
        print(f"  only {delivered} of {count} events were delivered", file=sys.stderr)
    flusher.close(30)
    return count / elapsed, count / cpu


def dead_sink_peak_mib(count: int) -> float:
    """Peak traced allocations while ``count`` events go to a dead sink (bounded queues)."""
    flusher = Flusher([DeadSink()], **DEFAULTS)
    event = make_events(1)[0]
    tracemalloc.start()
    try:
        for _ in range(count):
            flusher.submit(event)
        flusher.flush(0.5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    flusher.close(1)
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--http-events", type=int, default=50_000)
    args = parser.parse_args()
    count = args.events
    print(f"{count:,} events, batches of {DEFAULTS['max_batch_size']}, Python {sys.version.split()[0]}")
    print(f"submit():                {submit_cost_ns(make_events(10_000)) / 1000:.2f} µs per event (caller)")
    with tempfile.TemporaryDirectory() as tmp:
        per_s, per_cpu_s = rate([SQLiteSink(Path(tmp) / "pending.db")], pending_events(count))
        print(f"SQLiteSink, tracked calls: {per_s:>9,.0f} events/s  {per_cpu_s:>9,.0f} per CPU-second")
        per_s, per_cpu_s = rate([SQLiteSink(Path(tmp) / "events.db")], make_events(count))
        print(f"SQLiteSink, CostEvents:    {per_s:>9,.0f} events/s  {per_cpu_s:>9,.0f} per CPU-second")
    with IngestServer() as server:
        per_s, _ = rate([HTTPSink(server.url)], make_events(args.http_events))
        print(f"HTTPSink:                  {per_s:>9,.0f} events/s  ({len(server.requests)} requests)")
    print(f"dead sink, 1,000,000 events: peak {dead_sink_peak_mib(1_000_000):.1f} MiB traced")


if __name__ == "__main__":
    main()
