"""``fluxgate prices``: the price table, the row a model id resolves to, or how it compares.

``fluxgate prices`` lists every row; ``fluxgate prices <model-id>`` shows the
row an id resolves to and why; ``--json`` prints the same as JSON for scripts.
An unknown id exits with status 1. ``--check`` compares the bundled table with
genai-prices (when installed): one line per disagreement, exit 1 if any, 0 if
none, 2 if there is nothing to compare with.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, TextIO

from .._pricing import Disagreement, PriceRow, PriceTable, Rates, compare, genai_prices_table

__all__ = ["main"]

_COLUMNS = ("model", "input", "5m write", "1h write", "read", "output", "source", "date", "official")
_NO_PRICE = "-"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fluxgate prices",
        description="Show the price table (USD per million tokens), or the row a model id resolves to.",
    )
    parser.add_argument("model", nargs="?", help="a model id in any form (first-party, alias, Bedrock, Vertex)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a text table")
    parser.add_argument("--at", metavar="YYYY-MM-DD", help="the date whose prices apply (default: today, UTC)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare with genai-prices' table (if installed): print each disagreement, exit 1 if any",
    )
    return parser


def _money(rate: Decimal) -> str:
    """``12.50``, ``0.125``, ``1``: the way the pricing pages print rates."""
    text = f"{rate.normalize():f}"
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}" if fraction else whole


def _label(row: PriceRow) -> str:
    return row.key if row.effective_from is None else f"{row.key} (from {row.effective_from})"


def _official(row: PriceRow, part: str) -> str:
    if row.rates is None:
        return "no price"
    if part in row.third_party or (not row.official and not row.third_party):
        return "third-party"
    if part == "row" and row.third_party - {"fast", "long_context"}:
        return "partly third-party"
    if part == "row" and row.derived:
        return "cache derived"
    return "yes"


def _line(label: str, rates: Rates | None, source: str, row: PriceRow, part: str) -> tuple[str, ...]:
    values = (_NO_PRICE,) * 5 if rates is None else tuple(_money(r) for r in rates.as_tuple())
    inp, w5, w1, read, out = values
    return (label, inp, w5, w1, read, out, source, row.date, _official(row, part))


def _table_lines(rows: Sequence[PriceRow]) -> list[tuple[str, ...]]:
    lines: list[tuple[str, ...]] = []
    for row in rows:
        lines.append(_line(_label(row), row.rates, row.source, row, "row"))
        if row.long_context is not None:
            tier = row.long_context
            source = tier.source or row.source
            lines.append(_line(f"  prompt > {tier.threshold:,}", tier.rates, source, row, "long_context"))
        if row.fast is not None:
            lines.append(_line("  fast mode", row.fast, row.fast_source or row.source, row, "fast"))
    return lines


def _render(lines: Sequence[tuple[str, ...]], out: TextIO) -> None:
    widths = [max(len(line[i]) for line in (_COLUMNS, *lines)) for i in range(len(_COLUMNS))]
    for line in (_COLUMNS, tuple("-" * w for w in widths), *lines):
        cells = [
            cell.ljust(w) if i in (0, 6, 7, 8) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        print("  ".join(cells).rstrip(), file=out)


def _modifiers(row: PriceRow) -> list[str]:
    notes = ["batch: 50 % off every token component" + (" (third-party figure)" if "batch" in row.third_party else "")]
    if row.long_context is not None:
        notes.append(f"long context: a prompt over {row.long_context.threshold:,} tokens prices the whole request")
    if row.fast is not None:
        source = " (third-party figure)" if "fast" in row.third_party else ""
        notes.append(f"fast mode: {_money(row.fast.input)} / {_money(row.fast.output)}{source}")
    if row.data_residency:
        notes.append("inference_geo 'us': x1.1 on every token component")
    if row.regional_premium:
        notes.append("regional endpoint (Bedrock us./eu./jp./apac./au./us-gov., Vertex regional): x1.1")
    return notes


def _at_ms(text: str | None) -> int | None:
    if text is None:
        return None
    day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    return int(day.timestamp()) * 1000


def _show_list(table: PriceTable, *, as_json: bool, out: TextIO) -> int:
    rows = table.rows()
    if as_json:
        data: dict[str, Any] = {
            "version": table.version,
            "web_search_per_1000": str(table.web_search_per_1000),
            "rows": [row.to_dict() for row in rows],
        }
        print(json.dumps(data, indent=2), file=out)
        return 0
    print(f"fluxgate price table {table.version} (USD per million tokens)\n", file=out)
    _render(_table_lines(rows), out)
    print(f"\nweb search: ${_money(table.web_search_per_1000)} per 1,000 requests; web fetch: free", file=out)
    if table.sources:
        print("\nsources:", file=out)
        for key, text in table.sources.items():
            print(f"  {key}: {text}", file=out)
    return 0


def _show_model(table: PriceTable, model: str, *, at_ms: int | None, as_json: bool, out: TextIO) -> int:
    resolution = table.resolve(model)
    row = table.row(model, at_ms=at_ms)
    periods = [r for r in table.rows() if r.key == resolution.key]
    if as_json:
        data: dict[str, Any] = {
            "model_id": resolution.model_id,
            "key": resolution.key,
            "platform": resolution.platform,
            "regional": resolution.regional,
            "reason": resolution.reason,
            "version": table.version,
            "row": None if row is None else row.to_dict(),
            "periods": [r.to_dict() for r in periods],
        }
        print(json.dumps(data, indent=2), file=out)
        return 0 if row is not None else 1
    if row is None:
        print(f"fluxgate prices: unknown model id {model!r} ({resolution.reason}).", file=sys.stderr)
        print("Calls with it are recorded with cost_usd=None; add a row with init(prices={...}).", file=sys.stderr)
        return 1
    print(f"{model} -> {row.key} ({row.name})", file=out)
    print(f"  resolved: {resolution.reason}", file=out)
    regional = "yes" if resolution.regional else "no"
    print(f"  platform: {resolution.platform}, regional endpoint: {regional}", file=out)
    if not row.priced:
        print(f"  known model, no official price: {row.note}", file=out)
        return 0
    print(f"  table {table.version}, USD per million tokens:\n", file=out)
    _render(_table_lines(periods), out)
    if len(periods) > 1:
        print(f"\n  in effect {'then' if at_ms is not None else 'now'}: {_label(row)}", file=out)
    print("\n  modifiers:", file=out)
    for note in _modifiers(row):
        print(f"    {note}", file=out)
    if row.note:
        print(f"  note: {row.note}", file=out)
    return 0


def _figure(value: Decimal | None) -> str:
    return "no price" if value is None else _money(value)


def _check(table: PriceTable, model: str | None, *, at_ms: int | None, as_json: bool, out: TextIO) -> int:
    """Compare with genai-prices: exit 1 on any disagreement, 0 on none, 2 without genai-prices."""
    if model is None:
        keys = list(dict.fromkeys(row.key for row in table.rows()))
    else:
        key = table.resolve(model).key
        if key is None:
            print(f"fluxgate prices: unknown model id {model!r}; nothing to compare.", file=sys.stderr)
            return 2
        keys = [key]
    when = datetime.now(timezone.utc) if at_ms is None else datetime.fromtimestamp(at_ms / 1000, timezone.utc)
    try:
        theirs = genai_prices_table(keys, at=when)
    except ImportError:
        print(
            "fluxgate prices --check: install genai-prices to compare "
            "(pip install genai-prices; it needs Python 3.11+).",
            file=sys.stderr,
        )
        return 2
    except (AttributeError, TypeError) as exc:  # a genai-prices release whose data has another shape
        print(f"fluxgate prices --check: cannot read genai-prices' table ({exc!r}).", file=sys.stderr)
        return 2
    found = compare(table, theirs, at_ms=int(when.timestamp() * 1000))
    if as_json:
        data = {
            "ours": table.version,
            "theirs": theirs.name,
            "at": when.date().isoformat(),
            "disagreements": [d.to_dict() for d in found],
        }
        print(json.dumps(data, indent=2), file=out)
    else:
        _print_disagreements(found, out)
    missing = [key for key in keys if key not in theirs.prices]
    print(
        f"fluxgate prices --check: {len(found)} disagreement(s) between fluxgate {table.version} and "
        f"{theirs.name} on {len(theirs.prices)} model(s), prices in effect {when.date().isoformat()}"
        + (f"; not in {theirs.name}: {', '.join(missing)}" if missing else "")
        + ".",
        file=sys.stderr,
    )
    return 1 if found else 0


def _print_disagreements(found: Sequence[Disagreement], out: TextIO) -> None:
    """One aligned line each: model, component, ours (source), theirs (source)."""
    cells = [
        (
            d.model,
            d.component,
            f"ours {_figure(d.ours)} ({d.ours_source})",
            f"theirs {_figure(d.theirs)} ({d.theirs_source})",
        )
        for d in found
    ]
    widths = [max((len(c[i]) for c in cells), default=0) for i in range(3)]
    for cell in cells:
        print("  ".join(part.ljust(w) for part, w in zip(cell[:3], widths, strict=True)) + "  " + cell[3], file=out)


def main(argv: list[str]) -> int:
    """Run ``fluxgate prices [model-id] [--json] [--at YYYY-MM-DD] [--check]``; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
        at_ms = _at_ms(args.at)
    except SystemExit as exc:  # argparse exits on --help and on bad arguments
        return exc.code if isinstance(exc.code, int) else 2
    except ValueError:
        print(f"fluxgate prices: --at must be a date YYYY-MM-DD (got {args.at!r}).", file=sys.stderr)
        return 2
    table = PriceTable.default()
    if args.check:
        return _check(table, args.model, at_ms=at_ms, as_json=args.json, out=sys.stdout)
    if args.model is None:
        return _show_list(table, as_json=args.json, out=sys.stdout)
    return _show_model(table, args.model, at_ms=at_ms, as_json=args.json, out=sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
