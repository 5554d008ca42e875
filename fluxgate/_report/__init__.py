"""Reading the store: grouped totals, economics, waste and cache savings, as tables, JSON, CSV, HTML or rows.

``summary`` runs the grouped report and the overview; ``economics`` waste,
cache savings and unit economics per user; ``records`` the typed result
records; ``store`` the read-only store and its SQL dialect (SQLite there,
PostgreSQL in ``postgres``); ``follow`` the new events for ``fluxgate tail``;
``query`` the report as typed rows (``fluxgate.report``); ``format`` money, counts, times and untrusted text;
``output`` JSON and CSV; ``layout`` and ``terminal`` the terminal tables;
``html`` the self-contained page.
"""

from __future__ import annotations

from .format import clean, clip, csv_cell, decimal_text
from .html import render
from .layout import Fit, fit
from .output import STAT_FIELDS, cache_json, economics_json, report_json, stats_json, waste_json, write_csv
from .query import WHERE_KEYS, Rows, parse_when, query
from .records import Row
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
    NoStoreError,
    Overview,
    Reader,
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
    open_reader,
    overview,
    report,
    waste,
)
from .terminal import Printer

__all__ = [
    "FAILED_STATUSES",
    "GROUPS",
    "REFUSAL_STATUSES",
    "SORTS",
    "STAT_FIELDS",
    "WHERE_KEYS",
    "CacheEfficiency",
    "Economics",
    "Filters",
    "Fit",
    "Follower",
    "ModelCache",
    "NoStoreError",
    "Overview",
    "Printer",
    "Reader",
    "Report",
    "ReportError",
    "Row",
    "Rows",
    "Spend",
    "Stats",
    "UserEconomics",
    "Waste",
    "cache_efficiency",
    "cache_json",
    "clean",
    "clip",
    "connect",
    "csv_cell",
    "decimal_text",
    "economics",
    "economics_json",
    "fit",
    "format_count",
    "format_ms",
    "format_share",
    "format_time",
    "format_usd",
    "label",
    "open_reader",
    "overview",
    "parse_when",
    "query",
    "render",
    "report",
    "report_json",
    "stats_json",
    "waste",
    "waste_json",
    "write_csv",
]
