"""The HTML report: one self-contained page with inline SVG charts.

The page loads nothing: no CDN, no script, no font, no image. A
Content-Security-Policy says so to the browser too, so it reads the same
offline. Every string that came from the store (feature names, user ids,
model ids) is untrusted and goes through :func:`html.escape`.
Chart geometry uses floats; every figure shown as text is the exact one.
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
    Overview,
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

__all__ = ["render"]

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

_CSS: Final = """
:root { color-scheme: light; --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f7fa; color: var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1320px; margin: 0 auto; padding: 20px 24px 40px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 0 0 10px; }
.meta, .note { color: var(--muted); margin: 0; }
.note { font-size: 13px; margin-top: 8px; }
.note.unpriced { margin: -4px 0 14px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin: 16px 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card b { display: block; font-size: 19px; white-space: nowrap; }
.card span { color: var(--muted); font-size: 12px; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; margin-bottom: 16px; }
@media (max-width: 980px) { .grid { grid-template-columns: minmax(0, 1fr); } }
.panel { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin-bottom: 16px; }
.grid .panel { margin-bottom: 0; }
svg { display: block; width: 100%; height: auto; }
svg text { font-size: 12px; fill: var(--ink); }
svg .axis text, svg .dim { fill: var(--muted); }
svg .grid-line { stroke: var(--line); }
.legend { display: flex; flex-wrap: wrap; gap: 6px 16px; list-style: none; margin: 8px 0 0; padding: 0;
          font-size: 13px; }
.legend i { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 6px;
            vertical-align: -1px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child, th.text, td.text { text-align: left; }
td.text { max-width: 280px; overflow: hidden; text-overflow: ellipsis; }
th { color: var(--muted); font-weight: 600; }
tr.total td { font-weight: 600; }
tr.alert td { background: #fdecea; }
tr.gap td { background: #fff4e5; }
ul.note { margin: 4px 0 0; padding-left: 18px; }
.scroll { overflow-x: auto; }
.stats { display: flex; flex-wrap: wrap; gap: 4px 18px; margin: 0 0 10px; padding: 0; list-style: none; }
"""


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


# --- tables -----------------------------------------------------------------------------


def _table(
    head: Sequence[str], rows: Sequence[Sequence[str]], *, text_cols: int = 1, classes: Sequence[str] = ()
) -> str:
    def cells(values: Sequence[str], tag: str) -> str:
        return "".join(
            f'<{tag} class="text">{_e(v)}</{tag}>' if i < text_cols else f"<{tag}>{_e(v)}</{tag}>"
            for i, v in enumerate(values)
        )

    body = "".join(
        f'<tr class="{classes[i]}">{cells(r, "td")}</tr>'
        if i < len(classes) and classes[i]
        else f"<tr>{cells(r, 'td')}</tr>"
        for i, r in enumerate(rows)
    )
    return f'<div class="scroll"><table><thead><tr>{cells(head, "th")}</tr></thead><tbody>{body}</tbody></table></div>'


def _stats_cells(s: Stats, *, aborted: bool) -> list[str]:
    return [
        f"{s.calls:,}",
        format_usd(s.cost_usd),
        f"{s.unpriced_calls:,}",
        f"{s.input_tokens:,}",
        f"{s.output_tokens:,}",
        f"{s.cache_read_tokens:,}",
        f"{s.cache_write_tokens:,}",
        *([f"{s.aborted_calls:,}"] if aborted else []),
        format_share(s.error_rate),
        format_ms(s.p50_latency_ms),
        format_ms(s.p95_latency_ms),
    ]


def groups_table(rep: Report) -> str:
    """The grouped report with its totals row; an "aborted" column when any stream was aborted."""
    aborted = rep.totals.aborted_calls > 0
    head = [*rep.group_by, "calls", "cost", "unknown cost", "input", "output", "cache read", "cache write"]
    head += [*(["aborted"] if aborted else []), "errors", "p50 ms", "p95 ms"]
    rows = [[label(k) for k in r.key] + _stats_cells(r, aborted=aborted) for r in rep.rows]
    rows.append(["total", *[""] * (len(rep.group_by) - 1), *_stats_cells(rep.totals, aborted=aborted)])
    classes = [""] * (len(rows) - 1) + ["total"]
    return _table(head, rows, text_cols=len(rep.group_by), classes=classes)


def economics_table(econ: Economics) -> str:
    """Users with a known revenue, largest spend first."""
    users = [u for u in econ.users if u.monthly_revenue is not None][:25]
    if not users:
        return f'<p class="note">No user with a monthly_revenue made calls in the last {econ.days} days.</p>'
    head = ["user", "name", "revenue / month", f"AI spend ({econ.days} days)", "ratio", "calls"]
    rows = [
        [
            u.user_id,
            u.name or "",
            format_usd(u.monthly_revenue or Decimal(0)),
            format_usd(u.spend_usd),
            format_share(u.ratio),
            f"{u.calls:,}",
        ]
        for u in users
    ]
    return _table(head, rows, text_cols=2, classes=["alert" if u.over_threshold else "" for u in users])


# --- the page ---------------------------------------------------------------------------


def _card(value: str, caption: str) -> str:
    return f'<div class="card"><b>{_e(value)}</b><span>{_e(caption)}</span></div>'


def render(view: Overview, *, sections: Sequence[str] = ()) -> str:
    """The whole report as one HTML document.

    ``sections`` are HTML fragments added at the end, already escaped by
    whoever made them (``fluxgate report`` adds "Tracked vs billed" this way
    when ``fluxgate reconcile --save`` left a result beside the store).
    """
    rep, totals, econ, cache, waste = view.report, view.report.totals, view.economics, view.cache, view.waste
    daily_svg, daily_legend = daily_chart(view.daily)
    users_svg, users_legend = users_chart(econ)
    models_svg = models_chart(view.by_model)
    daily_panel = ""
    if daily_svg:
        daily_panel = (
            f'<section class="panel" id="daily"><h2>Daily cost by feature</h2>{daily_svg}{daily_legend}</section>'
        )
    filters = view.report.filters
    since = filters.since_ms if filters.since_ms is not None else totals.first_ms
    until = filters.until_ms if filters.until_ms is not None else totals.last_ms
    span = f"{format_time(since)} \N{EN DASH} {format_time(until)}"
    picked = [
        f"{name} {', '.join(values)}"
        for name, values in (
            ("features", filters.features),
            ("users", filters.users),
            ("statuses", filters.statuses),
            ("models", filters.models),
        )
        if values
    ]
    cards = [
        _card(format_usd(totals.cost_usd), "cost of priced calls"),
        _card(f"{totals.calls:,}", "calls"),
        _card(f"{totals.unpriced_calls:,}", "calls of unknown cost"),
        _card(format_share(totals.error_rate), "error rate"),
        _card(f"{format_ms(totals.p50_latency_ms)} / {format_ms(totals.p95_latency_ms)}", "p50 / p95 latency, ms"),
        _card(format_usd(waste.wasted_usd), f"wasted ({format_share(waste.share)} of spend)"),
        _card(format_usd(cache.net_usd), "net saved by caching"),
    ]
    unpriced = (
        f'<p class="note unpriced">{format_count(totals.unpriced_calls, "call")} of unknown cost (models with no '
        "price): counted apart, and in no dollar figure.</p>"
        if totals.unpriced_calls
        else ""
    )
    if totals.aborted_calls:
        unpriced += (
            f'<p class="note unpriced">{format_count(totals.aborted_calls, "stream")} aborted before the end '
            "(closed, cancelled or abandoned): counted apart; their usage, and so their cost, is an estimate.</p>"
        )
    ratio = "" if econ.ratio is None else f", {format_share(econ.ratio)} of their revenue"
    alerts = ""
    if econ.threshold is not None:
        alerts = f" {len(econ.alerts):,} over {format_share(econ.threshold)} of revenue."
    econ_note = (
        f"{format_count(econ.users_with_revenue, 'user')} with a known revenue spent {format_usd(econ.spend_usd)} "
        f"against {format_usd(econ.revenue)} a month{ratio}.{alerts}"
    )
    cache_stats = (
        f'<ul class="stats"><li>reads saved <b>{_e(format_usd(cache.saved_usd))}</b></li>'
        f"<li>writes cost <b>{_e(format_usd(cache.write_cost_usd))}</b></li>"
        f"<li>write premium <b>{_e(format_usd(cache.write_premium_usd))}</b></li>"
        f"<li>net <b>{_e(format_usd(cache.net_usd))}</b></li>"
        f"<li>hit rate <b>{_e(format_share(cache.hit_rate))}</b></li></ul>"
    )
    more = rep.total_groups - len(rep.rows)
    more_note = f'<p class="note">{more:,} more groups not shown (see --top).</p>' if more > 0 else ""
    title = "fluxgate report"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<link rel="icon" href="data:,">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<header>
<h1>{_e(title)}</h1>
<p class="meta">{_e(span)} \N{MIDDLE DOT} {_e(view.store)}
\N{MIDDLE DOT} generated {_e(format_time(view.generated_ms))}</p>
{f'<p class="meta">Only {_e("; ".join(picked))}.</p>' if picked else ""}
</header>
<section class="cards">{"".join(cards)}</section>
{unpriced}
{daily_panel}
<div class="grid">
<section class="panel" id="users"><h2>Top users by spend, last {econ.days} days</h2>{users_svg}{users_legend}
<p class="note">{_e(econ_note)}</p></section>
{f'<section class="panel" id="models"><h2>Cost by model</h2>{models_svg}</section>' if models_svg else ""}
<section class="panel" id="cache"><h2>Cache savings</h2>{cache_stats}{cache_chart(cache)}
<p class="note">Reads: saved against the full input price. Writes: what they cost, of which the premium is the
part above plain input. Standard rates; {cache.unpriced_read_tokens + cache.unpriced_write_tokens:,} cache tokens
of models with no price are left out.</p></section>
<section class="panel" id="waste"><h2>Waste</h2>{waste_chart(waste)}
<p class="note">{_e(format_usd(waste.wasted_usd))} of {_e(format_usd(waste.total.cost_usd))}
({_e(format_share(waste.share))}) went to answers cut off at max_tokens, refusals, aborted streams and failed
calls.</p></section>
</div>
<section class="panel" id="groups"><h2>By {_e(", ".join(rep.group_by))}</h2>{groups_table(rep)}{more_note}</section>
<section class="panel" id="economics"><h2>Unit economics, last {econ.days} days</h2>{economics_table(econ)}</section>
{"".join(sections)}
</main>
</body>
</html>
"""
