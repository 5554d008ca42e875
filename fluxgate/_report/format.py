"""Formatting shared by the terminal and HTML reports: dollars, shares, latencies, times and labels."""

from __future__ import annotations

import time
from decimal import Decimal

__all__ = ["format_count", "format_ms", "format_share", "format_time", "format_usd", "label"]


def format_usd(value: Decimal) -> str:
    """Dollars for people: cents from $1 up, four significant digits below (``$0.0045``)."""
    if value == 0:
        return "$0.00"
    sign, size = ("-" if value < 0 else ""), abs(value)
    if size >= 1:
        return f"{sign}${size:,.2f}"
    places = min(max(2, 3 - size.adjusted()), 10)
    text = f"{size:.{places}f}".rstrip("0")
    if len(text.partition(".")[2]) < 2:
        text = f"{size:.2f}"
    return f"{sign}${text}"


def format_share(value: float | Decimal | None) -> str:
    """A share as a percentage (``12.5%``); an em dash for ``None``."""
    if value is None:
        return "\N{EM DASH}"
    pct = float(value) * 100
    if pct == 0:
        return "0%"
    if pct < 0.01:
        return "<0.01%"
    if pct < 1:
        return f"{pct:.2g}%"
    return f"{pct:.1f}%" if pct < 10 else f"{pct:,.0f}%"


def format_ms(value: float | None) -> str:
    """A latency in whole milliseconds; an em dash for ``None``."""
    return "\N{EM DASH}" if value is None else f"{value:,.0f}"


def format_time(ms: int | None) -> str:
    """Unix ms as ``2026-11-03 14:05 UTC``."""
    if ms is None:
        return "\N{EM DASH}"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ms / 1000))


def format_count(n: int, noun: str) -> str:
    """``1 call``, ``2,000 calls``."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def label(value: str | None) -> str:
    """A group value for display; events with no value show as ``(none)``."""
    return "(none)" if value is None else value
