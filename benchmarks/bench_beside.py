"""What the flusher working beside the application costs the application's own thread.

`bench_overhead.py` reports (a), the CPU a tracked create adds to the calling thread, at several
times what the caller's own work counts in instructions (`bench_instructions.py`). This script
splits that figure. Rounds of 1,000 creates, interleaved in one process, each mode's median of
the rounds, the calling thread's CPU (`time.thread_time`) per create:

  off      untracked
  alone    tracked, each event let go at the queue: the caller's own work
  held     tracked, the events kept alive until the round ends, never written: adds the
           collector's work for objects that outlive the call
  on       tracked, default settings: the flusher prices and writes beside the caller

    python benchmarks/bench_beside.py
    python benchmarks/bench_beside.py --one-cpu   # every thread on one core

After the timed rounds, one more round per mode (untimed, 5,000 creates) counts the cyclic garbage
collector's work: its collections per 1,000 creates, on the calling thread and on the others, and
the objects they examined per create (every object in the generations a collection goes through).
Callgrind's figure for the collector moves by a factor of three between runs of the same code (when
a collection lands decides how many young objects it finds); these counts repeat (two runs of
20,000 creates: 83 collections each, 71,772 and 71,780 objects examined).

With ``--one-cpu`` the process runs on one core (Linux): the flusher's threads then take turns
with the caller on that core instead of running on the other one. The difference between the two
runs' ``on`` rows is what running beside the caller on another core costs it (see RESULTS.md,
eleventh pass).
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_overhead

from fluxgate import track_context

ROUNDS = 9
CALLS = 1000
GC_CALLS = 5000


class CollectorCount:
    """The collector's work while installed: collections by thread, and the objects they examined."""

    def __init__(self) -> None:
        self.seen: collections.Counter[str] = collections.Counter()
        self.caller = threading.get_ident()

    def __enter__(self) -> CollectorCount:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            where = "caller" if threading.get_ident() == self.caller else "others"
            self.seen[where] += 1
            self.seen["objects"] += sum(len(gc.get_objects(generation)) for generation in range(info["generation"] + 1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one-cpu", action="store_true", help="run every thread on one core (Linux)")
    args = parser.parse_args(argv)
    if args.one_cpu:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    bench = bench_overhead.Bench(Path(tempfile.mkdtemp()) / "beside.db")
    flusher = bench.fg._flusher
    real_submit = flusher.submit
    held: list[Any] = []
    modes: dict[str, Any] = {"off": None, "alone": lambda _event: True, "held": held.append, "on": real_submit}
    per_call: dict[str, list[float]] = {mode: [] for mode in modes}
    with track_context(feature="bench", user="u1", step="s"):
        for on in (True, False):  # warm both ways
            bench.tracked(on)
            for _ in range(300):
                bench.create()
        for _ in range(ROUNDS):
            for mode, submit in modes.items():
                bench.tracked(submit is not None)
                if submit is not None:
                    flusher.submit = submit  # type: ignore[method-assign]
                started = time.thread_time()
                for _ in range(CALLS):
                    bench.create()
                per_call[mode].append((time.thread_time() - started) / CALLS * 1e6)
                if mode == "on":
                    bench.fg.flush(timeout_s=60)
                held.clear()
        counts = {}
        for mode, submit in modes.items():
            bench.tracked(submit is not None)
            if submit is not None:
                flusher.submit = submit  # type: ignore[method-assign]
            with CollectorCount() as counts[mode]:
                for _ in range(GC_CALLS):
                    bench.create()
                if mode == "on":
                    bench.fg.flush(timeout_s=60)
            held.clear()
    flusher.submit = real_submit  # type: ignore[method-assign]
    bench.tracked(False)
    base = statistics.median(per_call["off"])
    where = "one core" if args.one_cpu else f"{len(os.sched_getaffinity(0))} cores"
    print(f"The calling thread's CPU per create (median of {ROUNDS} rounds of {CALLS:,}, {where})")
    for mode in modes:
        median = statistics.median(per_call[mode])
        print(f"  {mode:6s} {median:8.1f} µs  {median - base:+6.1f} µs")
    print(f"The collector's work ({GC_CALLS:,} creates per mode): collections per 1,000, objects examined per create")
    for mode, count in counts.items():
        seen = count.seen
        per = 1000 / GC_CALLS
        print(
            f"  {mode:6s} {seen['caller'] * per:5.1f} on the calling thread, {seen['others'] * per:5.1f} on others;"
            f" {seen['objects'] / GC_CALLS:6.2f} objects"
        )


if __name__ == "__main__":
    main()
