"""A report as data: JSON-ready objects and CSV rows.

Money and ratios are exact decimal strings written out in full (``"0.0000001"``,
never ``"1E-7"`` or a float), so a script reads the same figure the report
summed. CSV text cells that a spreadsheet would run as a formula are
neutralised (see :func:`~.format.csv_cell`); numbers stay numbers.
"""

from __future__ import annotations

import csv
from datetime import datetime, timezone
from decimal import Decimal
from typing import IO, Any

from .format import csv_cell, decimal_text
from .records import CacheEfficiency, Economics, Report, Stats, Waste

__all__ = ["STAT_FIELDS", "cache_json", "economics_json", "report_json", "stats_json", "waste_json", "write_csv"]


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value: Decimal | None) -> str | None:
    return None if value is None else decimal_text(value)


#: The columns of every group, in JSON and CSV.
STAT_FIELDS = (
    "calls",
    "cost_usd",
    "unpriced_calls",
    "aborted_calls",
    "estimated_calls",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "failed_calls",
    "error_rate",
    "p50_latency_ms",
    "p95_latency_ms",
)


def stats_json(stats: Stats) -> dict[str, Any]:
    """A ``Stats`` as JSON-ready data; money and the error rate as exact decimal strings."""
    out: dict[str, Any] = {}
    for name in STAT_FIELDS:
        value = stats.exact_error_rate if name == "error_rate" else getattr(stats, name)
        out[name] = decimal_text(value) if isinstance(value, Decimal) else value
    out["first"], out["last"] = _iso(stats.first_ms), _iso(stats.last_ms)
    return out


def report_json(rep: Report) -> dict[str, Any]:
    """A ``Report`` as JSON-ready data: each row names its groups."""
    f = rep.filters
    return {
        "group_by": list(rep.group_by),
        "sort": rep.sort,
        "filters": {
            "since": _iso(f.since_ms),
            "until": _iso(f.until_ms),
            "features": list(f.features),
            "users": list(f.users),
            "statuses": list(f.statuses),
            "models": list(f.models),
        },
        "total_groups": rep.total_groups,
        "rows": [dict(zip(rep.group_by, row.key, strict=True)) | stats_json(row) for row in rep.rows],
        "totals": stats_json(rep.totals),
    }


def waste_json(w: Waste) -> dict[str, Any]:
    """A ``Waste`` as JSON-ready data."""
    kinds = (("max_tokens", w.max_tokens), ("refusals", w.refusals), ("aborted", w.aborted), ("failed", w.failed))
    out: dict[str, Any] = {
        kind: {"calls": s.calls, "cost_usd": decimal_text(s.cost_usd), "unpriced_calls": s.unpriced_calls}
        for kind, s in (*kinds, ("all", w.total))
    }
    out["wasted_usd"] = decimal_text(w.wasted_usd)
    out["share"] = decimal_text(w.exact_share)
    return out


def cache_json(c: CacheEfficiency) -> dict[str, Any]:
    """A ``CacheEfficiency`` as JSON-ready data."""
    return {
        "saved_usd": decimal_text(c.saved_usd),
        "write_cost_usd": decimal_text(c.write_cost_usd),
        "write_premium_usd": decimal_text(c.write_premium_usd),
        "net_usd": decimal_text(c.net_usd),
        "hit_rate": decimal_text(c.exact_hit_rate),
        "read_tokens": c.read_tokens,
        "write_tokens": c.write_tokens,
        "unpriced_read_tokens": c.unpriced_read_tokens,
        "unpriced_write_tokens": c.unpriced_write_tokens,
        "models": [
            {
                "model": m.model,
                "priced": m.priced,
                "calls": m.calls,
                "read_tokens": m.read_tokens,
                "write_tokens": m.write_tokens,
                "saved_usd": decimal_text(m.saved_usd),
                "write_cost_usd": decimal_text(m.write_cost_usd),
                "write_premium_usd": decimal_text(m.write_premium_usd),
            }
            for m in c.models
        ],
    }


def economics_json(e: Economics) -> dict[str, Any]:
    """An ``Economics`` as JSON-ready data; money and ratios as decimal strings."""
    return {
        "days": e.days,
        "since": _iso(e.since_ms),
        "until": _iso(e.until_ms),
        "threshold": _text(e.threshold),
        "spend_usd": decimal_text(e.spend_usd),
        "revenue": decimal_text(e.revenue),
        "ratio": _text(e.ratio),
        "users_with_revenue": e.users_with_revenue,
        "alerts": [u.user_id for u in e.alerts],
        "users": [
            {
                "user_id": u.user_id,
                "name": u.name,
                "monthly_revenue": _text(u.monthly_revenue),
                "spend_usd": decimal_text(u.spend_usd),
                "ratio": _text(u.ratio),
                "calls": u.calls,
                "unpriced_calls": u.unpriced_calls,
                "over_threshold": u.over_threshold,
            }
            for u in e.users
        ],
    }


def write_csv(rep: Report, out: IO[str]) -> None:
    """One line per group: the group names, then :data:`STAT_FIELDS`; empty cells for none."""
    writer = csv.writer(out, lineterminator="\n")
    # With "\n" line ends, Python before 3.12 leaves a lone "\r" in a cell unquoted, which breaks the row
    # for every reader; a row holding one is written fully quoted instead.
    quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow([*rep.group_by, *STAT_FIELDS])
    for row in rep.rows:
        data = stats_json(row)
        keys = [csv_cell(k) for k in row.key]
        cells = [*keys, *("" if data[f] is None else data[f] for f in STAT_FIELDS)]
        (quoted if any("\r" in k for k in keys) else writer).writerow(cells)
