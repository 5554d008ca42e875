"""The Admin API client against a real server on 127.0.0.1: amounts, pagination, redirects, retries."""

from __future__ import annotations

import json
import socket
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

import pytest

from fluxgate._reconcile.admin import (
    AdminAPIError,
    AdminClient,
    AdminUnavailableError,
    _retry_after,
)

from .conftest import ADMIN_KEY, AdminServer

D1 = date(2026, 11, 24)


def _page(results: list[dict[str, Any]], **envelope: Any) -> tuple[int, dict[str, str], bytes]:
    body = {
        "data": [{"starting_at": "2026-11-24T00:00:00Z", "ending_at": "2026-11-25T00:00:00Z", "results": results}],
        "has_more": False,
        "next_page": None,
        **envelope,
    }
    return 200, {"content-type": "application/json"}, json.dumps(body).encode()


def _client(server: AdminServer, sleeps: list[float] | None = None) -> AdminClient:
    return AdminClient(api_key=ADMIN_KEY, base_url=server.url, sleep=(sleeps if sleeps is not None else []).append)


@pytest.mark.usefixtures("admin_env")
class TestAmounts:
    def test_cents_become_dollars_exactly(self, admin_env: AdminServer) -> None:
        """``"123.45"`` cents is $1.2345 and ``"0.0001"`` is $0.000001: no rounding, no float."""
        admin_env.always = _page(
            [
                {"amount": "123.45", "currency": "USD", "cost_type": "tokens", "model": "m"},
                {"amount": "0.0001", "currency": "USD", "cost_type": "tokens", "model": "m"},
            ]
        )
        amounts = [c.amount_usd for c in _client(admin_env).cost(since=D1, until=None, group_by=["description"])]
        assert amounts == [Decimal("1.2345"), Decimal("0.000001")]
        assert all(isinstance(a, Decimal) for a in amounts)

    def test_another_currency_is_an_error(self, admin_env: AdminServer) -> None:
        """A cost in anything but USD is refused rather than added up."""
        admin_env.always = _page([{"amount": "1", "currency": "EUR"}])
        with pytest.raises(AdminAPIError, match="'EUR'"):
            _client(admin_env).cost(since=D1, until=None, group_by=[])

    def test_a_float_amount_is_an_error(self, admin_env: AdminServer) -> None:
        """Amounts are documented as decimal strings; a JSON float is not trusted."""
        admin_env.always = _page([{"amount": 1.5, "currency": "USD"}])
        with pytest.raises(AdminAPIError, match="not a decimal string"):
            _client(admin_env).cost(since=D1, until=None, group_by=[])

    def test_usage_tokens_add_both_cache_write_ttls(self, admin_env: AdminServer) -> None:
        """Cache writes are the 5-minute and 1-hour counts together; empty buckets give nothing."""
        result = {
            "uncached_input_tokens": 5,
            "cache_creation": {"ephemeral_5m_input_tokens": 7, "ephemeral_1h_input_tokens": 11},
            "cache_read_input_tokens": 13,
            "output_tokens": 17,
            "server_tool_use": {"web_search_requests": 2},
            "model": "m",
        }
        admin_env.always = _page([result])
        (row,) = _client(admin_env).usage(since=D1, until=None, group_by=["model"])
        assert (row.tokens.input_tokens, row.tokens.cache_creation_input_tokens) == (5, 18)
        assert (row.tokens.cache_read_input_tokens, row.tokens.output_tokens) == (13, 17)
        assert row.tokens.web_search_requests == 2


@pytest.mark.usefixtures("admin_env")
class TestPages:
    def test_has_more_without_next_page_is_an_error(self, admin_env: AdminServer) -> None:
        """A page that promises more but gives no token fails loudly instead of dropping the rest."""
        admin_env.always = _page([], has_more=True, next_page=None)
        with pytest.raises(AdminAPIError, match="has_more without a next_page"):
            _client(admin_env).cost(since=D1, until=None, group_by=[])

    def test_a_repeated_page_token_is_an_error(self, admin_env: AdminServer) -> None:
        """A server that hands back the same token twice cannot loop the client forever."""
        admin_env.always = _page([], has_more=True, next_page="page_same")
        with pytest.raises(AdminAPIError, match="same next_page twice"):
            _client(admin_env).cost(since=D1, until=None, group_by=[])
        assert len(admin_env.received) == 2

    def test_ending_at_is_sent_only_when_asked(self, admin_env: AdminServer) -> None:
        """``until`` becomes ``ending_at``; without it the API's own default applies."""
        _client(admin_env).cost(since=D1, until=D1 + timedelta(days=1), group_by=[])
        _client(admin_env).cost(since=D1, until=None, group_by=[])
        first, second = admin_env.received[0].query, admin_env.received[-1].query
        assert first["starting_at"] == ["2026-11-24T00:00:00Z"]
        assert first["ending_at"] == ["2026-11-25T00:00:00Z"]
        assert "ending_at" not in second

    def test_the_last_bucket_returned_is_remembered(self, admin_env: AdminServer) -> None:
        """``reported_through`` is the day after the last bucket, so later tracked days can be flagged."""
        admin_env.always = _page([])
        client = _client(admin_env)
        assert client.reported_through is None
        client.cost(since=D1, until=None, group_by=[])
        assert client.reported_through == D1 + timedelta(days=1)


@pytest.mark.usefixtures("admin_env")
class TestSafety:
    def test_redirects_are_not_followed(self, admin_env: AdminServer) -> None:
        """A redirect would carry the key elsewhere: it is an error, and the target is never requested."""
        admin_env.always = (302, {"location": f"{admin_env.url}/elsewhere"}, b"")
        with pytest.raises(AdminAPIError, match="redirect"):
            _client(admin_env).cost(since=D1, until=None, group_by=[])
        assert [r.path for r in admin_env.received] == ["/v1/organizations/cost_report"]

    def test_the_key_is_not_in_repr(self) -> None:
        """``repr`` shows the origin only, never the key or credentials in the base URL."""
        client = AdminClient(api_key=ADMIN_KEY, base_url="https://user:secret@proxy.example:8443/anthropic")
        assert repr(client) == "AdminClient('https://proxy.example:8443')"

    def test_an_unreachable_server_is_retried_then_unavailable(self) -> None:
        """Connection refused on every try ends in AdminUnavailableError after the backoff waits."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        sleeps: list[float] = []
        client = AdminClient(
            api_key=ADMIN_KEY, base_url=f"http://127.0.0.1:{port}", sleep=sleeps.append, max_attempts=3
        )
        with pytest.raises(AdminUnavailableError, match="could not reach it"):
            client.cost(since=D1, until=None, group_by=[])
        assert len(sleeps) == 2


class TestRetryAfter:
    def test_seconds_and_http_dates_are_understood(self) -> None:
        """``Retry-After`` may be seconds or an HTTP date; garbage is ignored."""
        assert _retry_after("2.5") == 2.5
        later = datetime.now(timezone.utc) + timedelta(seconds=30)
        assert 25 <= (_retry_after(format_datetime(later, usegmt=True)) or 0) <= 30
        assert _retry_after("soon") is None
        assert _retry_after(None) is None

    def test_a_long_retry_after_is_capped(self, admin_env: AdminServer) -> None:
        """A server asking for an hour is waited on for a minute at most."""
        admin_env.fail_next(429, headers={"retry-after": "3600"})
        sleeps: list[float] = []
        _client(admin_env, sleeps).cost(since=D1, until=None, group_by=[])
        assert sleeps == [60.0]
