"""The report on a terminal: sections of tables and notes that fit the width and cannot be hijacked.

Tables are drawn with ``rich`` when it is installed (``pip install
fluxgate[report]``) and as plain aligned text otherwise. Every string goes
through :func:`~.format.clean` on its way out: a feature called
``"\\x1b[2J"`` prints as that text instead of clearing the screen. Given a
width, tables leave out their least useful columns to fit (and say which),
and notes wrap.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from decimal import Decimal
from typing import IO, Any, Final

import attrs

from .format import clean, format_count, format_ms, format_share, format_time, format_usd, label
from .layout import Step, fit, plain_overhead, rich_overhead
from .records import CacheEfficiency, Economics, Report, Stats, Waste

__all__ = ["Printer"]

#: A width for rich when there is no terminal to fit: wide enough never to squeeze a table.
_UNLIMITED: Final = 10_000
#: What the grouped table gives up first, when it must, to fit the terminal (see ``layout``).
_GROUP_STEPS: Final[tuple[Step, ...]] = (
    "reasoning",
    "cache write",
    "cache read",
    "p50 ms",
    24,
    "output",
    "input",
    "p95 ms",
    "aborted",
    "errors",
    12,
)


@attrs.frozen
class _Table:
    title: str
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    footer: tuple[str, ...] | None = None
    text_cols: int = 1
    steps: tuple[Step, ...] = (16,)


class Printer:
    """Sections of tables and notes, with rich when it is installed and plain text otherwise.

    Args:
        out: Where to print.
        use_rich: ``False`` for plain text even when rich is installed.
        width: The terminal's width in characters; ``None`` for no limit (a pipe or a file).
    """

    def __init__(self, out: IO[str], *, use_rich: bool | None = None, width: int | None = None) -> None:
        self.out = out
        self.width = width
        self.console: Any = None
        if use_rich is not False:
            try:
                from rich.console import Console
            except ImportError:
                pass
            else:
                self.console = Console(file=out, width=width or _UNLIMITED, highlight=False, emoji=False, markup=False)
                # rich exits with status 1 when its reader goes away; let main() handle it like print() does.
                self.console.on_broken_pipe = _raise_broken_pipe

    def line(self, text: str = "") -> None:
        """A note: cleaned, and wrapped to the width when there is one."""
        safe = clean(text)
        if self.width is not None and len(safe) > self.width:
            safe = textwrap.fill(safe, self.width, break_long_words=True, break_on_hyphens=False)
        if self.console is not None:
            from rich.text import Text

            self.console.print(Text(safe), soft_wrap=True)
        else:
            print(safe, file=self.out)

    def table(self, table: _Table) -> None:
        """A table, cleaned and fitted to the width; a note names the columns it had to leave out."""
        head = tuple(clean(h) for h in table.head)
        rows = tuple(tuple(clean(c) for c in r) for r in table.rows)
        footer = None if table.footer is None else tuple(clean(c) for c in table.footer)
        every = [*rows, *([footer] if footer is not None else [])]
        overhead = rich_overhead if self.console is not None else plain_overhead
        shape = fit(head, every, width=self.width, text_cols=table.text_cols, steps=table.steps, overhead=overhead)
        text_cols = sum(1 for i in shape.keep if i < table.text_cols)
        fitted = _Table(
            clean(table.title),
            shape.cells(head),
            tuple(shape.cells(r) for r in rows),
            None if footer is None else shape.cells(footer),
            text_cols=text_cols,
        )
        if self.console is not None:
            self._rich(fitted)
        else:
            self._plain(fitted)
        if shape.dropped:
            self.line(
                f"Left out to fit {self.width} columns: {', '.join(shape.dropped)} "
                "(widen the terminal, or use --format json for every column)."
            )

    def _rich(self, table: _Table) -> None:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        grid = Table(title=table.title, title_justify="left", box=box.SIMPLE_HEAD, show_footer=table.footer is not None)
        for i, name in enumerate(table.head):
            foot = Text(table.footer[i]) if table.footer is not None else Text("")
            grid.add_column(Text(name), footer=foot, justify="left" if i < table.text_cols else "right", no_wrap=True)
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
        """The grouped table with its totals, then waste, cache and unit economics."""
        totals = rep.totals
        since = rep.filters.since_ms if rep.filters.since_ms is not None else totals.first_ms
        until = rep.filters.until_ms if rep.filters.until_ms is not None else totals.last_ms
        self.line(f"fluxgate report: {store}, {format_time(since)} to {format_time(until)}, {totals.calls:,} calls")
        self.line()
        aborted = totals.aborted_calls > 0
        head = (*rep.group_by, "calls", "cost", "unknown cost", "input", "output", "reasoning")
        head += ("cache read", "cache write", *(("aborted",) if aborted else ()), "errors", "p50 ms", "p95 ms")
        rows = tuple((*(label(k) for k in r.key), *_cells(r, aborted=aborted)) for r in rep.rows)
        footer = ("total", *[""] * (len(rep.group_by) - 1), *_cells(totals, aborted=aborted))
        title = f"By {', '.join(rep.group_by)}"
        self.table(_Table(title, head, rows, footer, text_cols=len(rep.group_by), steps=_GROUP_STEPS))
        if rep.total_groups > len(rep.rows):
            hidden = rep.total_groups - len(rep.rows)
            self.line(f"{format_count(hidden, 'more group')} not shown (--top {len(rep.rows)}).")
        if totals.unpriced_calls:
            self.line(
                f"{format_count(totals.unpriced_calls, 'call')} of unknown cost (models with no price): "
                "counted apart in the 'unknown cost' column, not as $0."
            )
        if aborted:
            self.line(
                f"{format_count(totals.aborted_calls, 'stream')} aborted before the end (closed, cancelled or "
                "abandoned): counted apart in the 'aborted' column; their usage, and so their cost, is an estimate."
            )
        if totals.estimated_calls:
            self.line(
                f"{format_count(totals.estimated_calls, 'call')} with an estimated cost (estimated usage, a price "
                "that is not official, or usage priced in part): included in the cost."
            )
        self.line()
        self._waste(spent)
        self._cache(cache)
        self._economics(econ)

    def _waste(self, w: Waste) -> None:
        kinds = (
            ("cut off at max_tokens", w.max_tokens),
            ("refused", w.refusals),
            ("aborted streams", w.aborted),
            ("failed", w.failed),
        )
        rows = tuple((name, f"{s.calls:,}", format_usd(s.cost_usd), f"{s.unpriced_calls:,}") for name, s in kinds)
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
        steps: tuple[Step, ...] = ("write premium", 20, "write tokens", "read tokens", 12)
        self.table(_Table("Cache", head, rows, footer, steps=steps))
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
        self.table(_Table(f"Unit economics, last {e.days} days", head, rows, steps=(20, "calls", 12)))
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


def _cells(s: Stats, *, aborted: bool = False) -> tuple[str, ...]:
    return (
        f"{s.calls:,}",
        format_usd(s.cost_usd),
        f"{s.unpriced_calls:,}",
        f"{s.input_tokens:,}",
        f"{s.output_tokens:,}",
        f"{s.reasoning_tokens:,}",
        f"{s.cache_read_tokens:,}",
        f"{s.cache_write_tokens:,}",
        *((f"{s.aborted_calls:,}",) if aborted else ()),
        format_share(s.error_rate),
        format_ms(s.p50_latency_ms),
        format_ms(s.p95_latency_ms),
    )
