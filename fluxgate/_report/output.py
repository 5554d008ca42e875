"""How a report looks: JSON-ready data, CSV rows and terminal tables.

Money goes to JSON and CSV as exact decimal strings. Terminal tables use
``rich`` when it is installed (``pip install fluxgate[report]``) and plain
aligned text otherwise.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import IO, Any

import attrs

from .summary import (
    CacheEfficiency,
    Economics,
    Report,
    Stats,
    Waste,
    format_count,
    format_ms,
    format_share,
    format_time,
    format_usd,
    label,
)

__all__ = ["Printer", "cache_json", "economics_json", "report_json", "stats_json", "waste_json", "write_csv"]


# --- JSON and CSV -------------------------------------------------------------------------


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_STAT_FIELDS = (
    "calls",
    "cost_usd",
    "unpriced_calls",
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
    """A ``Stats`` as JSON-ready data; money as exact decimal strings."""
    out: dict[str, Any] = {}
    for name in _STAT_FIELDS:
        value = getattr(stats, name)
        out[name] = str(value) if isinstance(value, Decimal) else value
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
    out: dict[str, Any] = {
        kind: {"calls": s.calls, "cost_usd": str(s.cost_usd), "unpriced_calls": s.unpriced_calls}
        for kind, s in (("max_tokens", w.max_tokens), ("refusals", w.refusals), ("failed", w.failed), ("all", w.total))
    }
    out["wasted_usd"] = str(w.wasted_usd)
    out["share"] = w.share
    return out


def cache_json(c: CacheEfficiency) -> dict[str, Any]:
    """A ``CacheEfficiency`` as JSON-ready data."""
    return {
        "saved_usd": str(c.saved_usd),
        "write_cost_usd": str(c.write_cost_usd),
        "write_premium_usd": str(c.write_premium_usd),
        "net_usd": str(c.net_usd),
        "hit_rate": c.hit_rate,
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
                "saved_usd": str(m.saved_usd),
                "write_cost_usd": str(m.write_cost_usd),
                "write_premium_usd": str(m.write_premium_usd),
            }
            for m in c.models
        ],
    }


def economics_json(e: Economics) -> dict[str, Any]:
    """An ``Economics`` as JSON-ready data; ratios as decimal strings."""

    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "days": e.days,
        "since": _iso(e.since_ms),
        "until": _iso(e.until_ms),
        "threshold": text(e.threshold),
        "spend_usd": str(e.spend_usd),
        "revenue": str(e.revenue),
        "ratio": text(e.ratio),
        "users_with_revenue": e.users_with_revenue,
        "alerts": [u.user_id for u in e.alerts],
        "users": [
            {
                "user_id": u.user_id,
                "name": u.name,
                "monthly_revenue": text(u.monthly_revenue),
                "spend_usd": str(u.spend_usd),
                "ratio": text(u.ratio),
                "calls": u.calls,
                "unpriced_calls": u.unpriced_calls,
                "over_threshold": u.over_threshold,
            }
            for u in e.users
        ],
    }


def write_csv(rep: Report, out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*rep.group_by, *_STAT_FIELDS])
    for row in rep.rows:
        data = stats_json(row)
        keys = ("" if k is None else k for k in row.key)
        writer.writerow([*keys, *("" if data[f] is None else data[f] for f in _STAT_FIELDS)])


# --- terminal tables ----------------------------------------------------------------------


@attrs.frozen
class _Table:
    title: str
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    footer: tuple[str, ...] | None = None
    text_cols: int = 1


class Printer:
    """Sections of tables and notes, with rich when it is installed and plain text otherwise."""

    def __init__(self, out: IO[str], *, use_rich: bool | None = None) -> None:
        self.out = out
        self.console: Any = None
        if use_rich is not False:
            try:
                from rich.console import Console
            except ImportError:
                pass
            else:
                wide = None if out.isatty() else 200
                self.console = Console(file=out, width=wide, highlight=False, emoji=False, markup=False)
                # rich exits with status 1 when its reader goes away; let main() handle it like print() does.
                self.console.on_broken_pipe = _raise_broken_pipe

    def line(self, text: str = "") -> None:
        if self.console is not None:
            self.console.print(text, soft_wrap=True)
        else:
            print(text, file=self.out)

    def table(self, table: _Table) -> None:
        if self.console is not None:
            self._rich(table)
        else:
            self._plain(table)

    def _rich(self, table: _Table) -> None:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        grid = Table(title=table.title, title_justify="left", box=box.SIMPLE_HEAD, show_footer=table.footer is not None)
        for i, name in enumerate(table.head):
            foot = Text(table.footer[i]) if table.footer is not None else Text("")
            grid.add_column(Text(name), footer=foot, justify="left" if i < table.text_cols else "right")
        for row in table.rows:
            grid.add_row(*(Text(cell) for cell in row))
        self.console.print(grid)

    def _plain(self, table: _Table) -> None:
        every = [table.head, *table.rows, *([table.footer] if table.footer is not None else [])]
        widths = [max(len(r[i]) for r in every) for i in range(len(table.head))]

        def fmt(row: Sequence[str]) -> str:
            cells = [
                cell.ljust(widths[i]) if i < table.text_cols else cell.rjust(widths[i]) for i, cell in enumerate(row)
            ]
            return "  ".join(cells).rstrip()

        rule = "  ".join("-" * w for w in widths)
        lines = [table.title, fmt(table.head), rule, *(fmt(r) for r in table.rows)]
        if table.footer is not None:
            lines += [rule, fmt(table.footer)]
        print("\n".join(lines) + "\n", file=self.out)

    # --- the report's sections ---

    def report(self, rep: Report, spent: Waste, cache: CacheEfficiency, econ: Economics, *, store: str) -> None:
        totals = rep.totals
        since = rep.filters.since_ms if rep.filters.since_ms is not None else totals.first_ms
        until = rep.filters.until_ms if rep.filters.until_ms is not None else totals.last_ms
        self.line(f"fluxgate report: {store}, {format_time(since)} to {format_time(until)}, {totals.calls:,} calls")
        self.line()
        head = (*rep.group_by, "calls", "cost", "unknown cost", "input", "output", "reasoning")
        head += ("cache read", "cache write", "errors", "p50 ms", "p95 ms")
        rows = tuple((*(label(k) for k in r.key), *_cells(r)) for r in rep.rows)
        footer = ("total", *[""] * (len(rep.group_by) - 1), *_cells(totals))
        self.table(_Table(f"By {', '.join(rep.group_by)}", head, rows, footer, text_cols=len(rep.group_by)))
        if rep.total_groups > len(rep.rows):
            hidden = rep.total_groups - len(rep.rows)
            self.line(f"{format_count(hidden, 'more group')} not shown (--top {len(rep.rows)}).")
        if totals.unpriced_calls:
            self.line(
                f"{format_count(totals.unpriced_calls, 'call')} of unknown cost (models with no price): "
                "counted apart in the 'unknown cost' column, not as $0."
            )
        self.line()
        self._waste(spent)
        self._cache(cache)
        self._economics(econ)

    def _waste(self, w: Waste) -> None:
        rows = tuple(
            (name, f"{s.calls:,}", format_usd(s.cost_usd), f"{s.unpriced_calls:,}")
            for name, s in (("cut off at max_tokens", w.max_tokens), ("refused", w.refusals), ("failed", w.failed))
        )
        head = ("waste", "calls", "cost", "unknown cost")
        self.table(_Table("Waste", head, rows))
        self.line(
            f"{format_usd(w.wasted_usd)} of {format_usd(w.total.cost_usd)} ({format_share(w.share)}) "
            "bought no usable answer."
        )
        self.line()

    def _cache(self, c: CacheEfficiency) -> None:
        models = [m for m in c.models if m.read_tokens or m.write_tokens]
        if not models:
            self.line("Cache: no prompt caching in this range.")
            self.line()
            return
        rows = tuple(
            (
                label(m.model),
                f"{m.read_tokens:,}",
                format_usd(m.saved_usd) if m.priced else "unknown",
                f"{m.write_tokens:,}",
                format_usd(m.write_cost_usd) if m.priced else "unknown",
                format_usd(m.write_premium_usd) if m.priced else "unknown",
            )
            for m in models
        )
        head = ("model", "read tokens", "reads saved", "write tokens", "writes cost", "write premium")
        footer = (
            "total",
            f"{c.read_tokens:,}",
            format_usd(c.saved_usd),
            f"{c.write_tokens:,}",
            format_usd(c.write_cost_usd),
            format_usd(c.write_premium_usd),
        )
        self.table(_Table("Cache", head, rows, footer))
        self.line(
            f"Caching saved {format_usd(c.net_usd)} net (reads saved minus the write premium); "
            f"hit rate {format_share(c.hit_rate)} of prompt tokens."
        )
        if c.unpriced_read_tokens or c.unpriced_write_tokens:
            self.line("Models with no price are left out of the dollar figures.")
        self.line()

    def _economics(self, e: Economics, *, shown: int = 10) -> None:
        users = [u for u in e.users if u.monthly_revenue is not None]
        if not users:
            self.line(f"Unit economics: no user with a monthly_revenue made calls in the last {e.days} days.")
            return
        picked = users[:shown] + [u for u in users[shown:] if u.over_threshold]
        rows = tuple(
            (
                u.user_id,
                format_usd(u.monthly_revenue or Decimal(0)),
                format_usd(u.spend_usd),
                format_share(u.ratio),
                f"{u.calls:,}",
                "over" if u.over_threshold else "",
            )
            for u in picked
        )
        head = ("user", "revenue / month", f"AI spend {e.days}d", "ratio", "calls", "alert")
        self.table(_Table(f"Unit economics, last {e.days} days", head, rows))
        self.line(
            f"{format_count(e.users_with_revenue, 'user')} with a known revenue spent {format_usd(e.spend_usd)} "
            f"against {format_usd(e.revenue)} a month ({format_share(e.ratio)})."
        )
        if e.threshold is not None:
            alerts = e.alerts
            names = ", ".join(u.user_id for u in alerts[:10]) + (", ..." if len(alerts) > 10 else "")
            verb = "user spends" if len(alerts) == 1 else "users spend"
            self.line(
                f"{len(alerts):,} {verb} more than {format_share(e.threshold)} of their revenue"
                + (f": {names}" if alerts else ".")
            )


def _raise_broken_pipe() -> None:
    raise BrokenPipeError


def _cells(s: Stats) -> tuple[str, ...]:
    return (
        f"{s.calls:,}",
        format_usd(s.cost_usd),
        f"{s.unpriced_calls:,}",
        f"{s.input_tokens:,}",
        f"{s.output_tokens:,}",
        f"{s.reasoning_tokens:,}",
        f"{s.cache_read_tokens:,}",
        f"{s.cache_write_tokens:,}",
        format_share(s.error_rate),
        format_ms(s.p50_latency_ms),
        format_ms(s.p95_latency_ms),
    )
