"""The flusher's record of a usage (UsageFacts) holds what Usage holds, read from the same SDK objects."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from fluxgate._models import Usage, UsageFacts
from fluxgate._recording.usage import usage_facts, usage_from

from ..conftest import fixtures_dir


def _recorded_usages() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(fixtures_dir().glob("*.json")):
        response = json.loads(path.read_text()).get("response")
        usage = response.get("usage") if isinstance(response, dict) else None
        if isinstance(usage, dict):
            found.append((path.name, usage))
    return found


RECORDED = _recorded_usages()


class TestUsageFacts:
    def test_same_fields_and_defaults_as_usage(self) -> None:
        """UsageFacts names every Usage field, in order, with the same default: the stores read either."""
        fields = attrs.fields(Usage)
        assert UsageFacts._fields == tuple(f.name for f in fields)
        assert UsageFacts() == tuple(attrs.astuple(Usage(), recurse=False))

    def test_recordings_are_found(self) -> None:
        assert len(RECORDED) >= 10

    @pytest.mark.parametrize(("name", "raw"), RECORDED, ids=[name for name, _ in RECORDED])
    def test_each_recorded_figure_lands_in_its_field(self, name: str, raw: dict[str, Any]) -> None:
        """Every recorded usage reads into the field of its name (UsageFacts is made from values in order)."""
        facts = usage_facts(raw)
        usage = usage_from(raw)
        assert facts is not None
        assert usage is not None
        split = raw.get("cache_creation") or {}
        server = raw.get("server_tool_use") or {}
        assert facts._asdict() == {
            **facts._asdict(),  # reasoning_tokens and iterations: tested with the readers
            "input_tokens": raw["input_tokens"],
            "output_tokens": raw["output_tokens"],
            "cache_creation_input_tokens": raw.get("cache_creation_input_tokens") or 0,
            "cache_creation_5m_input_tokens": split.get("ephemeral_5m_input_tokens"),
            "cache_creation_1h_input_tokens": split.get("ephemeral_1h_input_tokens"),
            "cache_read_input_tokens": raw.get("cache_read_input_tokens") or 0,
            "web_search_requests": server.get("web_search_requests") or 0,
            "web_fetch_requests": server.get("web_fetch_requests") or 0,
            "service_tier": raw.get("service_tier"),
            "speed": raw.get("speed"),
            "inference_geo": raw.get("inference_geo"),
        }
        assert tuple(facts) == attrs.astuple(usage, recurse=False)
