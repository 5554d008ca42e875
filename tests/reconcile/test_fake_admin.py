"""The fake report endpoints: the documented shapes, limits and refusals."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fluxgate._reconcile.fake_admin import AnsweredCall, handle_admin_request, serve_admin_api

from .conftest import (
    ADMIN_KEY,
    DAY1_MS,
    DAY_MS,
    EXTRA,
    HOUR_MS,
    NOW_MS,
    RANGE,
    SONNET,
    answered,
    event,
    run,
    tracked_events,
)

USAGE = "/v1/organizations/usage_report/messages"
COST = "/v1/organizations/cost_report"
HEADERS = {"X-Api-Key": "sk-ant-admin01-fake", "Anthropic-Version": "2023-06-01"}
QUERY = "starting_at=2026-11-24T00:00:00Z&ending_at=2026-11-27T00:00:00Z"


def get(path: str, query: str, calls: list[AnsweredCall], **options: Any) -> tuple[int, dict[str, Any]]:
    headers = options.pop("headers", HEADERS)
    status, _, body = handle_admin_request("GET", path, query, headers, calls, now_ms=NOW_MS, **options)
    data: dict[str, Any] = json.loads(body)
    return status, data


CALL = AnsweredCall(
    at_ms=DAY1_MS + HOUR_MS,
    model=SONNET,
    input_tokens=1000,
    output_tokens=100,
    cache_creation_5m_input_tokens=50,
    web_search_requests=1,
    cost_usd=Decimal("0.014845"),
    cost_breakdown={"input": Decimal("0.003"), "output": Decimal("0.0015"), "web_search": Decimal("0.01")},
)


class TestRefusals:
    @pytest.mark.parametrize(
        ("path", "query", "headers", "status", "kind"),
        [
            (COST, QUERY, {"anthropic-version": "2023-06-01"}, 401, "authentication_error"),
            (COST, QUERY, {"x-api-key": "sk-ant-api03-regular", "anthropic-version": "2023-06-01"}, 401, None),
            (COST, QUERY, {"x-api-key": "sk-ant-admin01-fake"}, 400, "invalid_request_error"),
            (COST, "ending_at=2026-11-27T00:00:00Z", HEADERS, 400, "invalid_request_error"),
            (COST, QUERY + "&limit=32", HEADERS, 400, "invalid_request_error"),
            (COST, QUERY + "&group_by[]=model", HEADERS, 400, "invalid_request_error"),
            (USAGE, QUERY + "&bucket_width=1h", HEADERS, 400, "invalid_request_error"),
            ("/v1/organizations/analytics/cost", QUERY, HEADERS, 404, "not_found_error"),
        ],
    )
    def test_bad_requests_get_api_shaped_errors(
        self, path: str, query: str, headers: dict[str, str], status: int, kind: str | None
    ) -> None:
        """Missing key or version, a regular key, bad limits or groups and unknown paths are refused as the API does."""
        got, data = get(path, query, [], headers=headers)
        assert got == status
        assert data["type"] == "error"
        assert data["error"]["type"] == (kind or "authentication_error")

    def test_only_the_given_key_is_accepted(self) -> None:
        """With ``admin_key`` set, another admin key is refused."""
        assert get(COST, QUERY, [], admin_key="sk-ant-admin01-other")[0] == 401
        assert get(COST, QUERY, [], admin_key="sk-ant-admin01-fake")[0] == 200


class TestReports:
    def test_cost_lines_follow_the_breakdown_in_cents(self) -> None:
        """Each token type is billed in cents as a decimal string, web search on its own model-less line.

        The $0.000345 the breakdown leaves over is billed as uncached input.
        """
        status, data = get(COST, QUERY + "&group_by[]=description", [CALL])
        assert status == 200
        lines = {(r["cost_type"], r["token_type"]): r for r in data["data"][0]["results"]}
        assert lines[("tokens", "uncached_input_tokens")]["amount"] == "0.3345"
        assert lines[("tokens", "output_tokens")]["amount"] == "0.15"
        assert lines[("web_search", None)]["amount"] == "1"
        assert lines[("web_search", None)]["model"] is None
        assert sum(Decimal(r["amount"]) for r in lines.values()) == Decimal("1.4845")

    def test_what_the_breakdown_does_not_cover_is_billed_as_input(self) -> None:
        """Without a breakdown the whole cost is one uncached-input line."""
        call = AnsweredCall(at_ms=DAY1_MS, model=SONNET, cost_usd=Decimal("0.012345"))
        _, data = get(COST, QUERY + "&group_by[]=description", [call])
        (line,) = data["data"][0]["results"]
        assert (line["token_type"], line["amount"]) == ("uncached_input_tokens", "1.2345")

    def test_priority_calls_have_usage_but_no_cost(self) -> None:
        """A Priority Tier call is counted in usage and absent from the cost report, as documented."""
        call = AnsweredCall(at_ms=DAY1_MS, model=SONNET, input_tokens=9, service_tier="priority", cost_usd=Decimal(1))
        _, usage = get(USAGE, QUERY + "&group_by[]=model&group_by[]=service_tier", [call])
        _, cost = get(COST, QUERY + "&group_by[]=description", [call])
        assert usage["data"][0]["results"][0]["service_tier"] == "priority"
        assert usage["data"][0]["results"][0]["uncached_input_tokens"] == 9
        assert cost["data"][0]["results"] == []

    def test_pages_chain_until_the_range_ends(self) -> None:
        """With one bucket a page, three days take three pages linked by ``next_page``."""
        calls = [CALL, AnsweredCall(at_ms=DAY1_MS + 2 * DAY_MS, model=SONNET, output_tokens=4)]
        days, query = [], QUERY + "&group_by[]=model"
        for _ in range(5):
            _, data = get(USAGE, query, calls, page_size=1)
            days += [bucket["starting_at"] for bucket in data["data"]]
            if not data["has_more"]:
                break
            query = f"{QUERY}&group_by[]=model&page={data['next_page']}"
        assert days == ["2026-11-24T00:00:00Z", "2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z"]
        assert data["next_page"] is None

    def test_from_event_uses_fluxgate_s_price(self) -> None:
        """An event becomes a call billed at its own cost, cache writes without a split as 5-minute ones."""
        recorded = event(SONNET, 0, "0.5", inp=10, out=2, cache_creation_input_tokens=40, usage_service_tier=None)
        call = AnsweredCall.from_event(recorded)
        assert (call.cost_usd, call.service_tier) == (Decimal("0.5"), "standard")
        assert (call.cache_creation_5m_input_tokens, call.cache_creation_1h_input_tokens) == (40, 0)
        assert sum(line[3] for line in call.cost_lines()) == Decimal("0.5")

    def test_from_response_reads_the_message_usage(self) -> None:
        """A Messages API body's usage becomes the call's tokens."""
        body = {
            "model": SONNET,
            "usage": {
                "input_tokens": 3,
                "output_tokens": 4,
                "cache_read_input_tokens": 5,
                "cache_creation": {"ephemeral_5m_input_tokens": 6, "ephemeral_1h_input_tokens": 7},
                "service_tier": "batch",
            },
        }
        call = AnsweredCall.from_response(body, at_ms=DAY1_MS)
        assert (call.input_tokens, call.output_tokens, call.cache_read_input_tokens) == (3, 4, 5)
        assert (call.cache_creation_5m_input_tokens, call.cache_creation_1h_input_tokens) == (6, 7)
        assert call.service_tier == "batch"
        assert call.cost_lines() == []


class TestServe:
    def test_serve_admin_api_answers_a_reconcile(self, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """The demo helper serves the report endpoints on 127.0.0.1 well enough for a full reconcile."""
        monkeypatch.setenv("NO_PROXY", "*")
        monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", ADMIN_KEY)
        with serve_admin_api(answered(tracked_events()), [EXTRA]) as url:
            monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
            result = run(["--db", str(store), *RANGE, "--format", "json"])
        assert result.status == 0, result.err
        assert json.loads(result.out)["total"]["coverage"] == "0.95"
