"""The report's charts: inline SVG, drawn from the report's figures.

Chart geometry uses floats; every figure shown as text is the exact one.
Every string that came from the store is escaped (:func:`_e`).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Final

import attrs

from .summary import (
    CacheEfficiency,
    Economics,
    Report,
    Waste,
    format_count,
    format_share,
    format_usd,
    label,
)

__all__ = [
    "BAD",
    "GOOD",
    "PALETTE",
    "bar_chart",
    "cache_chart",
    "daily_chart",
    "models_chart",
    "users_chart",
    "waste_chart",
]

#: Tableau 10: distinct, colour-blind-aware, readable on white.
PALETTE: Final = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
OTHER: Final = "#bab0ac"
GOOD: Final = "#59a14f"
BAD: Final = "#c0392b"  # darker than the palette's red, so an alert never reads as a feature
WARN: Final = "#f28e2b"
MAX_SERIES: Final = 8  # features drawn in the daily chart before the rest become "other"
MAX_BARS: Final = 12
MAX_DAYS: Final = 366
_CHAR_W: Final = 7.0  # the width of an average character of 12px system-ui text, generously
_MAX_LABEL: Final = 28


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _short(text: str, size: int = 26) -> str:
    return text if len(text) <= size else text[: size - 1] + "\N{HORIZONTAL ELLIPSIS}"


def _nice_max(value: float) -> tuple[float, float]:
    """An axis top at or above ``value`` and a tick step giving about four ticks."""
    if value <= 0:
        return 1.0, 0.25
    raw = value / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return step * math.ceil(value / step - 1e-9), step


def _tick(value: float) -> str:
    return format_usd(Decimal(repr(round(value, 10))))


def _empty(width: int, height: int, message: str) -> str:
    return (
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{_e(message)}">'
        f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" class="dim">{_e(message)}</text></svg>'
    )


# --- charts -----------------------------------------------------------------------------


def daily_chart(daily: Report | None) -> tuple[str, str]:
    """The daily cost stacked by feature, and its legend."""
    if daily is None:
        return "", ""
    by_day: dict[str, dict[str, Decimal]] = {}
    totals: dict[str, Decimal] = {}
    for row in daily.rows:
        day, feature = row.key[0], label(row.key[1])
        if day is None or not row.cost_usd:
            continue
        by_day.setdefault(day, {})[feature] = by_day.get(day, {}).get(feature, Decimal(0)) + row.cost_usd
        totals[feature] = totals.get(feature, Decimal(0)) + row.cost_usd
    width, height = 1240, 300
    if not by_day:
        return _empty(width, 120, "No priced calls in this range"), ""
    ranked = sorted(totals, key=lambda f: (-totals[f], f))
    shown = ranked[:MAX_SERIES] if len(ranked) <= MAX_SERIES else ranked[: MAX_SERIES - 1]
    colours = {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(shown)}
    other = "(other features)"
    if len(ranked) > len(shown):
        colours[other] = OTHER
    first, last = date.fromisoformat(min(by_day)), date.fromisoformat(max(by_day))
    count = min((last - first).days + 1, MAX_DAYS)
    days = [(last - timedelta(days=count - 1 - i)).isoformat() for i in range(count)]
    stacks: list[list[tuple[str, Decimal]]] = []
    for day in days:
        parts: dict[str, Decimal] = {}
        for feature, cost in by_day.get(day, {}).items():
            name = feature if feature in colours else other
            parts[name] = parts.get(name, Decimal(0)) + cost
        stacks.append([(f, parts[f]) for f in colours if f in parts])
    top, step = _nice_max(max(float(sum(c for _, c in s)) for s in stacks))
    left, right, upper, bottom = 72, 12, 12, 36
    plot_w, plot_h = width - left - right, height - upper - bottom
    slot = plot_w / count
    bar = max(slot * 0.78, 1.0)
    out = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="Daily cost by feature">', '<g class="axis">']
    ticks = round(top / step)
    for i in range(ticks + 1):
        y = upper + plot_h - plot_h * i / ticks
        out.append(f'<line class="grid-line" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{_e(_tick(step * i))}</text>')
    every = max(1, math.ceil(count / 14))
    for i, day in enumerate(days):
        if i % every == 0:
            x = left + slot * (i + 0.5)
            out.append(f'<text x="{x:.1f}" y="{height - 12}" text-anchor="middle">{_e(day[5:])}</text>')
    out.append("</g>")
    for i, (day, stack) in enumerate(zip(days, stacks, strict=True)):
        x = left + slot * i + (slot - bar) / 2
        base = float(upper + plot_h)
        for feature, cost in stack:
            h = plot_h * float(cost) / top
            base -= h
            tip = f"{day} \N{MIDDLE DOT} {feature}: {format_usd(cost)}"
            out.append(
                f'<rect x="{x:.2f}" y="{base:.2f}" width="{bar:.2f}" height="{max(h, 0.5):.2f}" '
                f'fill="{colours[feature]}"><title>{_e(tip)}</title></rect>'
            )
    out.append("</svg>")
    legend = "".join(
        f'<li><i style="background:{colour}"></i>{_e(_short(f, 40))}'
        f' <span class="dim">{_e(format_usd(totals.get(f) or _other_total(totals, colours)))}</span></li>'
        for f, colour in colours.items()
    )
    return "".join(out), f'<ul class="legend">{legend}</ul>'


def _other_total(totals: dict[str, Decimal], colours: dict[str, str]) -> Decimal:
    return sum((c for f, c in totals.items() if f not in colours), Decimal(0))


@attrs.frozen(kw_only=True)
class Bar:
    """One row of a horizontal bar chart; ``value`` sets the length, ``text`` is shown after it."""

    label: str
    value: float
    text: str
    colour: str
    tip: str = ""


def bar_chart(bars: Sequence[Bar], *, width: int = 600, name: str, empty: str = "No data") -> str:
    """Horizontal bars with their label on the left and exact figures on the right.

    Label and figure columns are sized to their longest text (at about
    ``_CHAR_W`` per character), so nothing runs off the chart.
    """
    if not bars:
        return _empty(width, 80, empty)
    row, pad = 26, 6
    longest_label = min(max(len(b.label) for b in bars), _MAX_LABEL)
    label_w = round(longest_label * _CHAR_W) + 16
    text_w = min(round(max(len(b.text) for b in bars) * _CHAR_W) + 12, width // 2)
    plot_w = max(width - label_w - text_w, 40)
    height = pad * 2 + row * len(bars)
    top = max((b.value for b in bars), default=0.0) or 1.0
    out = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{_e(name)}">']
    for i, b in enumerate(bars):
        y = pad + row * i
        length = plot_w * max(b.value, 0.0) / top
        tip = _e(b.tip or f"{b.label}: {b.text}")
        shown = _short(b.label, _MAX_LABEL)
        out.append(f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end">{_e(shown)}<title>{tip}</title></text>')
        if length > 0:
            out.append(
                f'<rect x="{label_w}" y="{y + 4}" width="{max(length, 1.5):.2f}" height="{row - 8}" rx="2" '
                f'fill="{b.colour}"><title>{tip}</title></rect>'
            )
        out.append(f'<text x="{label_w + length + 6:.2f}" y="{y + 17}">{_e(b.text)}</text>')
    out.append("</svg>")
    return "".join(out)


def users_chart(econ: Economics) -> tuple[str, str]:
    """The top users by spend over the window, coloured by their spend-to-revenue ratio."""
    bars = []
    for user in econ.users[:MAX_BARS]:
        ratio = user.ratio
        if user.monthly_revenue is None:
            text, colour = f"{format_usd(user.spend_usd)} \N{MIDDLE DOT} no revenue known", OTHER
        else:
            share = "no revenue" if ratio is None else f"{format_share(ratio)} of {format_usd(user.monthly_revenue)}/mo"
            text = f"{format_usd(user.spend_usd)} \N{MIDDLE DOT} {share}"
            colour = BAD if user.over_threshold else PALETTE[0]
        name = user.user_id if user.name is None else f"{user.name} ({user.user_id})"
        bars.append(
            Bar(label=user.user_id, value=float(user.spend_usd), text=text, colour=colour, tip=f"{name}: {text}")
        )
    chart = bar_chart(bars, name="Top users by spend", empty="No calls with a user in the last 30 days")
    items = [f'<li><i style="background:{PALETTE[0]}"></i>spend against monthly revenue</li>']
    if econ.threshold is not None:
        items.append(f'<li><i style="background:{BAD}"></i>over {_e(format_share(econ.threshold))} of revenue</li>')
    items.append(f'<li><i style="background:{OTHER}"></i>no revenue known</li>')
    return chart, f'<ul class="legend">{"".join(items)}</ul>'


def models_chart(by_model: Report | None) -> str:
    """Cost per model; models with no price show their call count instead."""
    if by_model is None:
        return ""
    bars = []
    for i, row in enumerate(by_model.rows[:MAX_BARS]):
        if row.unpriced_calls == row.calls:
            text = f"unknown cost \N{MIDDLE DOT} {format_count(row.calls, 'call')}"
        else:
            text = f"{format_usd(row.cost_usd)} \N{MIDDLE DOT} {format_count(row.calls, 'call')}"
            if row.unpriced_calls:
                text += f" ({row.unpriced_calls:,} unknown)"
        colour = PALETTE[i % len(PALETTE)] if row.cost_usd else OTHER
        bars.append(Bar(label=label(row.key[0]), value=float(row.cost_usd), text=text, colour=colour))
    return bar_chart(bars, name="Cost by model", empty="No calls in this range")


def cache_chart(cache: CacheEfficiency) -> str:
    """What cache reads saved (green) and cache writes cost (orange), per priced model."""
    bars = []
    for model in cache.models:
        if not model.priced or not (model.read_tokens or model.write_tokens):
            continue
        name = label(model.model)
        bars.append(
            Bar(
                label=name, value=float(model.saved_usd), text=f"reads saved {format_usd(model.saved_usd)}", colour=GOOD
            )
        )
        if model.write_tokens:
            bars.append(
                Bar(
                    label="",
                    value=float(model.write_cost_usd),
                    text=f"writes cost {format_usd(model.write_cost_usd)}",
                    colour=WARN,
                    tip=f"{name}: writes cost {format_usd(model.write_cost_usd)}",
                )
            )
    return bar_chart(bars[: MAX_BARS * 2], name="Cache savings", empty="No prompt caching in this range")


def waste_chart(waste: Waste) -> str:
    """Spend on cut-off, refused, aborted and failed calls."""
    bars = []
    for name, spend, colour in (
        ("cut off at max_tokens", waste.max_tokens, WARN),
        ("refused", waste.refusals, PALETTE[6]),
        ("aborted streams", waste.aborted, PALETTE[4]),
        ("failed", waste.failed, PALETTE[3]),
    ):
        text = f"{format_usd(spend.cost_usd)} \N{MIDDLE DOT} {format_count(spend.calls, 'call')}"
        if spend.unpriced_calls:
            text += f" ({spend.unpriced_calls:,} unknown)"
        bars.append(Bar(label=name, value=float(spend.cost_usd), text=text, colour=colour))
    return bar_chart(bars, name="Waste")
