"""The Admin API client: Anthropic's own usage and cost figures, day by day, page by page.

It reads the report endpoints the reference calls family A,
``GET /v1/organizations/usage_report/messages`` and
``GET /v1/organizations/cost_report``. Anthropic marks them legacy but still
supported, and its cookbook uses them; they cover any past day (the analytics
endpoints start at 2026-01-01 and span at most 31 days a request) and need no
beta header. The cost comes from the cost endpoint, as Anthropic bills it: it
is never re-priced here.

The key travels in ``x-api-key`` only. It is kept out of ``repr``, error
messages and logs, and redirects are not followed, so it is never sent to a
host other than the one configured.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

import attrs
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from .._errors import FluxgateError
from .period import parse_rfc3339_day, rfc3339
from .records import Tokens

__all__ = [
    "API_VERSION",
    "COST_PATH",
    "DEFAULT_BASE_URL",
    "USAGE_PATH",
    "AdminAPIError",
    "AdminClient",
    "AdminKeyRefusedError",
    "AdminUnavailableError",
    "ReportedCost",
    "ReportedUsage",
]

DEFAULT_BASE_URL = "https://api.anthropic.com"
USAGE_PATH = "/v1/organizations/usage_report/messages"
COST_PATH = "/v1/organizations/cost_report"
#: The version every admin example in Anthropic's docs sends.
API_VERSION = "2023-06-01"
#: Buckets per page: the documented maximum for daily buckets on both endpoints.
PAGE_LIMIT = 31
#: A guard against a server that never stops saying ``has_more``.
MAX_PAGES = 1000
#: The longest ``Retry-After`` honoured as given; longer ones are cut to this.
MAX_RETRY_AFTER_S = 60.0

_log = logging.getLogger("fluxgate.reconcile")


class AdminAPIError(FluxgateError):
    """The Admin API refused a request or sent something that is not a report."""


class AdminKeyRefusedError(AdminAPIError):
    """The API answered 401 or 403: the admin key is wrong, revoked or lacks the role."""


class AdminUnavailableError(AdminAPIError):
    """429, 5xx or the network, on every attempt."""


class _RetryableError(Exception):
    def __init__(self, message: str, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@attrs.frozen(kw_only=True)
class ReportedUsage:
    """One usage-report result: a day's tokens for one model (and tier, workspace)."""

    day: date
    model: str | None
    service_tier: str | None
    workspace_id: str | None
    tokens: Tokens


@attrs.frozen(kw_only=True)
class ReportedCost:
    """One cost-report result, in USD (the API's cents divided by 100, exactly)."""

    day: date
    cost_type: str | None
    model: str | None
    token_type: str | None
    service_tier: str | None
    workspace_id: str | None
    amount_usd: Decimal


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib would resend ``x-api-key`` to wherever they point."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class AdminClient:
    """Read the organisation's usage and cost reports.

    Args:
        api_key: An admin key (``sk-ant-admin...``).
        base_url: The API's origin; ``ANTHROPIC_BASE_URL`` in the CLI.
        timeout_s: Per request.
        max_attempts: Tries per page when the API answers 429 or 5xx or cannot be reached.
        sleep: How to wait between tries (tests pass a recorder).

    >>> AdminClient(api_key="sk-ant-admin-x", base_url="http://127.0.0.1:9")
    AdminClient('http://127.0.0.1:9')
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout_s: float = 30.0,
        max_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = "fluxgate-reconcile",
    ) -> None:
        self._key = api_key
        self._base = base_url.rstrip("/")
        parts = urllib.parse.urlsplit(self._base)
        # Only scheme, host and port are ever shown: a base URL may carry credentials.
        self.origin = f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._user_agent = user_agent
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._through: dict[str, date] = {}

    def __repr__(self) -> str:
        return f"AdminClient({self.origin!r})"

    @property
    def reported_through(self) -> date | None:
        """The day after the last bucket both reports returned (``None`` before any).

        Without ``ending_at`` the API picks the end itself (its default is not
        documented), so tracked days from here on may simply not be reported yet.
        """
        return min(self._through.values()) if self._through else None

    def usage(self, *, since: date, until: date | None, group_by: Sequence[str]) -> list[ReportedUsage]:
        """Daily token counts from ``usage_report/messages``, every page.

        Raises:
            AdminKeyRefusedError, AdminUnavailableError, AdminAPIError: see the classes.
        """
        found: list[ReportedUsage] = []
        for day, result in self._results(USAGE_PATH, since, until, group_by):
            cache = _mapping(result.get("cache_creation"), "cache_creation")
            tools = _mapping(result.get("server_tool_use"), "server_tool_use")
            tokens = Tokens(
                input_tokens=_int(result, "uncached_input_tokens"),
                output_tokens=_int(result, "output_tokens"),
                cache_read_input_tokens=_int(result, "cache_read_input_tokens"),
                cache_creation_input_tokens=_int(cache, "ephemeral_5m_input_tokens")
                + _int(cache, "ephemeral_1h_input_tokens"),
                web_search_requests=_int(tools, "web_search_requests"),
            )
            found.append(
                ReportedUsage(
                    day=day,
                    model=_text(result, "model"),
                    service_tier=_text(result, "service_tier"),
                    workspace_id=_text(result, "workspace_id"),
                    tokens=tokens,
                )
            )
        return found

    def cost(self, *, since: date, until: date | None, group_by: Sequence[str]) -> list[ReportedCost]:
        """Daily cost from ``cost_report``, every page; ``group_by`` should include ``description``.

        Raises:
            AdminKeyRefusedError, AdminUnavailableError, AdminAPIError: see the classes.
        """
        found: list[ReportedCost] = []
        for day, result in self._results(COST_PATH, since, until, group_by):
            currency = result.get("currency", "USD")
            if currency != "USD":
                _malformed(f"a cost in {currency!r}; fluxgate compares USD only")
            raw = result.get("amount")
            if isinstance(raw, bool) or not isinstance(raw, (str, int)):
                _malformed(f"an amount that is not a decimal string ({raw!r})")
            try:
                cents = Decimal(raw)
            except InvalidOperation:
                _malformed(f"an amount that is not a decimal string ({raw!r})")
            if not cents.is_finite():
                _malformed(f"an amount that is not finite ({raw!r})")
            found.append(
                ReportedCost(
                    day=day,
                    cost_type=_text(result, "cost_type"),
                    model=_text(result, "model"),
                    token_type=_text(result, "token_type"),
                    service_tier=_text(result, "service_tier"),
                    workspace_id=_text(result, "workspace_id"),
                    amount_usd=cents.scaleb(-2),  # cents -> USD by moving the point: exact
                )
            )
        return found

    # -- pages -------------------------------------------------------------------------

    def _results(
        self, path: str, since: date, until: date | None, group_by: Sequence[str]
    ) -> Iterator[tuple[date, Mapping[str, Any]]]:
        params = [("starting_at", rfc3339(since))]
        if until is not None:
            params.append(("ending_at", rfc3339(until)))
        params += [("bucket_width", "1d"), ("limit", str(PAGE_LIMIT))]
        params += [("group_by[]", name) for name in group_by]
        for page in self._pages(path, params):
            buckets = page.get("data")
            if not isinstance(buckets, list):
                _malformed("a page without a 'data' list")
            for item in buckets:
                bucket = _mapping(item, "bucket")
                try:
                    day = parse_rfc3339_day(str(bucket.get("starting_at")))
                except ValueError:
                    _malformed(f"a bucket starting at {bucket.get('starting_at')!r}")
                self._through[path] = max(self._through.get(path, day), day + timedelta(days=1))
                results = bucket.get("results") or []
                if not isinstance(results, list):
                    _malformed("a bucket whose 'results' is not a list")
                for result in results:
                    yield day, _mapping(result, "result")

    def _pages(self, path: str, params: list[tuple[str, str]]) -> Iterator[Mapping[str, Any]]:
        """Every page of one report, following ``next_page`` while ``has_more`` is true."""
        seen: set[str] = set()
        page: str | None = None
        for _ in range(MAX_PAGES):
            query = params if page is None else [*params, ("page", page)]
            data = self._get(f"{self._base}{path}?{urllib.parse.urlencode(query)}")
            yield data
            if not data.get("has_more"):
                return
            page = data.get("next_page")
            # Stopping here would quietly drop the rest of the report and overstate coverage.
            if not isinstance(page, str) or not page:
                _malformed("has_more without a next_page")
            if page in seen:
                _malformed("the same next_page twice")
            seen.add(page)
        _malformed(f"more than {MAX_PAGES} pages")

    def _get(self, url: str) -> Mapping[str, Any]:
        retrying = Retrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=_wait,
            retry=retry_if_exception_type(_RetryableError),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._get_once, url)
        except _RetryableError as exc:
            tries = f"{self._max_attempts} attempt{'s' if self._max_attempts != 1 else ''}"
            msg = f"the Admin API at {self.origin} is unavailable: {exc} (gave up after {tries})"
            raise AdminUnavailableError(msg) from None

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        _log.warning(
            "Admin API: %s; retrying in %.1fs (attempt %d of %d)",
            error,
            wait,
            state.attempt_number + 1,
            self._max_attempts,
        )

    def _get_once(self, url: str) -> Mapping[str, Any]:
        request = urllib.request.Request(
            url,
            headers={
                "x-api-key": self._key,
                "anthropic-version": API_VERSION,
                "accept": "application/json",
                "user-agent": self._user_agent,
            },
            method="GET",
        )
        try:
            with self._opener.open(request, timeout=self._timeout_s) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            try:
                body = exc.read()
            except OSError:
                body = b""
            retry_after = _retry_after(exc.headers.get("retry-after") if exc.headers else None)
            exc.close()
            detail = self._redact(_error_detail(body))
            if status in (401, 403):
                msg = f"the admin key was refused (HTTP {status}{detail})"
                raise AdminKeyRefusedError(msg) from None
            if status == 429 or status >= 500:
                raise _RetryableError(f"HTTP {status}{detail}", retry_after) from None
            msg = f"the Admin API refused the request (HTTP {status}{detail})"
            if 300 <= status < 400:
                msg = f"the Admin API answered with a redirect (HTTP {status}), which is not followed"
            raise AdminAPIError(msg) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise _RetryableError(f"could not reach it ({self._redact(str(reason))})", None) from None
        try:
            data = json.loads(body)
        except ValueError:
            _malformed("a body that is not JSON")
        return _mapping(data, "response")

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "[admin key]") if self._key else text


def _wait(state: RetryCallState) -> float:
    """The server's ``Retry-After`` when it sent one, else exponential backoff with jitter."""
    error = state.outcome.exception() if state.outcome is not None else None
    after = getattr(error, "retry_after_s", None)
    if isinstance(after, float):
        return min(after, MAX_RETRY_AFTER_S)
    return float(_BACKOFF(state))


_BACKOFF = wait_random_exponential(multiplier=0.5, max=20)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _error_detail(body: bytes) -> str:
    """``: <type>: <message>`` from the API's error body, or nothing."""
    try:
        error = json.loads(body).get("error") or {}
        kind, message = error.get("type"), error.get("message")
    except (ValueError, AttributeError):
        return ""
    parts = [str(part)[:200] for part in (kind, message) if part]
    return f": {': '.join(parts)}" if parts else ""


def _malformed(what: str) -> NoReturn:
    raise AdminAPIError(f"the Admin API sent {what}")


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if value is None and what in ("cache_creation", "server_tool_use"):
        return {}
    if not isinstance(value, Mapping):
        _malformed(f"a {what} that is not an object ({type(value).__name__})")
    return value


def _int(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        _malformed(f"{name}={value!r}, not a whole number")
    return value


def _text(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    return None if value is None else str(value)
