"""How long ``fluxgate report`` takes on a generated store of a million events.

Run it with ``python benchmarks/bench_report.py [--events N] [--db PATH]``.
The store is written straight into the schema with ``executemany`` (the sink's
per-event path would take minutes), in a temporary directory unless ``--db``
names a file, which is then kept for reuse. Every report is timed on a fresh
connection; the figures are printed, nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

from fluxgate import _report
from fluxgate._report.html import render
from fluxgate._store import COLUMNS, TABLE, ensure_schema

_DAY_MS = 86_400_000
_MODELS = (
    ("claude-sonnet-4-6", Decimal(3), Decimal(15)),
    ("claude-haiku-4-5-20251001", Decimal(1), Decimal(5)),
    ("claude-opus-4-6", Decimal(5), Decimal(25)),
    ("my-finetune", None, None),
)
_FEATURES = ("summarize", "chat", "search", "classify", "extract", "translate", "draft", "review")
_STATUSES = ("SUCCESS",) * 90 + ("MAX_TOKENS",) * 4 + ("ERROR",) * 4 + ("CONTENT_FILTER",) * 2


def _rows(count: int, now_ms: int, seed: int = 7) -> Iterator[tuple[object, ...]]:
    """``count`` plausible events over the last 60 days, oldest first, as tuples in ``COLUMNS`` order.

    Rows are written in time order, as an application writes them, so that
    ``created_at`` and the row order agree (a time filter then reads a
    contiguous slice of the table, as it would in a real store).
    """
    rng = random.Random(seed)
    names = list(COLUMNS)
    at = {name: i for i, name in enumerate(names)}
    users = [
        json.dumps({"id": f"user-{i}", "name": f"User {i}", "email": None, "monthly_revenue": rng.choice((19, 49, 99))})
        for i in range(5000)
    ]
    base: list[object] = [None] * len(names)
    for name, value in (
        ("api", "messages.create"),
        ("platform", "anthropic"),
        ("streamed", 0),
        ("cost_breakdown", "{}"),
        ("price_version", "bench"),
        ("cache_creation_input_tokens", 0),
        ("web_search_requests", 0),
        ("web_fetch_requests", 0),
    ):
        base[at[name]] = value
    step = 60 * _DAY_MS / count
    start = now_ms - 60 * _DAY_MS
    for i in range(count):
        model, rate_in, rate_out = _MODELS[rng.randrange(len(_MODELS))]
        inp, out, read = rng.randrange(100, 8000), rng.randrange(10, 2000), rng.choice((0, 0, 2048, 4096))
        u = rng.randrange(len(users))
        row = base.copy()
        row[at["tracking_id"]] = f"ev-{i}"
        row[at["created_at"]] = int(start + i * step)
        row[at["status"]] = _STATUSES[rng.randrange(len(_STATUSES))]
        row[at["model"]] = model
        row[at["input_tokens"]] = inp
        row[at["output_tokens"]] = out
        row[at["cache_read_input_tokens"]] = read
        row[at["latency_ms"]] = rng.lognormvariate(7, 0.6)
        row[at["feature"]] = _FEATURES[rng.randrange(len(_FEATURES))]
        row[at["user_id"]] = f"user-{u}"
        row[at["user"]] = users[u]
        row[at["session_id"]] = f"s-{rng.randrange(50_000)}"
        if rate_in is None or rate_out is None:
            row[at["cost_status"]] = "unpriced_model"
        else:
            pusd = inp * int(rate_in) * 1_000_000 + out * int(rate_out) * 1_000_000 + read * int(rate_in) * 100_000
            row[at["cost_usd"]] = str(Decimal(pusd).scaleb(-12))
            row[at["cost_pusd"]] = pusd
            row[at["cost_status"]] = "priced"
        yield tuple(row)


def build(path: Path, count: int, now_ms: int) -> None:
    """Fill ``path`` with ``count`` generated events."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    ensure_schema(conn)
    insert = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    with conn:
        conn.executemany(insert, _rows(count, now_ms))
    conn.close()


def _timed(label: str, fn: Callable[[], object]) -> float:
    """Run ``fn`` once; print and return its wall time (CPU time too: the machine may be shared)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    took = time.perf_counter() - wall
    print(f"{label:<44} {took:6.2f} s   (cpu {time.process_time() - cpu:5.2f} s)")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="keep the store here (reused if it exists)")
    args = parser.parse_args()
    now_ms = time.time_ns() // 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.db"
        if not path.exists():
            _timed(f"generate {args.events:,} events", lambda: build(path, args.events, now_ms))
        conn = _report.connect(path)
        week = _report.Filters(since_ms=now_ms - 7 * _DAY_MS)
        for group in ("feature", "user", "day"):
            _timed(f"report --by {group}", lambda g=group: _report.report(conn, group_by=(g,)))  # type: ignore[misc]
        _timed("report --by feature --since 7d", lambda: _report.report(conn, filters=week))
        _timed("report --by model --sort p95", lambda: _report.report(conn, group_by=("model",), sort="p95"))
        _timed("waste", lambda: _report.waste(conn))
        _timed("cache efficiency", lambda: _report.cache_efficiency(conn))
        _timed("unit economics (30 days)", lambda: _report.economics(conn, threshold=Decimal("0.2")))
        conn.close()
        threshold = Decimal("0.2")
        terminal = _timed(
            "fluxgate report (all sections, in parallel)",
            lambda: _report.overview(path, threshold=threshold, charts=False),
        )
        page = _timed(
            "fluxgate report --html (charts too)",
            lambda: render(_report.overview(path, threshold=threshold)),
        )
        print(f"{args.events:,} events: terminal report {terminal:.2f} s, HTML report {page:.2f} s")


if __name__ == "__main__":
    main()
