"""The time fluxgate adds to a tracked call, against the same call untracked.

Both run on the in-process fake transport (so the network does not drown the
difference), interleaved round by round in one process; the median of the
per-round differences is reported, for non-streaming and streaming calls, as
wall time and as CPU time of the calling thread (which a virtual machine's
stolen time disturbs less, and which leaves out the flusher's own thread).

    make bench            # or: python benchmarks/bench_overhead.py --rounds 15 --calls 400
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import fluxgate
from fluxgate import CostEvent, track_context
from fluxgate.testing import FakeAnthropicAPI, FakeReply, FakeRequest, sse_body

MESSAGES = [{"role": "user", "content": "Summarize the attached ticket."}]
USAGE = {"input_tokens": 1200, "output_tokens": 300, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 800}
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
STREAM = sse_body(
    [
        {"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *[
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "word "}}
            for _ in range(20)
        ],
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 300}},
        {"type": "message_stop"},
    ]
)


class CountingSink:
    """Delivery without I/O, so the number is fluxgate's own work."""

    def __init__(self) -> None:
        self.count = 0

    def write(self, batch: Sequence[CostEvent]) -> None:
        self.count += len(batch)

    def close(self) -> None:
        pass


def canned(request: FakeRequest) -> FakeReply:
    body = request.body if isinstance(request.body, dict) else {}
    return FakeReply(sse=STREAM) if body.get("stream") else FakeReply(json_body=MESSAGE)


def per_call_us(call: Callable[[], Any], calls: int) -> tuple[float, float]:
    """(wall, CPU of this thread) per call, in µs. The flusher's work runs on its own thread."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(calls):
        call()
    return (time.perf_counter() - wall) / calls * 1e6, (time.thread_time() - cpu) / calls * 1e6


def measure(name: str, call: Callable[[], Any], rounds: int, calls: int) -> tuple[float, float]:
    """Interleave untracked and tracked rounds; report the median of the paired differences."""
    sink = CountingSink()
    wall_base, wall_diff, cpu_base, cpu_diff = [], [], [], []
    for _ in range(5):  # warm up both paths
        call()
    for _ in range(rounds):
        fluxgate.shutdown()
        untracked = per_call_us(call, calls)
        fluxgate.init(sinks=[sink], flush_interval_s=0.5, max_batch_size=500)
        with track_context(feature="bench", user="u1", step="s"):
            tracked = per_call_us(call, calls)
        fluxgate.flush(timeout_s=30)
        wall_base.append(untracked[0])
        wall_diff.append(tracked[0] - untracked[0])
        cpu_base.append(untracked[1])
        cpu_diff.append(tracked[1] - untracked[1])
    fluxgate.shutdown()
    base, added = statistics.median(wall_base), statistics.median(wall_diff)
    cpu, cpu_added = statistics.median(cpu_base), statistics.median(cpu_diff)
    print(
        f"{name:<16} untracked {base:7.1f} µs   added {added:6.1f} µs (ratio {(base + added) / base:5.3f})   "
        f"caller-thread CPU: untracked {cpu:7.1f} µs, added {cpu_added:6.1f} µs (ratio {(cpu + cpu_added) / cpu:5.3f})"
        f"   [{sink.count} events]"
    )
    return added, (base + added) / base


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args(argv)

    client = FakeAnthropicAPI(responder=canned).client()

    def create() -> Any:
        return client.messages.create(model="claude-sonnet-4-6", max_tokens=512, messages=MESSAGES)

    def stream() -> None:
        for _ in client.messages.create(model="claude-sonnet-4-6", max_tokens=512, messages=MESSAGES, stream=True):
            pass

    print(
        f"python {sys.version.split()[0]}, {args.rounds} interleaved rounds x {args.calls} calls; "
        "medians of per-round differences\n"
    )
    measure("messages.create", create, args.rounds, args.calls)
    measure("stream=True", stream, args.rounds, args.calls)
    print("\nThe untracked time is the anthropic SDK over an in-process transport; a real call adds network time.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
