"""Microseconds per ``PriceTable.price()`` call: a timing script, not a test.

Run ``python -m tests.pricing.bench_price`` from the repository root. It prices
a few typical usages (plain, cached with a TTL split, batch on a regional id,
beta iterations) on the shipped table and prints the best of several rounds,
in thread CPU time so that other processes on the machine do not count.
"""

from __future__ import annotations

import sys
import time
import timeit

from fluxgate._models import Iteration, Usage
from fluxgate._pricing import default_table

NOW = 1_795_000_000_000  # 2026-11-18, a fixed moment so effective dates don't drift

CASES = {
    "plain": ("claude-sonnet-4-6", Usage(input_tokens=1234, output_tokens=567), {}),
    "cached": (
        "claude-opus-4-6",
        Usage(
            input_tokens=18,
            output_tokens=431,
            cache_creation_input_tokens=3000,
            cache_creation_5m_input_tokens=2000,
            cache_creation_1h_input_tokens=1000,
            cache_read_input_tokens=55_096,
        ),
        {},
    ),
    "batch+regional": (
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        Usage(input_tokens=4000, output_tokens=900, cache_read_input_tokens=1200),
        {"batch": True},
    ),
    "iterations": (
        "claude-sonnet-4-6",
        Usage(
            input_tokens=229,
            output_tokens=5,
            iterations=(
                Iteration(type="compaction", input_tokens=100, output_tokens=131, cache_creation_input_tokens=55096),
                Iteration(type="message", input_tokens=229, output_tokens=5),
            ),
        ),
        {},
    ),
}


def main() -> None:
    table = default_table()
    number = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    for name, (model, usage, kwargs) in CASES.items():
        table.price(model, usage, at_ms=NOW, **kwargs)  # warm the resolution cache
        timer = timeit.Timer(lambda: table.price(model, usage, at_ms=NOW, **kwargs), timer=time.thread_time)  # noqa: B023
        best = min(timer.repeat(number=number, repeat=9))
        print(f"{name:16} {best / number * 1e6:6.2f} µs per price()")


if __name__ == "__main__":
    main()
