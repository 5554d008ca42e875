"""Where a tracked call's time goes: each piece of fluxgate's work timed alone, on both threads.

`bench_overhead.py` measures the whole cost as an application sees it. On a small VM those figures
move by several µs from run to run, and they include effects that are not fluxgate's code: a
thread writing to SQLite slows the application's thread down even when it is another process.
This script times each piece of work by itself (timeit, many repetitions, the fastest of 5), so a
change to one piece shows as a change in its line.

    python benchmarks/bench_split.py

Caller's thread: the patched method a create passes through (one wrapt hop), the request
wrapper's own work (routing, the Call, the PendingEvent, the summary hung on the message, the
enqueue). Flusher's threads, on the path the default SQLite store takes: reading the call's
usage, pricing it and building its row in one pass (the store's short path: the cost goes from
integers to text), SQLite's insert per row (in writes of 500, the GIL released), and what the
dispatcher and the sink's worker add per event. Pricing by ``exact()`` (what other sinks and a
summary's ``cost`` read take) is shown apart, outside the totals.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
import timeit
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_overhead
import wrapt

from fluxgate import track_context
from fluxgate._delivery import Flusher
from fluxgate._instrument import patches
from fluxgate._recording import PendingEvent
from fluxgate._store.events import _INSERT_ORDER
from fluxgate.sinks import SQLiteSink

NUMBER = 20_000
#: Rows per SQLite write: with default settings the flusher wakes at 500 events (five batches of
#: 100) and the store's worker takes the batches waiting for it in one write (in rounds of 1,000
#: tracked creates, 9 of 11 writes were of 500 rows).
WRITE_ROWS = 500


def best_us(work: Callable[[], Any], number: int = NUMBER) -> float:
    """The fastest of five runs of ``number`` calls, in µs per call."""
    return min(timeit.repeat(work, number=number, repeat=5)) / number * 1e6


def wrapt_hop_us() -> float:
    """What one class-level wrapt pass-through wrapper adds to a method call."""

    class Plain:
        def method(self, value: int, flag: bool = False) -> int:
            return value

    class Wrapped(Plain):
        pass

    def through(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return wrapped(*args, **kwargs)

    Wrapped.method = Plain.method  # type: ignore[method-assign]
    wrapt.wrap_function_wrapper(Wrapped, "method", through)
    plain, wrapped = Plain(), Wrapped()
    return best_us(lambda: wrapped.method(1, flag=True), 200_000) - best_us(lambda: plain.method(1, flag=True), 200_000)


def tracked_calls(count: int) -> tuple[Any, list[PendingEvent], bench_overhead.Bench]:
    """A real message, and the pending events of ``count`` tracked creates (kept, not delivered)."""
    tmp = Path(tempfile.mkdtemp())
    bench = bench_overhead.Bench(tmp / "calls.db")
    kept: list[PendingEvent] = []
    bench.fg._flusher.submit = lambda event: kept.append(event) or True  # type: ignore[method-assign]
    bench.tracked(True)
    with track_context(feature="bench", user="u1", step="s"):
        message = bench.create()
        kept.clear()
        for _ in range(count):
            bench.create()
    return message, list(kept), bench


def request_path_us(bench: bench_overhead.Bench, message: Any) -> float:
    """The request wrapper's work for one create whose SDK part returns ``message`` at once."""
    sdk, args, kwargs = bench_overhead.stubbed_request(bench, message)
    with track_context(feature="bench", user="u1", step="s"):
        tracked = best_us(lambda: patches._request(sdk, bench.client, args, kwargs))
    return tracked - best_us(lambda: sdk(*args, **kwargs))


def per_event_us(
    work: Callable[[Any], Any],
    events: list[PendingEvent],
    prepare: Callable[[list[PendingEvent]], Any] = lambda events: events,
) -> float:
    """µs per event of ``work`` over what ``prepare`` makes of ``events`` (untimed; pricing reset each run)."""
    runs = []
    for _ in range(5):
        for event in events:
            event._priced = None
            event._exact = None
            event._event = None
        ready = prepare(events)
        runs.append(timeit.timeit(lambda r=ready: work(r), number=1) / len(events) * 1e6)
    return min(runs)


def main() -> None:
    message, events, bench = tracked_calls(10_000)
    sdk_usage = [event._usage for event in events]
    sink = SQLiteSink(Path(tempfile.mkdtemp()) / "split.db")
    sink.write(events[:1])

    def read_usage(batch: Sequence[PendingEvent]) -> None:
        for event, raw in zip(batch, sdk_usage, strict=True):
            event._usage = raw
            _ = event.usage

    def price(batch: Sequence[PendingEvent]) -> None:
        for event in batch:
            event.exact()

    def rows(batch: Sequence[PendingEvent]) -> None:
        for event in batch:
            sink._row(event)

    built = [sink._row(event) for event in events]
    assert _INSERT_ORDER[:2] == ("tracking_id", "created_at")
    ids = itertools.count(max(int(row[0], 16) for row in built) + 1)  # past the ids the store has
    times = itertools.count(built[0][1])

    def unique_rows(_batch: list[PendingEvent]) -> list[tuple[Any, ...]]:
        # New rows as a store gets them, each key past the last: tracking ids (a serial's text)
        # and created_at both increasing, so every insert lands at the end of its index. The
        # same ids with a suffix, or the same created_at again, land all over both indexes, which
        # costs SQLite and the kernel (writing the pages) more as the table grows: about 1 µs a
        # row more at 50,000 rows, 10 at 240,000 (RESULTS.md, twenty-fifth pass).
        return [(f"{next(ids):032x}", next(times), *row[2:]) for row in built]

    def insert(unique: list[tuple[Any, ...]]) -> None:
        for start in range(0, len(unique), WRITE_ROWS):
            sink._insert_rows(unique[start : start + WRITE_ROWS])

    class Null:
        accepts_pending_events = True
        max_events_per_write = 1000

        def write(self, batch: Sequence[Any]) -> None:
            pass

        def close(self) -> None:
            pass

    def machinery(batch: Sequence[PendingEvent]) -> None:
        flusher = Flusher([Null()])
        for event in batch:
            flusher.submit(event)
        flusher.flush(30)
        flusher.close(5)

    hop = wrapt_hop_us()
    lines = [
        ("caller", "wrapt hop (SyncAPIClient.request)", hop),
        ("caller", "request wrapper: route, Call, PendingEvent, summary, enqueue", request_path_us(bench, message)),
        ("flusher", "read the call's usage", per_event_us(read_usage, events)),
        ("flusher", "price and build the SQLite row (integers to text)", per_event_us(rows, events)),
        ("flusher", f"SQLite insert, writes of {WRITE_ROWS} (GIL released)", per_event_us(insert, events, unique_rows)),
        ("flusher", "dispatcher and worker, submit to flush", per_event_us(machinery, events)),
    ]
    apart = ("other", "price by exact() (other sinks, a summary's cost)", per_event_us(price, events))
    bench.tracked(False)
    width = max(len(what) for _, what, _ in [*lines, apart])
    print(f"Each piece alone, µs per tracked create (fastest of 5; Python {sys.version.split()[0]})")
    for thread, what, us in lines:
        print(f"  {thread:8} {what:<{width}}  {us:6.2f}")
    caller = sum(us for thread, _, us in lines if thread == "caller")
    flusher = sum(us for thread, _, us in lines if thread == "flusher")
    print(f"  caller's thread {caller:.1f} µs, flusher's threads {flusher:.1f} µs, together {caller + flusher:.1f} µs")
    thread, what, us = apart
    print(f"  {thread:8} {what:<{width}}  {us:6.2f}  (not on the default store's path)")


if __name__ == "__main__":
    main()
