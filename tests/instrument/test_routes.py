"""Naming a request from its options' fields: ``routes.route`` and ``routes.label``."""

from __future__ import annotations

from typing import Any

import pytest

from fluxgate._instrument import routes


def request(**headers: Any) -> dict[str, Any]:
    return {"url": "/v1/messages", "method": "post", "headers": dict(headers)}


def named(fields: dict[str, Any]) -> str:
    found = routes.route(fields)
    assert found is not None
    return routes.label(found, fields)


class TestLabel:
    @pytest.mark.parametrize(
        ("name", "value", "api"),
        [
            ("x-stainless-stream-helper", "messages", "messages.stream"),
            ("X-Stainless-Stream-Helper", "beta.messages", "beta.messages.stream"),
            ("X-STAINLESS-HELPER-METHOD", "stream", "messages.stream"),
            ("x-stainless-helper-method", "other", "messages.create"),
            ("x-stainless-helper", "stream", "messages.create"),  # 2.x's list of helpers, not this one
        ],
    )
    def test_a_helper_header_in_any_case(self, name: str, value: str, api: str) -> None:
        assert named(request(**{"anthropic-workspace-id": "w", name: value})) == api

    def test_the_first_helper_header_decides(self) -> None:
        fields = request(**{"X-Stainless-Helper-Method": "stream", "x-stainless-stream-helper": "beta.messages"})
        assert named(fields) == "messages.stream"

    def test_names_that_are_not_text(self) -> None:
        fields = request()
        fields["headers"] = {b"x-stainless-stream-helper": "messages", 7: "x"}
        assert named(fields) == "messages.create"

    def test_the_names_remembered_are_bounded(self) -> None:
        for i in range(3 * routes._MAX_URLS):
            assert named(request(**{f"x-request-{i}": "1"})) == "messages.create"
        assert len(routes._HELPER_NAMES) <= routes._MAX_URLS
        assert named(request(**{"X-Stainless-Stream-Helper": "messages"})) == "messages.stream"
