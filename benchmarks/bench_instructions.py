"""What tracking costs in CPU instructions, counted by valgrind: figures that do not move with a busy machine.

Timings on a small VM move by 10 to 20 % from run to run, more than most changes to one piece of
fluxgate. Instructions counted by callgrind are the same on every run of the same code, so an A/B
comparison of a change needs one run of each. Two figures, each the difference between two runs
of N and N + 1,000 calls (so start-up and imports cancel out), divided by 1,000:

  create   instructions added to one `messages.create` (canned transport, default settings, the
           default SQLite store): on the caller's thread, and in the whole process (the flusher's
           and the store's threads included, flush() inside the count).
  flusher  instructions per call's facts priced and written to SQLite (the sink's write alone),
           once the sink has written before (its INSERT statements prepared).

    python benchmarks/bench_instructions.py      # needs valgrind; about four minutes

Without valgrind it says so and exits 0 (`make bench` runs it when it is there).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CALLS = 1000


def _calls(count: int, tracked: bool) -> None:
    """The child: ``count`` creates on the canned transport, tracked or not, then flush."""
    sys.path.insert(0, str(HERE))
    import bench_overhead

    from fluxgate import track_context

    bench = bench_overhead.Bench(Path(tempfile.mkdtemp()) / "calls.db")
    bench.tracked(tracked)
    with track_context(feature="bench", user="u1", step="s"):
        for _ in range(50):  # warm: imports, caches, the store's schema
            bench.create()
        bench.fg.flush(timeout_s=60)
        for _ in range(count):
            bench.create()
        bench.fg.flush(timeout_s=60)
    bench.tracked(False)


def _writes(count: int) -> None:
    """The child: ``count`` calls' facts priced and written by the SQLite sink, in writes of 1,000."""
    from fluxgate.sinks import SQLiteSink  # first: bench_flusher puts this checkout first on sys.path

    sys.path.insert(0, str(HERE))
    import bench_flusher

    sink = SQLiteSink(Path(tempfile.mkdtemp()) / "writes.db")
    sink.write(bench_flusher.pending_events(10))
    for _ in range(count // 1000):
        sink.write(bench_flusher.pending_events(1000))
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


def _per_call(kind: str, *extra: str, first: int = 200) -> tuple[float, float]:
    base = [sys.executable, __file__, kind, *extra]
    small = _count([*base[:3], str(first), *extra])
    large = _count([*base[:3], str(first + CALLS), *extra])
    return (large[0] - small[0]) / CALLS, (large[1] - small[1]) / CALLS


def main() -> None:
    if shutil.which("valgrind") is None:
        print("bench_instructions: valgrind is not installed; skipped")
        return
    plain_main, plain_all = _per_call("calls", "off")
    tracked_main, tracked_all = _per_call("calls", "on")
    # Both runs write once first: SQLite prepares an INSERT of each size once, not per write.
    _, flusher = _per_call("writes", first=CALLS + 200)
    print(f"Instructions (callgrind), per call; Python {sys.version.split()[0]}")
    print(f"  create, untracked                     {plain_main:>10,.0f}")
    caller, process = tracked_main - plain_main, tracked_all - plain_all
    print(f"  added on the caller's thread          {caller:>+10,.0f}  ({tracked_main / plain_main:.3f})")
    print(f"  added in the whole process            {process:>+10,.0f}  ({tracked_all / plain_all:.3f})")
    print(f"  flusher: price and write one call     {flusher:>10,.0f}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "calls":
        _calls(int(sys.argv[2]), sys.argv[3] == "on")
    elif len(sys.argv) > 2 and sys.argv[1] == "writes":
        _writes(int(sys.argv[2]))
    else:
        main()
