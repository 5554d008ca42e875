"""A fake of the Admin API's report endpoints, built from the calls a fake answered.

:func:`handle_admin_request` is a plain function of the request, so the same
code serves ``fluxgate.testing.FakeAnthropicAPI`` (behind an httpx
``MockTransport``) and the tests' stdlib HTTP server. It follows the
documented shapes of ``GET /v1/organizations/usage_report/messages`` and
``GET /v1/organizations/cost_report``: daily buckets, ``limit`` and
``page``/``has_more``/``next_page`` pagination, the ``x-api-key`` and
``anthropic-version`` headers, cost amounts in cents as decimal strings, and
no cost rows for Priority Tier. Only daily buckets are served.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import threading
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import attrs

from .._models import CostEvent
from .admin import COST_PATH, USAGE_PATH
from .period import day_of, parse_rfc3339_day, rfc3339
from .records import decimal_text

__all__ = ["ADMIN_PATH_PREFIX", "AnsweredCall", "handle_admin_request", "serve_admin_api"]

#: Every Admin API path starts with this; route these to :func:`handle_admin_request`.
ADMIN_PATH_PREFIX = "/v1/organizations/"

_USAGE_GROUPS = frozenset(
    {"api_key_id", "workspace_id", "model", "service_tier", "context_window", "inference_geo", "speed"}
)
_COST_GROUPS = frozenset({"workspace_id", "description"})
_MAX_LIMIT = 31
_DEFAULT_LIMIT = 7
#: fluxgate's breakdown keys -> the cost report's token_type.
_TOKEN_TYPES = {
    "input": "uncached_input_tokens",
    "output": "output_tokens",
    "cache_read": "cache_read_input_tokens",
    "cache_write_5m": "cache_creation.ephemeral_5m_input_tokens",
    "cache_write_1h": "cache_creation.ephemeral_1h_input_tokens",
}
_LABELS = {
    "uncached_input_tokens": "Input Tokens",
    "output_tokens": "Output Tokens",
    "cache_read_input_tokens": "Cache Read",
    "cache_creation.ephemeral_5m_input_tokens": "Cache Write (5m)",
    "cache_creation.ephemeral_1h_input_tokens": "Cache Write (1h)",
}

_Reply = tuple[int, dict[str, str], bytes]


@attrs.frozen(kw_only=True)
class AnsweredCall:
    """One call as Anthropic's reports would count it.

    ``cost_usd`` is what the report bills (fluxgate's own price, when built
    from an event); ``cost_breakdown`` uses fluxgate's keys (``input``,
    ``output``, ``cache_read``, ``cache_write_5m``, ``cache_write_1h``,
    ``web_search``) to split it by token type, and whatever it does not cover
    is billed as uncached input. ``cost_usd=None`` bills nothing.
    """

    at_ms: int
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_5m_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    web_search_requests: int = 0
    service_tier: str = "standard"
    workspace_id: str | None = None
    cost_usd: Decimal | None = None
    cost_breakdown: Mapping[str, Decimal] = attrs.field(factory=dict)

    @classmethod
    def from_event(cls, event: CostEvent, *, workspace_id: str | None = None) -> AnsweredCall:
        """The call a fluxgate event recorded, billed at fluxgate's own price.

        Cache writes without a TTL split count as 5-minute writes.
        """
        five = event.cache_creation_5m_input_tokens
        hour = event.cache_creation_1h_input_tokens
        if five is None and hour is None:
            five, hour = event.cache_creation_input_tokens, 0
        return cls(
            at_ms=event.created_at,
            model=event.model or "unknown",
            input_tokens=event.input_tokens,
            output_tokens=event.output_tokens,
            cache_creation_5m_input_tokens=five or 0,
            cache_creation_1h_input_tokens=hour or 0,
            cache_read_input_tokens=event.cache_read_input_tokens,
            web_search_requests=event.web_search_requests,
            service_tier=event.usage_service_tier or "standard",
            workspace_id=workspace_id,
            cost_usd=event.cost_usd,
            cost_breakdown=dict(event.cost_breakdown),
        )

    @classmethod
    def from_response(
        cls,
        body: Mapping[str, Any],
        *,
        at_ms: int,
        cost_usd: Decimal | None = None,
        cost_breakdown: Mapping[str, Decimal] | None = None,
        workspace_id: str | None = None,
    ) -> AnsweredCall:
        """The call behind a Messages API response body (its ``model`` and ``usage``)."""
        usage = body.get("usage") or {}
        cache = usage.get("cache_creation") or {}
        tools = usage.get("server_tool_use") or {}
        five = cache.get("ephemeral_5m_input_tokens")
        hour = cache.get("ephemeral_1h_input_tokens")
        if five is None and hour is None:
            five, hour = usage.get("cache_creation_input_tokens") or 0, 0
        return cls(
            at_ms=at_ms,
            model=str(body.get("model") or "unknown"),
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            cache_creation_5m_input_tokens=int(five or 0),
            cache_creation_1h_input_tokens=int(hour or 0),
            cache_read_input_tokens=int(usage.get("cache_read_input_tokens") or 0),
            web_search_requests=int(tools.get("web_search_requests") or 0),
            service_tier=str(usage.get("service_tier") or "standard"),
            workspace_id=workspace_id,
            cost_usd=cost_usd,
            cost_breakdown=dict(cost_breakdown or {}),
        )

    def cost_lines(self) -> list[tuple[str, str | None, str | None, Decimal]]:
        """``(cost_type, model, token_type, usd)`` as the cost report bills this call; none for Priority Tier."""
        if self.cost_usd is None or self.service_tier.startswith("priority"):
            return []
        lines: list[tuple[str, str | None, str | None, Decimal]] = []
        rest = self.cost_usd
        for key, amount in self.cost_breakdown.items():
            if key in _TOKEN_TYPES:
                lines.append(("tokens", self.model, _TOKEN_TYPES[key], amount))
            elif key == "web_search":
                lines.append(("web_search", None, None, amount))
            else:
                continue
            rest -= amount
        if rest:
            lines.append(("tokens", self.model, "uncached_input_tokens", rest))
        return lines


def handle_admin_request(  # noqa: PLR0917 - the request's parts in order, as every hook has them
    method: str,
    path: str,
    query: str | Mapping[str, Sequence[str]],
    headers: Mapping[str, str],
    calls: Sequence[AnsweredCall],
    extra_usage: Sequence[AnsweredCall] = (),
    *,
    admin_key: str | None = None,
    page_size: int | None = None,
    now_ms: int | None = None,
) -> _Reply:
    """Answer one Admin API request from ``calls`` plus ``extra_usage`` (spend nobody tracked).

    Args:
        query: The raw query string, or it parsed (``parse_qs``).
        admin_key: The only key accepted; by default any ``sk-ant-admin...`` key.
        page_size: Serve at most this many buckets a page whatever ``limit``
            asks (the real API may return short pages with ``has_more``).
        now_ms: The clock, for the default ``ending_at`` (the end of today).

    Returns:
        ``(status, headers, body)``.

    >>> status, _, body = handle_admin_request("GET", "/v1/organizations/cost_report", "", {}, [])
    >>> status, json.loads(body)["error"]["type"]
    (401, 'authentication_error')
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    key = lowered.get("x-api-key", "")
    if not key:
        return _error(401, "authentication_error", "x-api-key header is required")
    if (admin_key is not None and key != admin_key) or (admin_key is None and not key.startswith("sk-ant-admin")):
        return _error(401, "authentication_error", "invalid x-api-key")
    if not lowered.get("anthropic-version"):
        return _error(400, "invalid_request_error", "anthropic-version header is required")
    route = urllib.parse.urlsplit(path).path.rstrip("/")
    if route not in (USAGE_PATH, COST_PATH):
        return _error(404, "not_found_error", f"no such admin endpoint: {route}")
    if method.upper() != "GET":
        return _error(405, "invalid_request_error", f"{method} is not allowed here")
    params = urllib.parse.parse_qs(query, keep_blank_values=True) if isinstance(query, str) else query
    try:
        page = _page(route, params, now_ms=time.time_ns() // 1_000_000 if now_ms is None else now_ms)
    except ValueError as exc:
        return _error(400, "invalid_request_error", str(exc))
    days, next_page = page.window(page_size)
    everything = [*calls, *extra_usage]
    build = _usage_bucket if route == USAGE_PATH else _cost_bucket
    data = [build(day, [c for c in everything if day_of(c.at_ms) == day], page.groups) for day in days]
    body = {"data": data, "has_more": next_page is not None, "next_page": next_page}
    return 200, {"content-type": "application/json", "request-id": "req_fake_admin"}, json.dumps(body).encode()


@contextlib.contextmanager
def serve_admin_api(
    calls: Sequence[AnsweredCall], extra_usage: Sequence[AnsweredCall] = (), *, admin_key: str | None = None
) -> Iterator[str]:
    """Serve :func:`handle_admin_request` on 127.0.0.1 while the block runs; yields the base URL.

    For demos: point ``ANTHROPIC_BASE_URL`` at the URL and run ``fluxgate
    reconcile``. ``calls`` is read on every request, so a list may still grow.
    """
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            headers = dict(self.headers.items())
            status, reply, body = handle_admin_request(
                "GET", parts.path, parts.query, headers, calls, extra_usage, admin_key=admin_key
            )
            self.send_response(status)
            for name, value in reply.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Requests carry the admin key's header; log nothing."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@attrs.frozen(kw_only=True)
class _Page:
    start: date
    end: date
    first: date
    limit: int
    groups: tuple[str, ...]

    def window(self, page_size: int | None) -> tuple[list[date], str | None]:
        count = min(self.limit, page_size or self.limit)
        days: list[date] = []
        day = self.first
        while day < self.end and len(days) < count:
            days.append(day)
            day += timedelta(days=1)
        token = "page_" + base64.b64encode(rfc3339(day).encode()).decode() if day < self.end else None
        return days, token


def _page(route: str, params: Mapping[str, Sequence[str]], *, now_ms: int) -> _Page:
    def one(name: str) -> str | None:
        values = params.get(name)
        return values[-1] if values else None

    raw_start = one("starting_at")
    if not raw_start:
        msg = "starting_at is required"
        raise ValueError(msg)
    start = parse_rfc3339_day(raw_start)
    raw_end = one("ending_at")
    end = parse_rfc3339_day(raw_end) if raw_end else day_of(now_ms) + timedelta(days=1)
    if (one("bucket_width") or "1d") != "1d":
        msg = "this fake serves daily buckets only (bucket_width=1d)"
        raise ValueError(msg)
    limit = int(one("limit") or _DEFAULT_LIMIT)
    if not 1 <= limit <= _MAX_LIMIT:
        msg = f"limit must be from 1 to {_MAX_LIMIT} for daily buckets (got {limit})"
        raise ValueError(msg)
    groups = tuple([*params.get("group_by[]", ()), *params.get("group_by", ())])
    allowed = _USAGE_GROUPS if route == USAGE_PATH else _COST_GROUPS
    for name in groups:
        if name not in allowed:
            msg = f"group_by[] cannot be {name!r} here; choose from {', '.join(sorted(allowed))}"
            raise ValueError(msg)
    first = start
    token = one("page")
    if token:
        try:
            first = parse_rfc3339_day(base64.b64decode(token.removeprefix("page_"), validate=True).decode())
        except (binascii.Error, UnicodeDecodeError, ValueError):
            msg = f"invalid page token {token!r}"
            raise ValueError(msg) from None
    return _Page(start=start, end=end, first=first, limit=limit, groups=groups)


def _bucket(day: date, results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"starting_at": rfc3339(day), "ending_at": rfc3339(day + timedelta(days=1)), "results": results}


def _usage_bucket(day: date, calls: Sequence[AnsweredCall], groups: Sequence[str]) -> dict[str, Any]:
    sums: dict[tuple[str | None, ...], list[int]] = defaultdict(lambda: [0] * 6)
    for call in calls:
        key = (
            call.model if "model" in groups else None,
            call.service_tier if "service_tier" in groups else None,
            call.workspace_id if "workspace_id" in groups else None,
        )
        figures = sums[key]
        counts = (
            call.input_tokens,
            call.cache_creation_5m_input_tokens,
            call.cache_creation_1h_input_tokens,
            call.cache_read_input_tokens,
            call.output_tokens,
            call.web_search_requests,
        )
        for i, count in enumerate(counts):
            figures[i] += count
    results = [
        {
            "uncached_input_tokens": inp,
            "cache_creation": {"ephemeral_5m_input_tokens": five, "ephemeral_1h_input_tokens": hour},
            "cache_read_input_tokens": read,
            "output_tokens": out,
            "server_tool_use": {"web_search_requests": web},
            "api_key_id": None,
            "workspace_id": workspace,
            "model": model,
            "service_tier": tier,
            "context_window": None,
            "inference_geo": None,
        }
        for (model, tier, workspace), (inp, five, hour, read, out, web) in sorted(sums.items(), key=_order)
    ]
    return _bucket(day, results)


def _cost_bucket(day: date, calls: Sequence[AnsweredCall], groups: Sequence[str]) -> dict[str, Any]:
    described = "description" in groups
    sums: dict[tuple[str | None, ...], Decimal] = defaultdict(Decimal)
    for call in calls:
        billed_tier = call.service_tier if call.service_tier in ("standard", "batch") else "standard"
        billed_workspace = call.workspace_id if "workspace_id" in groups else None
        for kind, name, token, amount in call.cost_lines():
            if described:
                sums[(kind, name, token, billed_tier if kind == "tokens" else None, billed_workspace)] += amount
            else:
                sums[(None, None, None, None, billed_workspace)] += amount
    results = []
    for (cost_type, model, token_type, tier, workspace), usd in sorted(sums.items(), key=_order):
        description: str | None = None
        if cost_type == "tokens":
            description = f"{model} Usage - {_LABELS.get(token_type or '', token_type)}"
        elif cost_type == "web_search":
            description = "Web Search Usage"
        results.append(
            {
                "amount": decimal_text(usd.scaleb(2)),  # USD -> cents, as a decimal string
                "currency": "USD",
                "cost_type": cost_type,
                "description": description,
                "model": model,
                "token_type": token_type,
                "service_tier": tier,
                "context_window": "0-200k" if cost_type == "tokens" else None,
                "inference_geo": None,
                "workspace_id": workspace,
            }
        )
    return _bucket(day, results)


def _order(item: tuple[tuple[str | None, ...], object]) -> tuple[str, ...]:
    return tuple(value or "" for value in item[0])


def _error(status: int, kind: str, message: str) -> _Reply:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake_admin"}
    return status, {"content-type": "application/json", "request-id": "req_fake_admin"}, json.dumps(body).encode()
