"""``make bench`` sets each figure beside the previous saved run's, so a regression shows."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

SAVED = """\
# Benchmark results

## Twenty-third pass

Analysis by hand, with a table of its own:

| measure | untracked | added by fluxgate | ratio / target |
|---|---|---|---|
| (a) create, caller's thread CPU | 1.0 µs | +99.0 µs | 9.999 |

## Runs (newest first)

### 2026-12-05 04:18 UTC, 2 cores, x86_64, 9 rounds x 1000 calls, default settings

| measure                         | untracked | added by fluxgate | ratio / target                  |
|---------------------------------|-----------|-------------------|---------------------------------|
| (a) create, caller's thread CPU | 319.2 µs  | +6.1 µs           | 1.019 (target ≤ 1.015, ≤ +5 µs) |
| (c) per stream event, caller's thread |     | +0.10 µs          | target ≤ +0.3 µs                |

### 2026-12-04 20:36 UTC, 2 cores, x86_64, 9 rounds x 1000 calls, default settings

| measure                         | untracked | added by fluxgate | ratio / target                  |
|---------------------------------|-----------|-------------------|---------------------------------|
| (a) create, caller's thread CPU | 724.6 µs  | +27.8 µs          | 1.038 (target ≤ 1.015, ≤ +5 µs) |
"""


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module("bench_overhead")
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_the_newest_saved_run_is_the_previous_one(bench: ModuleType) -> None:
    heading, figures = bench.previous_run(SAVED)
    assert heading.startswith("2026-12-05 04:18 UTC")
    assert figures == {
        "(a) create, caller's thread CPU": ("+6.1 µs", "1.019"),
        "(c) per stream event, caller's thread": ("+0.10 µs", ""),
    }


def test_each_figure_is_set_beside_the_previous_runs(bench: ModuleType) -> None:
    rows = [
        ("(a) create, caller's thread CPU", "320.0 µs", "+4.8 µs", "1.015 (target ≤ 1.015, ≤ +5 µs)"),
        ("(d) flusher → SQLite, priced", "", "120,000/s", "target ≥ 100,000"),
    ]
    shown = bench.compared(rows, *bench.previous_run(SAVED))
    assert "Against the previous saved run (2026-12-05 04:18 UTC" in shown
    lines = shown.splitlines()
    assert [cell.strip() for cell in lines[-2].strip("|").split("|")] == [
        "(a) create, caller's thread CPU",
        "+4.8 µs",
        "1.015",
        "+6.1 µs",
        "1.019",
    ]
    assert [cell.strip() for cell in lines[-1].strip("|").split("|")] == [
        "(d) flusher → SQLite, priced",
        "120,000/s",
        "",
        "-",
        "-",
    ]


def test_nothing_to_compare_without_a_saved_run(bench: ModuleType) -> None:
    assert bench.previous_run("# Benchmark results\n\nNo run kept yet.\n") is None


def test_the_repositorys_results_keep_a_run_to_compare_with(bench: ModuleType) -> None:
    found = bench.previous_run((BENCHMARKS / "RESULTS.md").read_text())
    assert found is not None
    heading, figures = found
    assert "UTC" in heading
    assert "(a) create, caller's thread CPU" in figures
