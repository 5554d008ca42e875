"""PostgreSQL as the store: events per second into it, and what a PostgreSQL budget adds per call.

Not a test: it starts a throwaway server (Debian's postgresql binaries, as the tests do), measures,
and removes it.

    python benchmarks/bench_postgres.py [--events 20000] [--calls 300]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_flusher

import fluxgate
from fluxgate import Budget, track_context
from fluxgate.sinks import PostgresSink
from fluxgate.testing import FakeAnthropicAPI
from tests.postgres.conftest import PostgresServer, find_bindir

HI = [{"role": "user", "content": "Summarize the attached ticket."}]


def per_call_us(client: object, calls: int) -> float:
    began = time.perf_counter()
    with track_context(feature="bench", user="u1"):
        for _ in range(calls):
            client.messages.create(model="claude-sonnet-4-6", max_tokens=512, messages=HI)  # type: ignore[attr-defined]
    return (time.perf_counter() - began) / calls * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    bindir = find_bindir()
    if bindir is None:
        print("no PostgreSQL binaries (apt-get install postgresql)")
        return 1
    root = Path(tempfile.mkdtemp(prefix="fluxgate-pg-bench-"))
    server = PostgresServer(bindir, root)
    try:
        server.init()
        server.start()
        server.setup_roles()
        url = server.url(server.create_database())
        rate, rate_cpu = bench_flusher.rate([PostgresSink(url)], bench_flusher.pending_events(args.events))
        print(f"flusher -> PostgreSQL: {rate:,.0f} events/s ({rate_cpu:,.0f} per CPU second)")

        client = FakeAnthropicAPI().client()
        plain, budgeted = [], []
        for _ in range(args.rounds):
            fluxgate.init(store=url)
            plain.append(per_call_us(client, args.calls))
            fluxgate.init(store=url, budgets=[Budget(1_000_000, per="day")])
            budgeted.append(per_call_us(client, args.calls))
        fluxgate.shutdown()
        base, with_budget = statistics.median(plain), statistics.median(budgeted)
        print(f"tracked call, PostgreSQL store: {base:.0f} µs; with a PostgreSQL budget: {with_budget:.0f} µs")
        print(f"added by the budget (reserve + settle, a round trip each): {with_budget - base:+.0f} µs per call")
    finally:
        if server.running:
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
