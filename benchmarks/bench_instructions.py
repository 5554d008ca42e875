"""What tracking costs in CPU instructions, counted by valgrind: figures that do not move with a busy machine.

Timings on a small VM move by 10 to 20 % from run to run, more than most changes to one piece of
fluxgate. Instructions counted by callgrind move far less: the untracked create and the caller's
own work repeat within about 2,000 instructions (0.1 %); what the background threads do while the
caller runs depends on how valgrind interleaves them, so the whole-process figure moves by about
10 %. Each figure is the difference between two runs of N and N + 1,000 calls (so start-up and
imports cancel out), divided by 1,000:

  create   instructions added to one `messages.create` (canned transport, default settings, the
           default SQLite store): on the caller's thread (and that thread's own work, with the
           events let go at the queue), and in the whole process (the flusher's and the store's
           threads included, flush() inside the count).
  wrapper  instructions of the request wrapper alone (route, Call, facts, summary, enqueue), the
           SDK's part a stub, over 20,000 calls: the same to the instruction on every run, so
           the figure to compare a change to the caller's path by.
  flusher  instructions per call's facts priced and written to SQLite (the sink's write alone),
           once the sink has written before (its INSERT statements prepared), over 4,000 calls.
           The facts are made in the same process (what a tracked call makes, counted above on
           the caller's thread): a run that makes them and writes nothing is subtracted.
  requests with --requests, the flusher's figure where each call is a request's own scope (a
           new `track_context` and `AiEventUser` per call, among 50 users who come back): what a
           web application with a scope per request costs the flusher (the bench's calls share one).
  streams  with --streams, (c): what tracking adds to the caller's thread per stream event, from
           streams of 220 and of 20 text deltas, tracked and not (100 of each). Wall-clock (c) is
           a few per cent of what the SDK spends per event, less than a noisy VM's spread.
  cache    with --cache, the caller's own work (events let go at the queue) in cache misses,
           counted by cachegrind on a model of this VM's core: 32 KiB L1s and a 512 KiB L2, 8-way,
           64-byte lines. An untracked create touches more than the L2 holds, so whatever
           fluxgate touches (its code, its objects, the interpreter's C code for them) is gone
           again by the next call: each line costs a miss per call. The cycle estimate weighs
           them as KCachegrind does (instructions + 10 per L1 miss + 100 per L2 miss); its ratio
           is close to what the calling thread's CPU shows in the VM's fast phase, where the
           instructions' is not (RESULTS.md, twenty-fourth pass).

    python benchmarks/bench_instructions.py            # needs valgrind; about eight minutes
    python benchmarks/bench_instructions.py --streams  # and (c): about ten minutes more
    python benchmarks/bench_instructions.py --requests # and a scope per call: about four minutes more
    python benchmarks/bench_instructions.py --cache    # and the cache misses: about six minutes more

Without valgrind it says so and exits 0 (`make bench` runs it when it is there).
"""

from __future__ import annotations

import functools
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CALLS = 1000
#: Streams per count of (c): a stream of 220 deltas counts for many creates.
STREAM_CALLS = 100


def _calls(count: int, mode: str, what: str = "create") -> None:
    """The child: ``count`` calls on the canned transport, then flush.

    ``mode``: ``off`` (untracked), ``on`` (tracked, default settings), or ``alone``
    (tracked, each event let go at the queue: the caller's own work, without the
    background threads taking turns with it). ``what``: ``create``, or ``short`` or
    ``long``: a ``create(stream=True)`` read to its end, of 20 or 220 text deltas.
    """
    sys.path.insert(0, str(HERE))
    import bench_overhead

    from fluxgate import track_context

    bench = bench_overhead.Bench(Path(tempfile.mkdtemp()) / "calls.db")
    bench.tracked(mode != "off")
    if mode == "alone":
        bench.fg._flusher.submit = lambda _event: True  # type: ignore[method-assign]
    with track_context(feature="bench", user="u1", step="s"):
        # Warm: imports, caches, the store's schema, and its INSERT statements. A write
        # takes statements of 128 rows and powers of two below (each prepared once per
        # process, up to 10,000,000 instructions); which sizes a run's writes need depends
        # on how valgrind interleaves the threads, so a preparation landed in one run of
        # the pair and not the other (9,000 per call in the whole-process figure). One
        # write of 255 rows prepares all eight.
        for _ in range(250):
            bench.create()
        bench.fg.flush(timeout_s=60)
        if mode == "on":
            import bench_flusher

            for sink in bench.fg.sinks:
                sink.write(bench_flusher.pending_events(255))
        call = bench.create if what == "create" else functools.partial(bench.stream, long=what == "long")
        for _ in range(5):
            call()
        # What is alive now (anthropic, pydantic, their caches) leaves the collector's
        # generations: a full collection of that heap landing in one run but not the
        # other moved the per-call figure by 10,000 instructions from run to run.
        gc.collect()
        gc.freeze()
        for _ in range(count):
            call()
        bench.fg.flush(timeout_s=60)
    bench.tracked(False)


def _wrapper(count: int) -> None:
    """The child: ``count`` passes through the request wrapper alone, the SDK's part a stub returning a message."""
    sys.path.insert(0, str(HERE))
    import bench_overhead

    from fluxgate import track_context
    from fluxgate._instrument import patches

    bench = bench_overhead.Bench(Path(tempfile.mkdtemp()) / "calls.db")
    bench.tracked(True)
    bench.fg._flusher.submit = lambda _event: True  # type: ignore[method-assign]
    sdk, args, kwargs = bench_overhead.stubbed_request(bench, bench.create())
    with track_context(feature="bench", user="u1", step="s"):
        for _ in range(count):
            patches._request(sdk, bench.client, args, kwargs)
    bench.tracked(False)


def _writes(count: int, mode: str, scopes: str = "one") -> None:
    """The child: ``count`` calls' facts priced and written by the SQLite sink, in writes of 1,000.

    ``mode``: ``write``, or ``make`` (the same facts made, and let go unwritten). ``scopes``:
    ``one`` (each write's calls share one scope), or ``requests`` (each call its own).
    """
    from fluxgate import AiEventUser  # first: bench_flusher puts this checkout first on sys.path
    from fluxgate._models import ContextFrame
    from fluxgate.sinks import SQLiteSink

    sys.path.insert(0, str(HERE))
    import bench_flusher

    def calls(number: int, first: int) -> list[Any]:
        made = bench_flusher.pending_events(number)
        if scopes == "requests":
            for index, call in enumerate(made, first):
                user = AiEventUser(f"u{index % 50}", name="Ada", monthly_revenue=49.0)
                call.context = ContextFrame.build(feature="summarize", user=user, session_id=f"s{index}")
        return made

    sink = SQLiteSink(Path(tempfile.mkdtemp()) / "writes.db")
    sink.write(calls(10, 0))
    gc.collect()  # as in _calls: a full collection of the warm heap in one run and not the other
    gc.freeze()
    for index in range(count // 1000):
        batch = calls(1000, 1000 * index)
        if mode == "write":
            sink.write(batch)
    sink.close()


def _count(args: list[str]) -> tuple[int, int]:
    """(main thread, all threads) instructions of one child run under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out}", *args],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        totals = {}
        for path in Path(tmp).glob("callgrind.out-*"):
            match = re.search(r"^totals:\s+(\d+)", path.read_text(errors="replace"), re.MULTILINE)
            totals[path.name] = int(match.group(1)) if match else 0
        main = totals.get("callgrind.out-01", 0)
        return main, sum(totals.values())


#: The core cachegrind models for --cache (size, ways, line): this VM's AMD EPYC (Zen 2) core.
_L1 = "32768,8,64"
_L2 = "524288,8,64"
#: Cachegrind's counts kept: instructions, L1 misses (instructions, data read, data written), L2 misses.
_CACHE_EVENTS = ("Ir", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw")


def _cache_count(args: list[str]) -> dict[str, int]:
    """Instructions and cache misses of one child run under cachegrind (all threads)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cachegrind.out"
        caches = [f"--I1={_L1}", f"--D1={_L1}", f"--LL={_L2}"]
        subprocess.run(
            ["valgrind", "--tool=cachegrind", "--cache-sim=yes", *caches, f"--cachegrind-out-file={out}", *args],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        text = out.read_text(errors="replace")
        names = re.search(r"^events:(.*)$", text, re.MULTILINE)
        totals = re.search(r"^summary:(.*)$", text, re.MULTILINE)
        if names is None or totals is None:
            raise RuntimeError(f"cachegrind wrote no totals for {' '.join(args[1:])}")
        return dict(zip(names.group(1).split(), map(int, totals.group(1).split()), strict=False))


def _cache_per_call(mode: str) -> dict[str, float]:
    """Cachegrind's counts per create in ``mode`` (``calls`` runs of 200 and 1,200 creates)."""
    base = [sys.executable, __file__, "calls"]
    small = _cache_count([*base, "200", mode])
    large = _cache_count([*base, str(200 + CALLS), mode])
    return {name: (large.get(name, 0) - small.get(name, 0)) / CALLS for name in _CACHE_EVENTS}


def _cache_line(label: str, counts: dict[str, float], sign: str = "") -> tuple[str, float]:
    """One row of the --cache table, and its cycle estimate."""
    l1 = counts["I1mr"] + counts["D1mr"] + counts["D1mw"]
    l2 = counts["ILmr"] + counts["DLmr"] + counts["DLmw"]
    cycles = counts["Ir"] + 10 * l1 + 100 * l2
    row = f"  {label:<28}{counts['Ir']:>{sign}14,.0f}{l1:>{sign}11,.0f}{l2:>{sign}11,.0f}{cycles:>{sign}16,.0f}"
    return row, cycles


def _print_cache() -> None:
    """The --cache table: an untracked create's counts, and what the caller's own work adds to them."""
    plain = _cache_per_call("off")
    alone = _cache_per_call("alone")
    added = {name: alone[name] - plain[name] for name in _CACHE_EVENTS}
    print("Cache misses (cachegrind: 32 KiB L1s, 512 KiB L2), per create; the caller's own work")
    print(f"  {'':<28}{'instructions':>14}{'L1 misses':>11}{'L2 misses':>11}{'cycles (est.)':>16}")
    row, base = _cache_line("untracked", plain)
    print(row)
    row, extra = _cache_line("added (queue alone)", added, "+")
    print(f"{row}  ({(base + extra) / base:.3f})")


def _per_call(kind: str, *extra: str, first: int = 200, calls: int = CALLS) -> tuple[float, float]:
    base = [sys.executable, __file__, kind, *extra]
    small = _count([*base[:3], str(first), *extra])
    large = _count([*base[:3], str(first + calls), *extra])
    return (large[0] - small[0]) / calls, (large[1] - small[1]) / calls


def main(*, streams: bool = False, requests: bool = False, cache: bool = False) -> None:
    if shutil.which("valgrind") is None:
        print("bench_instructions: valgrind is not installed; skipped")
        return
    plain_main, plain_all = _per_call("calls", "off")
    tracked_main, tracked_all = _per_call("calls", "on")
    alone_main, _ = _per_call("calls", "alone")
    wrapper, _ = _per_call("wrapper", first=0, calls=20 * CALLS)
    # Both runs write once first: SQLite prepares an INSERT of each size once, not per write.
    # Four writes, not one: a WAL checkpoint lands in some writes and not in others.
    _, written = _per_call("writes", "write", first=CALLS + 200, calls=4 * CALLS)
    _, made = _per_call("writes", "make", first=CALLS + 200, calls=4 * CALLS)
    flusher = written - made
    if requests:
        _, written = _per_call("writes", "write", "requests", first=CALLS + 200, calls=4 * CALLS)
        _, made = _per_call("writes", "make", "requests", first=CALLS + 200, calls=4 * CALLS)
        per_request = written - made
    # (c) on the caller's thread, with --streams (about ten minutes more): long streams against
    # short ones, tracked (events let go at the queue: the flusher's work is per call, not per
    # event) and not; 200 deltas between them.
    streamed = {
        (mode, what): _per_call("calls", mode, what, first=20, calls=STREAM_CALLS)[0]
        for mode in ("off", "alone")
        for what in ("short", "long")
        if streams
    }
    print(f"Instructions (callgrind), per call; Python {sys.version.split()[0]}")
    print(f"  create, untracked                     {plain_main:>10,.0f}")
    caller, process = tracked_main - plain_main, tracked_all - plain_all
    print(f"  added on the caller's thread          {caller:>+10,.0f}  ({tracked_main / plain_main:.3f})")
    alone = alone_main - plain_main
    print(f"    of which its own work (queue alone)  {alone:>+10,.0f}  ({alone_main / plain_main:.3f})")
    print(f"    the request wrapper by itself       {wrapper:>+10,.0f}")
    print(f"  added in the whole process            {process:>+10,.0f}  ({tracked_all / plain_all:.3f})")
    print(f"  flusher: price and write one call     {flusher:>10,.0f}")
    if requests:
        print(f"    the same, a request's scope per call {per_request:>9,.0f}")
    if streamed:
        added = {what: streamed["alone", what] - streamed["off", what] for what in ("short", "long")}
        per_event = (added["long"] - added["short"]) / 200
        untracked = (streamed["off", "long"] - streamed["off", "short"]) / 200
        print(f"  added per stream event (caller)       {per_event:>+10,.0f}  (of {untracked:,.0f} untracked)")
    if cache:
        _print_cache()


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "calls":
        _calls(int(sys.argv[2]), *sys.argv[3:5])
    elif len(sys.argv) > 2 and sys.argv[1] == "wrapper":
        _wrapper(int(sys.argv[2]))
    elif len(sys.argv) > 2 and sys.argv[1] == "writes":
        _writes(int(sys.argv[2]), *sys.argv[3:5])
    else:
        main(streams="--streams" in sys.argv, requests="--requests" in sys.argv, cache="--cache" in sys.argv)
