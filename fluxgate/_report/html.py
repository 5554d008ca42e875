"""The HTML report: one self-contained page with inline SVG charts (drawn by ``charts``).

The page loads nothing: no CDN, no script, no font, no image. A
Content-Security-Policy says so to the browser too, so it reads the same
offline. Every string that came from the store (feature names, user ids,
model ids) is untrusted and goes through :func:`html.escape`.
Chart geometry uses floats; every figure shown as text is the exact one.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from .charts import _e, cache_chart, daily_chart, models_chart, users_chart, waste_chart
from .summary import (
    Economics,
    Overview,
    Report,
    Stats,
    format_count,
    format_ms,
    format_share,
    format_time,
    format_usd,
    label,
)

__all__ = ["render"]

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
