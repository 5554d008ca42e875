"""What tracking costs, measured honestly: default settings, the default SQLite store, delivery included.

Tracked and untracked rounds are interleaved in one process on the in-process fake transport (so
the network does not drown the difference); each figure is the median of the per-round differences.

  (a) caller   CPU of the calling thread per call: what the application's own thread pays.
  (b) process  CPU of the whole process per call, flush() inside the timed region: the flusher's
               pricing, row building and SQLite writes count, since in CPython they hold the GIL.
  (c) stream   per stream event: the added cost of 200 more deltas, divided by 200.
  (d) flusher  events per second from the queue into SQLite (default batching).
  (e) memory   RSS growth over N tracked calls, after flush and gc.
  (f) import   `import fluxgate`, wall time, against `import anthropic`; and the quickstart's
               `from fluxgate import track, track_context, AiEventUser`, which loads the models.

    make bench                                   # the whole table, then the previous saved run's beside it
    python benchmarks/bench_overhead.py --quick  # fewer rounds, 20k calls for memory
    python benchmarks/bench_overhead.py --save   # also record this run in benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime as dt
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import fluxgate
from fluxgate import track_context
from fluxgate.testing import sse_body
from fluxgate.testing._fake_wire import http_library

RESULTS = Path(__file__).with_name("RESULTS.md")
MESSAGES = [{"role": "user", "content": "Summarize the attached ticket."}]
#: A usage as the API sends it today (the recordings of Claude Sonnet 4 and later): the cache
#: write's TTL split, the service tier and the inference region come with every response.
USAGE = {
    "input_tokens": 1200,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 800,
    "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
    "output_tokens": 300,
    "service_tier": "standard",
    "inference_geo": "not_available",
}
MESSAGE = {
    "id": "msg_bench",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "A short summary."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": USAGE,
}


def stream_body(deltas: int) -> bytes:
    return sse_body(
        [
            {"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None}},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            *[
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "word "}}
                for _ in range(deltas)
            ],
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 300}},
            {"type": "message_stop"},
        ]
    )


SHORT, LONG = stream_body(20), stream_body(220)


MESSAGE_BYTES = json.dumps(MESSAGE).encode()
JSON_HEADERS = {"content-type": "application/json", "request-id": "req_bench"}
SSE_HEADERS = {"content-type": "text/event-stream", "request-id": "req_bench"}


def canned(request: Any) -> Any:
    """The recorded wire format of a reply, keeping nothing: what the fake remembers is not fluxgate's memory."""
    httpx = http_library()
    body = request.content
    if b'"stream":true' in body or b'"stream": true' in body:
        long = b'"max_tokens":513' in body or b'"max_tokens": 513' in body
        return httpx.Response(200, headers=SSE_HEADERS, content=LONG if long else SHORT)
    return httpx.Response(200, headers=JSON_HEADERS, content=MESSAGE_BYTES)


class Bench:
    """One FluxGate with default settings on a fresh SQLite store, switched on and off between rounds."""

    def __init__(self, store: Path) -> None:
        from fluxgate._lifecycle import start

        self.fg = fluxgate.FluxGate(store=str(store))
        self._start = start
        self.fresh_clients()
        self.loop = asyncio.new_event_loop()

    def fresh_clients(self) -> None:
        """Clients on an in-process transport that answers with canned replies."""
        import anthropic

        httpx = http_library()
        transport = httpx.MockTransport(canned)
        key = "sk-ant-bench"
        self.client = anthropic.Anthropic(api_key=key, max_retries=0, http_client=httpx.Client(transport=transport))
        self.async_client = anthropic.AsyncAnthropic(
            api_key=key, max_retries=0, http_client=httpx.AsyncClient(transport=transport)
        )

    def tracked(self, on: bool) -> None:
        if on:
            self._start(self.fg)
        else:
            fluxgate.uninstrument()
            from fluxgate._fluxgate import set_active

            set_active(None)

    def create(self) -> Any:
        return self.client.messages.create(model="claude-sonnet-4-6", max_tokens=512, messages=MESSAGES)

    def async_create(self) -> Any:
        return self.loop.run_until_complete(
            self.async_client.messages.create(model="claude-sonnet-4-6", max_tokens=512, messages=MESSAGES)
        )

    def stream(self, long: bool = False) -> None:
        for _ in self.client.messages.create(
            model="claude-sonnet-4-6", max_tokens=513 if long else 512, messages=MESSAGES, stream=True
        ):
            pass


def stubbed_request(bench: Bench, message: Any) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    """(the SDK's part, args, kwargs) of one create whose SDK part returns ``message`` at once.

    With them ``patches._request(sdk, bench.client, args, kwargs)`` is the request wrapper's work
    for one call without the SDK's (``bench_split`` times it, ``bench_instructions`` counts it).
    """
    from anthropic._models import FinalRequestOptions

    options = FinalRequestOptions.construct(
        method="post",
        url="/v1/messages",
        json_data={"model": "claude-sonnet-4-6", "max_tokens": 512, "messages": MESSAGES},
        headers={"anthropic-user-profile-id": 1, "anthropic-workspace-id": 2},
    )

    def sdk(*_args: Any, **_kwargs: Any) -> Any:
        return message

    return sdk, (None, options), {"stream": False, "stream_cls": None}


def _round(bench: Bench, call: Callable[[], Any], calls: int, *, tracked: bool) -> tuple[float, float, float]:
    """(wall, caller-thread CPU, process CPU) per call in µs; a tracked round's flush is inside the timing."""
    bench.tracked(tracked)
    gc.collect()
    wall, thread, proc = time.perf_counter(), time.thread_time(), time.process_time()
    if tracked:
        with track_context(feature="bench", user="u1", step="s"):
            for _ in range(calls):
                call()
        thread_cpu = time.thread_time() - thread
        assert bench.fg.flush(timeout_s=60)
    else:
        for _ in range(calls):
            call()
        thread_cpu = time.thread_time() - thread
    return (
        (time.perf_counter() - wall) / calls * 1e6,
        thread_cpu / calls * 1e6,
        (time.process_time() - proc) / calls * 1e6,
    )


def paired(bench: Bench, call: Callable[[], Any], rounds: int, calls: int) -> dict[str, float]:
    """Medians of untracked figures and of the per-round tracked-minus-untracked differences."""
    for _ in range(3):
        call()
    base: list[tuple[float, ...]] = []
    diff: list[tuple[float, ...]] = []
    for _ in range(rounds):
        untracked = _round(bench, call, calls, tracked=False)
        tracked = _round(bench, call, calls, tracked=True)
        base.append(untracked)
        diff.append(tuple(t - u for t, u in zip(tracked, untracked, strict=True)))
    names = ("wall", "caller", "process")
    out = {f"base_{n}": statistics.median(b[i] for b in base) for i, n in enumerate(names)}
    out |= {f"added_{n}": statistics.median(d[i] for d in diff) for i, n in enumerate(names)}
    return out


def flusher_rate(store: Path, events: int) -> tuple[float, float]:
    """Events per wall second and per CPU second, tracked calls' facts from submit() to flush() into SQLite."""
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_flusher  # the same measurement `make bench` runs in full

    from fluxgate.sinks import SQLiteSink

    return bench_flusher.rate([SQLiteSink(store)], bench_flusher.pending_events(events))


def rss_mib() -> float:
    """Resident memory now, after giving freed heap pages back to the OS (glibc keeps them otherwise)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: read RSS as it is
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/status") as status:  # noqa: PTH123 - Linux only, as the VM is
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def memory_growth(store: Path, calls: int, *, tracked: bool = True) -> float:
    """RSS growth in MiB over ``calls`` calls (tracked or not), measured after flush and gc."""
    bench = Bench(store)
    bench.tracked(tracked)
    with track_context(feature="bench", user="u1"):
        for _ in range(2000):
            bench.create()
        assert bench.fg.flush(timeout_s=60)
        gc.collect()
        before = rss_mib()
        for _ in range(calls):
            bench.create()
        assert bench.fg.flush(timeout_s=120)
    gc.collect()
    after = rss_mib()
    fluxgate.shutdown()
    return after - before


def memory_added(calls: int) -> tuple[float, float]:
    """(untracked growth, tracked growth) in MiB, each in a fresh process: RSS is per process."""

    def run(kind: str) -> float:
        done = subprocess.run(
            [sys.executable, __file__, "--memory-only", kind, "--memory-calls", str(calls)],
            check=True,
            capture_output=True,
            text=True,
        )
        return float(done.stdout.split()[-1])

    return run("untracked"), run("tracked")


def import_ms(code: str, runs: int = 7) -> float:
    """Median wall time of a fresh interpreter running ``code`` (an import), minus an empty interpreter."""

    def run(code: str) -> float:
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - began

    empty = statistics.median(run("pass") for _ in range(runs))
    return (statistics.median(run(code) for _ in range(runs)) - empty) * 1000


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return (
        f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


_HEAD = ("measure", "untracked", "added by fluxgate", "ratio / target")


def table(rows: Sequence[tuple[str, ...]], head: tuple[str, ...] = _HEAD) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join([line, rule, *body])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9)
    # Rounds long enough that the flusher's work overlaps the calls, as it does in steady state
    # (the dispatcher wakes for every 500 events): shorter ones would leave it all to flush().
    parser.add_argument("--calls", type=int, default=1000, help="calls per round")
    parser.add_argument("--memory-calls", type=int, default=200_000)
    parser.add_argument("--flusher-events", type=int, default=50_000)
    parser.add_argument("--quick", action="store_true", help="5 rounds, 20k calls for memory, 20k events")
    parser.add_argument("--save", action="store_true", help="record this run in benchmarks/RESULTS.md")
    parser.add_argument("--memory-only", choices=("tracked", "untracked"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_only:
        with tempfile.TemporaryDirectory() as tmp:
            grown = memory_growth(Path(tmp) / "memory.db", args.memory_calls, tracked=args.memory_only == "tracked")
        print(f"{grown:.3f}")
        return 0
    if args.quick:
        args.rounds, args.memory_calls, args.flusher_events = 5, 20_000, 20_000

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench = Bench(root / "bench.db")
        create = paired(bench, bench.create, args.rounds, args.calls)
        acreate = paired(bench, bench.async_create, args.rounds, args.calls)
        short = paired(bench, bench.stream, args.rounds, args.calls)
        long = paired(bench, lambda: bench.stream(long=True), args.rounds, args.calls // 2)
        bench.tracked(False)
        bench.fg.shutdown()
        rate, rate_cpu = flusher_rate(root / "rate.db", args.flusher_events)
        base_grown, grown = memory_added(args.memory_calls)
    per_event = (long["added_caller"] - short["added_caller"]) / 200

    def ratio(d: dict[str, float], kind: str) -> str:
        return f"{(d[f'base_{kind}'] + d[f'added_{kind}']) / d[f'base_{kind}']:.3f}"

    fluxgate_ms, anthropic_ms = import_ms("import fluxgate"), import_ms("import anthropic")
    names_ms = import_ms("from fluxgate import track, track_context, AiEventUser")
    rows = [
        ("(a) create, caller's thread CPU", f"{create['base_caller']:.1f} µs", f"{create['added_caller']:+.1f} µs",
         f"{ratio(create, 'caller')} (target ≤ 1.015, ≤ +5 µs)"),
        ("(a) create, wall", f"{create['base_wall']:.1f} µs", f"{create['added_wall']:+.1f} µs", ratio(create, "wall")),
        ("(a) async create, caller's thread CPU", f"{acreate['base_caller']:.1f} µs",
         f"{acreate['added_caller']:+.1f} µs", f"{ratio(acreate, 'caller')} (target ≤ 1.015, ≤ +5 µs)"),
        ("(b) create, process CPU incl. delivery to SQLite", f"{create['base_process']:.1f} µs",
         f"{create['added_process']:+.1f} µs", f"{ratio(create, 'process')} (target ≤ +15 µs)"),
        ("(b) async create, process CPU incl. delivery", f"{acreate['base_process']:.1f} µs",
         f"{acreate['added_process']:+.1f} µs", f"{ratio(acreate, 'process')} (target ≤ +15 µs)"),
        ("(b) stream=True 20 deltas, process CPU", f"{short['base_process']:.1f} µs",
         f"{short['added_process']:+.1f} µs", ratio(short, "process")),
        ("(c) per stream event, caller's thread", "", f"{per_event:+.2f} µs", "target ≤ +0.3 µs"),
        ("(d) flusher → SQLite, priced", "", f"{rate:,.0f}/s ({rate_cpu:,.0f} per CPU s)", "target ≥ 100,000"),
        (f"(e) RSS growth over {args.memory_calls:,} calls", f"{base_grown:+.1f} MiB", f"{grown - base_grown:+.1f} MiB",
         "target < 2 MiB"),
        ("(f) import fluxgate (vs import anthropic)", f"{anthropic_ms:.0f} ms", f"{fluxgate_ms:.0f} ms",
         "target < 40 ms"),
        ("(f) from fluxgate import track, track_context, AiEventUser", "", f"{names_ms:.0f} ms",
         "the models (attrs) load here"),
    ]  # fmt: skip
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = f"{now}, {machine()}, {args.rounds} rounds x {args.calls} calls, default settings"
    out = f"{head}\n\n{table(rows)}\n"
    print(out)
    previous = previous_run(RESULTS.read_text()) if RESULTS.exists() else None
    if previous is not None:
        print(compared(rows, *previous))
        print(f"\nEvery saved run, and what each figure is made of: {RESULTS}")
    if args.save:
        _save(out)
    return 0


_RUNS = "## Runs (newest first)\n"
#: A saved run: its heading (date and machine), then its table.
_SAVED_RUN = re.compile(r"^### (.+)\n\n((?:\|.*\n)+)", re.MULTILINE)


def previous_run(text: str) -> tuple[str, dict[str, tuple[str, str]]] | None:
    """The newest run ``--save`` kept in ``text`` (RESULTS.md): its heading, and each measure's added figure and ratio.

    None when no run is kept.
    """
    _, found, runs = text.partition(_RUNS)
    run = _SAVED_RUN.search(runs) if found else None
    if run is None:
        return None
    figures: dict[str, tuple[str, str]] = {}
    for line in run.group(2).splitlines()[2:]:  # after the header and its rule
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4:
            measure, _, added, ratio = cells
            figures[measure] = (added, _ratio(ratio))
    return run.group(1), figures


def compared(rows: list[tuple[str, str, str, str]], heading: str, figures: dict[str, tuple[str, str]]) -> str:
    """This run's added figures and ratios beside those of a saved run (``previous_run``), measure by measure."""
    lines: list[tuple[str, ...]] = []
    for measure, _, added, ratio in rows:
        before = figures.get(measure, ("-", "-"))
        lines.append((measure, added, _ratio(ratio), *before))
    head = ("measure", "added (this run)", "ratio", "added (previous)", "ratio")
    return f"Against the previous saved run ({heading}):\n\n{table(lines, head)}"


def _ratio(cell: str) -> str:
    """The ratio in a table's last cell ("1.038 (target ...)" -> "1.038"); "" where it holds only a target or a note."""
    ratio = cell.split(" (target", maxsplit=1)[0]
    return ratio if ratio[:1].isdigit() else ""


def _save(run: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else ""
    marker = _RUNS
    if marker not in text:
        text = "# Benchmark results\n\nWritten by `python benchmarks/bench_overhead.py --save`.\n\n" + marker
    head, _, rest = text.partition(marker)
    RESULTS.write_text(f"{head}{marker}\n### {run}\n{rest}")


if __name__ == "__main__":
    raise SystemExit(main())
