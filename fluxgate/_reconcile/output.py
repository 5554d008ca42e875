"""A reconciliation as a terminal table, JSON, CSV, or a section of the HTML report.

Model names and tiers come from the store and from the API, so none of them
is trusted: control characters are escaped on the terminal, CSV text cells
that a spreadsheet would run as a formula get a leading ``'``, and HTML is
escaped. Amounts are printed in full, never rounded.
"""

from __future__ import annotations

import csv
import html
import json
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import ROUND_DOWN, Decimal
from typing import IO

from .records import Reconciliation, Row, decimal_text

__all__ = ["render_html_section", "write_csv", "write_json", "write_table"]

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_TOKEN_COLUMNS = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cache read", "cache_read_input_tokens"),
    ("cache write", "cache_creation_input_tokens"),
)
_CSV_TOKENS = (*(field for _, field in _TOKEN_COLUMNS), "web_search_requests")


def write_json(result: Reconciliation, out: IO[str]) -> None:
    """The JSON form: an object with ``rows``, ``total`` and what was kept apart."""
    json.dump(result.to_json(), out, indent=2)
    out.write("\n")


def write_csv(result: Reconciliation, out: IO[str]) -> None:
    """One line per row (no total line); text cells are neutralised, numbers stay numbers."""
    writer = csv.writer(out, lineterminator="\n")
    money = ("tracked_cost_usd", "reported_cost_usd", "difference_usd", "coverage")
    tokens = [f"{side}_{field}" for field in _CSV_TOKENS for side in ("tracked", "reported")]
    writer.writerow([*result.by, "kind", *money, "tracked_calls", "tracked_unpriced_calls", *tokens, "provisional"])
    for row in result.rows:
        data = row.to_json()
        keys = [_csv_text(data[name]) for name in result.by]
        numbers = ["" if data[name] is None else data[name] for name in (*money, "tracked_calls")]
        writer.writerow(
            [
                *keys,
                _csv_text(row.kind),
                *numbers,
                data["tracked_unpriced_calls"],
                *(data[name] for name in tokens),
                "true" if row.provisional else "false",
            ]
        )


def _csv_text(value: object) -> str:
    """A text cell a spreadsheet will not run: ``=1+1`` becomes ``'=1+1``."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def clean(text: object) -> str:
    """``text`` safe for a terminal: control and format characters escaped (``\\x1b``).

    >>> clean("a\\x1b[31mb")
    'a\\\\x1b[31mb'
    """
    out = []
    for ch in str(text):
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def usd(value: Decimal) -> str:
    """Dollars with at least two decimals and as many more as the amount has: never rounded.

    >>> usd(Decimal("0.2")), usd(Decimal("-0.012345")), usd(Decimal("1E+1"))
    ('$0.20', '-$0.012345', '$10.00')
    """
    text = decimal_text(abs(value))
    whole, _, cents = text.partition(".")
    text = f"{whole}.{cents.ljust(2, '0')}"
    return f"-${text}" if value < 0 else f"${text}"


def _calls(count: int | None) -> str:
    return "1 call" if count == 1 else f"{count or 0:,} calls"


def percent(share: Decimal | None) -> str:
    """``95.00%`` (truncated, so 97.999% never shows as 98.00%); ``n/a`` when nothing was reported."""
    if share is None:
        return "n/a"
    return f"{(share * 100).quantize(Decimal('0.01'), rounding=ROUND_DOWN)}%"


def _label(row: Row, name: str) -> str:
    if name == "day":
        return "all days" if row.day is None else row.day.isoformat()
    if name == "model":
        if row.kind == "web_search":
            return "(web search)"
        return "(all models)" if row.model is None else row.model
    if row.kind != "tokens":
        return ""
    return row.service_tier or "(all tiers)"


def _cells(row: Row, by: Sequence[str], *, total: bool = False) -> list[str]:
    keys = ["total", *[""] * (len(by) - 1)] if total else [clean(_label(row, name)) for name in by]
    if row.provisional and not total and keys:
        keys[0] += " *"
    figures = [
        usd(row.tracked_cost_usd),
        usd(row.reported_cost_usd),
        usd(row.difference_usd),
        percent(row.coverage),
    ]
    for _, field in _TOKEN_COLUMNS:
        figures.append(f"{getattr(row.tracked, field):,} / {getattr(row.reported, field):,}")
    return [*keys, *figures]


def write_table(result: Reconciliation, out: IO[str]) -> None:
    """A plain-text table: a row per bucket, the total, then what was kept apart and the caveats."""
    by = result.by or ("model",)
    head = [*by, "tracked", "reported", "difference", "coverage", *(f"{n} tokens t/r" for n, _ in _TOKEN_COLUMNS)]
    lines = [_cells(row, by) for row in result.rows]
    lines.append(_cells(result.total, by, total=True))
    widths = [max(len(line[i]) for line in [head, *lines]) for i in range(len(head))]
    left = len(by)

    def fmt(cells: Sequence[str]) -> str:
        parts = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(parts).rstrip()

    print(
        f"Tracked vs billed, {result.since} to {result.until} (UTC days, until exclusive), by {', '.join(by)}",
        file=out,
    )
    print(f"store: {clean(result.store)}", file=out)
    print(f"compared with: {clean(result.source)}", file=out)
    print(file=out)
    print(fmt(head), file=out)
    for line in lines[:-1]:
        print(fmt(line), file=out)
    print(fmt(["-" * w for w in widths]), file=out)
    print(fmt(lines[-1]), file=out)
    if any(row.provisional for row in result.rows):
        print("* provisional: Anthropic's report may not have caught up with this day yet.", file=out)
    apart = _apart(result)
    if apart:
        print("\nNot compared:", file=out)
        for text in apart:
            print(f"  - {clean(text)}", file=out)
    if result.notes:
        print("\nWhat the comparison cannot see:", file=out)
        for note in result.notes:
            print(f"  - {clean(note)}", file=out)


def _apart(result: Reconciliation) -> list[str]:
    lines = [
        f"{item.name}: {_calls(item.calls)}, {usd(item.cost_usd)} tracked (billed by the cloud provider)"
        for item in result.other_platforms
    ]
    if result.priority is not None:
        p = result.priority
        lines.append(
            f"priority tier: {usd(p.tracked_cost_usd)} tracked in {_calls(p.tracked_calls)}; reported tokens "
            f"{p.reported.input_tokens:,} input, {p.reported.output_tokens:,} output (no cost in the report)"
        )
    lines += [
        f"{item.name}: {usd(item.cost_usd)} reported (fluxgate does not track it)" for item in result.not_compared
    ]
    lines += [
        f"{row.day}: {usd(row.reported_cost_usd)} reported, before the store's first event"
        for row in result.outside_store
    ]
    return lines


def render_html_section(result: Reconciliation) -> str:
    """The "Tracked vs billed" section of ``fluxgate report --html``, as an escaped HTML fragment.

    It uses the report's own classes (``panel``, ``cards``, ``card``, ``scroll``, ``note``).
    """
    e = html.escape
    by = result.by or ("model",)
    when = datetime.fromtimestamp(result.generated_at_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cards = "".join(
        f'<div class="card"><b>{e(value)}</b><span>{e(caption)}</span></div>'
        for value, caption in (
            (percent(result.total.coverage), "of billed spend tracked"),
            (usd(result.total.tracked_cost_usd), "tracked"),
            (usd(result.total.reported_cost_usd), "billed (Anthropic's cost report)"),
            (usd(result.total.difference_usd), "billed but not tracked"),
        )
    )
    head = [*by, "tracked", "billed", "difference", "coverage", *(f"{n} tokens t/r" for n, _ in _TOKEN_COLUMNS)]
    body = []
    for row in (*result.rows, result.total):
        total = row is result.total
        cells = _cells(row, by, total=total)
        css = ' class="total"' if total else (' class="gap"' if row.difference_usd > 0 else "")
        tds = "".join(
            f'<td class="text">{e(c)}</td>' if i < len(by) else f"<td>{e(c)}</td>" for i, c in enumerate(cells)
        )
        body.append(f"<tr{css}>{tds}</tr>")
    ths = "".join(f'<th class="text">{e(h)}</th>' if i < len(by) else f"<th>{e(h)}</th>" for i, h in enumerate(head))
    apart = "".join(f"<li>{e(text)}</li>" for text in _apart(result))
    notes = "".join(f"<li>{e(note)}</li>" for note in result.notes)
    return (
        '<section class="panel" id="reconcile"><h2>Tracked vs billed</h2>'
        f'<p class="meta">{e(str(result.since))} \N{EN DASH} {e(str(result.until))} (UTC, until exclusive), '
        f"compared {e(when)} with {e(result.source)}</p>"
        f'<div class="cards">{cards}</div>'
        f'<div class="scroll"><table><thead><tr>{ths}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
        + (f'<p class="note">Not compared:</p><ul class="note">{apart}</ul>' if apart else "")
        + (f'<p class="note">What the comparison cannot see:</p><ul class="note">{notes}</ul>' if notes else "")
        + "</section>"
    )
