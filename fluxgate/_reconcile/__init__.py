"""``fluxgate reconcile``: what the store tracked beside what Anthropic's Admin API reports and bills.

The pieces, each in its own module: ``admin`` (the Admin API client),
``store`` (the tracked side, from SQLite), ``compare`` (rows, totals,
caveats), ``records`` (the result and its JSON form), ``output`` (table, JSON,
CSV, the HTML section), ``cli`` (arguments, exit statuses, ``--save``),
``fake_admin`` (the report endpoints, faked for tests and the demo) and
``answered`` (the calls a fake API answered, billed as those reports bill them).
"""

from __future__ import annotations

from .admin import AdminAPIError, AdminClient, AdminKeyRefusedError, AdminUnavailableError
from .answered import AnsweredCalls
from .cli import load_saved, main, saved_path
from .compare import reconcile
from .fake_admin import ADMIN_PATH_PREFIX, AnsweredCall, handle_admin_request, serve_admin_api
from .output import render_html_section
from .records import Reconciliation, Row, Tokens

__all__ = [
    "ADMIN_PATH_PREFIX",
    "AdminAPIError",
    "AdminClient",
    "AdminKeyRefusedError",
    "AdminUnavailableError",
    "AnsweredCall",
    "AnsweredCalls",
    "Reconciliation",
    "Row",
    "Tokens",
    "handle_admin_request",
    "load_saved",
    "main",
    "reconcile",
    "render_html_section",
    "saved_path",
    "serve_admin_api",
]
