"""Reading the store: grouped totals, economics, waste and cache savings, as tables, JSON, CSV or HTML.

``summary`` runs the grouped report and the overview; ``economics`` unit
economics per user; ``records`` the typed result rows; ``store`` the
read-only queries; ``format`` money, counts and times as text; ``output``
terminal, JSON and CSV writers; ``html`` the self-contained page.
"""

from __future__ import annotations

from .html import (
    render,
)
from .output import (
    Printer,
    cache_json,
    economics_json,
    report_json,
    stats_json,
    waste_json,
    write_csv,
)
from .summary import (
    FAILED_STATUSES,
    GROUPS,
    REFUSAL_STATUSES,
    SORTS,
    CacheEfficiency,
    Economics,
    Filters,
    Follower,
    ModelCache,
    Overview,
    Report,
    ReportError,
    Spend,
    Stats,
    UserEconomics,
    Waste,
    cache_efficiency,
    connect,
    economics,
    format_count,
    format_ms,
    format_share,
    format_time,
    format_usd,
    label,
    overview,
    report,
    waste,
)

__all__ = [
    "FAILED_STATUSES",
    "GROUPS",
    "REFUSAL_STATUSES",
    "SORTS",
    "CacheEfficiency",
    "Economics",
    "Filters",
    "Follower",
    "ModelCache",
    "Overview",
    "Printer",
    "Report",
    "ReportError",
    "Spend",
    "Stats",
    "UserEconomics",
    "Waste",
    "cache_efficiency",
    "cache_json",
    "connect",
    "economics",
    "economics_json",
    "format_count",
    "format_ms",
    "format_share",
    "format_time",
    "format_usd",
    "label",
    "overview",
    "render",
    "report",
    "report_json",
    "stats_json",
    "waste",
    "waste_json",
    "write_csv",
]
