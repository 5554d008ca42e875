"""Put the two sides together: a row per bucket, the total, and what cannot be compared.

Both sides are first keyed at the finest grain (UTC day, model, service tier,
kind of spend), then summed to the rows asked for with ``--by``; so a day
outside the store's range or a Priority Tier call is set apart the same way
whatever the grouping.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import Decimal

import attrs

from .admin import ReportedCost, ReportedUsage
from .period import day_of, day_start_ms
from .records import Reconciliation, Row, Tokens, Uncompared, decimal_text
from .store import Tracked, pusd_to_usd

__all__ = ["GROUPS", "PRIORITY_TIERS", "SOURCE", "reconcile"]

#: What ``--by`` may name.
GROUPS = ("day", "model", "service_tier")
#: In the usage report but never in the cost report ("a different billing model").
PRIORITY_TIERS = frozenset({"priority", "priority_on_demand"})
SOURCE = (
    "Anthropic Admin API, report endpoints: GET /v1/organizations/usage_report/messages (tokens) "
    "and GET /v1/organizations/cost_report (cost, grouped by description)"
)
#: A day's row stays provisional until this long after the day ends: the report usually lags minutes.
PROVISIONAL_MS = 3_600_000
_DATED = re.compile(r"-\d{8}$")

_Key = tuple[date, str | None, str | None, str]  # day, model, service tier, kind


@attrs.define
class _Sum:
    tracked_pusd: int = 0
    reported_usd: Decimal = Decimal(0)
    tracked: Tokens = attrs.field(factory=Tokens)
    reported: Tokens = attrs.field(factory=Tokens)
    calls: int = 0
    unpriced: int = 0

    def add(self, other: _Sum) -> None:
        self.tracked_pusd += other.tracked_pusd
        self.reported_usd += other.reported_usd
        self.tracked += other.tracked
        self.reported += other.reported
        self.calls += other.calls
        self.unpriced += other.unpriced

    def row(
        self,
        *,
        day: date | None = None,
        model: str | None = None,
        service_tier: str | None = None,
        kind: str = "tokens",
    ) -> Row:
        return Row(
            day=day,
            model=model,
            service_tier=service_tier,
            kind=kind,
            tracked_cost_usd=pusd_to_usd(self.tracked_pusd),
            reported_cost_usd=self.reported_usd,
            tracked=self.tracked,
            reported=self.reported,
            tracked_calls=self.calls,
            unpriced_calls=self.unpriced,
        )


def reconcile(
    *,
    tracked: Tracked,
    usage: Sequence[ReportedUsage],
    cost: Sequence[ReportedCost],
    since: date,
    until: date,
    now_ms: int,
    by: Sequence[str] = ("day", "model"),
    undated: bool = False,
    workspaces: Sequence[str] | None = None,
    reported_through: date | None = None,
    store: str = "",
    source: str = SOURCE,
) -> Reconciliation:
    """Compare what the store tracked with what Anthropic reported, for the UTC days ``since`` to ``until``.

    Args:
        by: The row key, a subset of :data:`GROUPS` in display order.
        undated: Compare model ids without their ``-YYYYMMDD`` suffix (one side may record aliases).
        workspaces: Keep only the report's results for these workspace ids
            (``default`` for the default workspace); the store has no workspace to filter on.
        reported_through: The day after the report's last bucket; later days
            are marked provisional (the report may not have reached them).

    >>> from fluxgate._reconcile.store import Tracked
    >>> empty = Tracked(groups=(), other_platforms=(), first_event_ms=None, last_event_ms=None)
    >>> reconcile(tracked=empty, usage=[], cost=[], since=date(2026, 1, 1), until=date(2026, 1, 2), now_ms=0).rows
    ()
    """

    def name(model: str | None) -> str | None:
        return _DATED.sub("", model) if undated and model is not None else model

    def wanted(day: date, workspace: str | None) -> bool:
        if not since <= day < until:
            return False
        return workspaces is None or (workspace or "default") in workspaces

    base, priority, not_compared = _collect(
        tracked,
        [u for u in usage if wanted(u.day, u.workspace_id)],
        [c for c in cost if wanted(c.day, c.workspace_id)],
        name,
    )
    first_day = None if tracked.first_event_ms is None else day_of(tracked.first_event_ms)
    outside: dict[date, _Sum] = defaultdict(_Sum)
    rows: dict[_Key, _Sum] = defaultdict(_Sum)
    provisional: set[_Key] = set()
    for (day, model, service_tier, kind), figures in base.items():
        if first_day is not None and day < first_day:
            outside[day].add(figures)
            continue
        key = (
            day if "day" in by else date.min,
            model if "model" in by else None,
            service_tier if "service_tier" in by and kind == "tokens" else None,
            kind,
        )
        rows[key].add(figures)
        fresh = day_start_ms(day + timedelta(days=1)) + PROVISIONAL_MS > now_ms
        if fresh or (reported_through is not None and day >= reported_through):
            provisional.add(key)

    def order(key: _Key) -> tuple[date, bool, str, str]:
        return (key[0], key[3] != "tokens", key[1] or "\uffff", key[2] or "")

    built = tuple(
        attrs.evolve(
            rows[key].row(day=None if key[0] == date.min else key[0], model=key[1], service_tier=key[2], kind=key[3]),
            provisional=key in provisional,
        )
        for key in sorted(rows, key=order)
    )
    total = _Sum()
    for figures in rows.values():
        total.add(figures)
    result = Reconciliation(
        since=since,
        until=until,
        by=tuple(by),
        rows=built,
        total=attrs.evolve(total.row(kind="total"), provisional=bool(provisional)),
        other_platforms=tracked.other_platforms,
        priority=priority.row(kind="priority", service_tier="priority") if priority != _Sum() else None,
        not_compared=tuple(Uncompared(name=k, cost_usd=v) for k, v in sorted(not_compared.items())),
        outside_store=tuple(outside[day].row(day=day) for day in sorted(outside)),
        source=source,
        store=store,
        generated_at_ms=now_ms,
    )
    notes = _notes(result, base, tracked, undated=undated, workspaces=workspaces, reported_through=reported_through)
    return attrs.evolve(result, notes=tuple(notes))


def _collect(
    tracked: Tracked,
    usage: Sequence[ReportedUsage],
    cost: Sequence[ReportedCost],
    name: Callable[[str | None], str | None],
) -> tuple[dict[_Key, _Sum], _Sum, dict[str, Decimal]]:
    """Both sides keyed by day, model, tier and kind; Priority Tier and uncompared cost types set apart."""
    base: dict[_Key, _Sum] = defaultdict(_Sum)
    priority = _Sum()
    not_compared: dict[str, Decimal] = defaultdict(Decimal)
    for group in tracked.groups:
        tokens = _Sum(
            tracked_pusd=group.cost_pusd - group.web_search_pusd,
            tracked=group.tokens,
            calls=group.calls,
            unpriced=group.unpriced_calls,
        )
        if group.service_tier in PRIORITY_TIERS:
            tokens.tracked_pusd = group.cost_pusd
            priority.add(tokens)
            continue
        base[(group.day, name(group.model), group.service_tier, "tokens")].add(tokens)
        if group.web_search_pusd:
            base[(group.day, None, None, "web_search")].tracked_pusd += group.web_search_pusd
    for used in usage:
        tier = used.service_tier or "standard"
        target = priority if tier in PRIORITY_TIERS else base[(used.day, name(used.model), tier, "tokens")]
        target.reported += used.tokens
    for billed in cost:
        kind = billed.cost_type or ("tokens" if billed.model is not None else "unattributed")
        tier = billed.service_tier or "standard"
        if kind == "tokens" and tier in PRIORITY_TIERS:
            priority.reported_usd += billed.amount_usd
        elif kind == "tokens":
            base[(billed.day, name(billed.model), tier, "tokens")].reported_usd += billed.amount_usd
        elif kind == "web_search":
            base[(billed.day, None, None, "web_search")].reported_usd += billed.amount_usd
        else:
            not_compared[kind] += billed.amount_usd
    return base, priority, not_compared


def _usd(value: Decimal) -> str:
    return f"${decimal_text(value)}"


def _notes(
    result: Reconciliation,
    base: dict[_Key, _Sum],
    tracked: Tracked,
    *,
    undated: bool,
    workspaces: Sequence[str] | None,
    reported_through: date | None,
) -> list[str]:
    notes = [
        "Only calls Anthropic bills are compared (platform=anthropic); "
        "cost is the cost report's, never re-priced from usage.",
        "The store does not record the organisation or workspace a call was billed to: calls made with another "
        "organisation's key count as tracked here, and Console/Workbench use or other applications of this "
        "organisation count as untracked.",
        "Whether the cost report's amounts are before or after negotiated discounts is not documented; "
        "fluxgate prices at list, so a discount shows as reported below tracked.",
    ]
    if result.total.provisional:
        notes.append(
            "Anthropic's report usually lags a few minutes, sometimes more: rows marked provisional cover a day "
            "that ended less than an hour ago or that the report did not reach, and their gap may still close."
        )
    if reported_through is not None and any(
        k[0] >= reported_through and figures.tracked_pusd for k, figures in base.items()
    ):
        notes.append(
            f"Anthropic's report returned days up to {reported_through - timedelta(days=1)} only: tracked spend "
            "after that may simply not be reported yet (those rows are marked provisional)."
        )
    if result.other_platforms:
        names = ", ".join(p.name for p in result.other_platforms)
        notes.append(
            f"Calls on {names} are billed by the cloud provider, not in Anthropic's report: listed apart, not compared."
        )
    if result.priority is not None:
        notes.append(
            f"Priority Tier is listed apart: the usage report counts its tokens but the cost report has no "
            f"Priority costs (tracked: {_usd(result.priority.tracked_cost_usd)})."
        )
    for item in result.not_compared:
        notes.append(
            f"The cost report bills {_usd(item.cost_usd)} as {item.name}, which fluxgate does not track: not compared."
        )
    if result.outside_store:
        spent = sum((row.reported_cost_usd for row in result.outside_store), Decimal(0))
        first = "?" if tracked.first_event_ms is None else day_of(tracked.first_event_ms).isoformat()
        notes.append(
            f"The store's first event is from {first}: {_usd(spent)} reported on the "
            f"{len(result.outside_store)} day(s) before it is left out of the total."
        )
    if tracked.first_event_ms is None:
        notes.append("The store holds no events yet.")
    elif tracked.last_event_ms is not None:
        last = day_of(tracked.last_event_ms)
        later = sum((figures.reported_usd for k, figures in base.items() if k[0] > last), Decimal(0))
        if later:
            notes.append(
                f"The store's newest event is from {last}; the {_usd(later)} reported after that day counts as "
                "untracked (is fluxgate still recording?)."
            )
    if result.total.unpriced_calls:
        notes.append(
            f"{result.total.unpriced_calls} tracked calls have no fluxgate price (unknown models): "
            "their cost is missing from the tracked figures."
        )
    if workspaces is not None:
        notes.append(
            f"Reported figures are for workspace(s) {', '.join(workspaces)} only; "
            "tracked figures cover every call in the store."
        )
    notes.extend(_model_notes(base, undated=undated))
    return notes


def _model_notes(base: dict[_Key, _Sum], *, undated: bool) -> list[str]:
    """Point at models only one side knows: often one model under two names (alias and dated id)."""
    seen: dict[str, list[bool]] = {}
    for (_, model, _, kind), figures in base.items():
        if kind != "tokens" or model is None:
            continue
        sides = seen.setdefault(model, [False, False])
        sides[0] |= figures.tracked_pusd != 0 or figures.tracked != Tokens()
        sides[1] |= figures.reported_usd != 0 or figures.reported != Tokens()
    only_tracked = sorted(m for m, (t, r) in seen.items() if t and not r)
    only_reported = sorted(m for m, (t, r) in seen.items() if r and not t)
    notes = []
    if only_tracked:
        notes.append(f"Tracked but not in Anthropic's report: {', '.join(only_tracked[:5])}.")
    if only_reported:
        notes.append(f"In Anthropic's report but never tracked: {', '.join(only_reported[:5])}.")
    if not undated and {_DATED.sub("", m) for m in only_tracked} & {_DATED.sub("", m) for m in only_reported}:
        notes.append("Some of these differ only by a date suffix: try --undated to compare them as one model.")
    return notes
