"""Where a tracked create's time goes, thread by thread: a yappi profile of the caller and the flusher.

`bench_overhead.py` says how much tracking adds; this says where. Tracked creates with default
settings on the default SQLite store (``flush()`` inside the profiled region, as in (b)), profiled
with yappi's CPU clock on every thread. For each thread it prints its CPU per create, split by
package (fluxgate, the SDK and its libraries, the standard library; C code such as SQLite's
statements shows as "no profiled function"), then the functions with the most own time in it.

    python benchmarks/bench_profile.py                     # 20,000 creates, 15 functions per thread
    python benchmarks/bench_profile.py --calls 5000 --top 25

The profiler itself slows every Python call several times over, so read the shares and the order,
not the microseconds: code that makes few calls looks cheaper than it is next to code that makes
many. ``bench_instructions.py`` counts instructions without that skew.
Needs yappi (``pip install -e '.[bench]'``; ``make install`` puts it in .venv).
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_overhead

from fluxgate import track_context

REPO = Path(__file__).resolve().parents[1]


def package(stat: Any) -> str:
    """The package a profiled function belongs to: ``fluxgate``, ``anthropic``, ``httpx``, ``stdlib``, ..."""
    path = str(stat.module)
    if "site-packages" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if path.startswith(str(REPO / "fluxgate" / "testing")):
        return "the fake API"  # the bench's transport, not tracking
    if path.startswith(str(REPO / "fluxgate")):
        return "fluxgate"
    if path.startswith(str(REPO)):
        return "benchmarks"
    return "stdlib"


def label(stat: Any) -> str:
    path = Path(stat.module)
    where = path.relative_to(REPO) if path.is_relative_to(REPO) else Path(*path.parts[-2:])
    return f"{stat.name}  {where}:{stat.lineno}"


def profile(calls: int) -> tuple[float, dict[int, tuple[str, float]], list[Any]]:
    """Profile ``calls`` tracked creates and their flush.

    Returns the process's CPU per create without the profiler (s), each
    profiled thread's name and CPU (s) by yappi's id, and every function's stats.
    """
    import yappi

    bench = bench_overhead.Bench(Path(tempfile.mkdtemp()) / "profile.db")
    bench.tracked(True)
    with track_context(feature="bench", user="u1", step="s"):
        for _ in range(500):  # warm: the threads started, the store made, every statement prepared
            bench.create()
        assert bench.fg.flush(timeout_s=60)
        plain = time.process_time()
        for _ in range(1000):
            bench.create()
        assert bench.fg.flush(timeout_s=60)
        plain = (time.process_time() - plain) / 1000
        yappi.set_clock_type("cpu")
        # Builtins stay out: with them yappi puts some of one thread's C calls on another.
        yappi.start(builtins=False, profile_threads=True)
        for _ in range(calls):
            bench.create()
        assert bench.fg.flush(timeout_s=600)
        yappi.stop()
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    threads = {t.id: (names.get(t.tid, t.name), t.ttot) for t in yappi.get_thread_stats()}
    stats = list(yappi.get_func_stats())
    bench.tracked(False)
    return plain, threads, stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000, help="tracked creates to profile")
    parser.add_argument("--top", type=int, default=15, help="functions listed per thread")
    args = parser.parse_args(argv)
    try:
        import yappi  # noqa: F401
    except ImportError:
        print("bench_profile.py needs yappi: pip install -e '.[bench]'", file=sys.stderr)
        return 1

    plain, threads, stats = profile(args.calls)
    per_call = 1e6 / args.calls
    profiled = sum(total for _, total in threads.values()) / args.calls
    print(
        f"yappi (CPU clock), {args.calls:,} tracked creates and their flush, default settings; "
        f"µs per create under the profiler, which ran {profiled / plain:.0f}x slower than without it "
        f"({plain * 1e6:.0f} µs of process CPU per create)"
    )
    for ctx, (name, total) in sorted(threads.items(), key=lambda item: -item[1][1]):
        own = [s for s in stats if s.ctx_id == ctx]
        if total * per_call < 0.05:
            continue
        print(f"\nthread {name}: {total * per_call:.1f} µs per create")
        shares: collections.Counter[str] = collections.Counter()
        for stat in own:
            shares[package(stat)] += stat.tsub
        # What no function's own time holds: C calls outside any profiled frame, and the frames a
        # thread entered before the profiler started (its loop).
        shares["(no profiled function)"] = max(0.0, total - sum(shares.values()))
        split = ", ".join(f"{pkg} {tsub / total:.0%}" for pkg, tsub in shares.most_common() if tsub / total >= 0.005)
        print(f"  own time by package: {split}")
        listed = [("", own)]
        if name == "MainThread":  # the caller: fluxgate's part of it, beside the SDK's
            listed.append(("fluxgate's ", [s for s in own if package(s) == "fluxgate"]))
        for title, chosen in listed:
            print(f"  {title}functions with the most own time:\n  {'own µs':>7} {'calls':>8}  function")
            for stat in sorted(chosen, key=lambda s: -s.tsub)[: args.top]:
                print(f"  {stat.tsub * per_call:7.2f} {stat.ncall / args.calls:8.2f}  {label(stat)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
