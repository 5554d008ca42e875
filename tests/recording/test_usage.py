"""The flusher's record of a usage (UsageFacts) holds what Usage holds, read from the same SDK objects."""

from __future__ import annotations

import json
import types
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


def _split(total: object, split: object) -> dict[str, Any]:
    usage: dict[str, Any] = {"input_tokens": 100, "output_tokens": 20}
    if total is not _ABSENT:
        usage["cache_creation_input_tokens"] = total
    if split is not _ABSENT:
        usage["cache_creation"] = split
    return usage


_ABSENT = object()


class TestCacheWriteSplit:
    """The cache write's total and its 5m/1h parts, however the split arrives.

    A split with neither part as an int leaves the parts None (the total is
    priced at the 5-minute rate, as partial); with one, the other is 0; a
    missing total is the parts' sum.
    """

    @pytest.mark.parametrize(
        ("total", "split", "expected"),
        [
            (30, {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 20}, (30, 10, 20)),
            (_ABSENT, {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 20}, (30, 10, 20)),
            ("30", {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 20}, (30, 10, 20)),
            (30, {"ephemeral_5m_input_tokens": 30}, (30, 30, 0)),
            (_ABSENT, {"ephemeral_1h_input_tokens": 7}, (7, 0, 7)),
            (30, {"ephemeral_5m_input_tokens": "10", "ephemeral_1h_input_tokens": None}, (30, None, None)),
            (30, {"ephemeral_5m_input_tokens": True, "ephemeral_1h_input_tokens": 5}, (30, 0, 5)),
            (30, {}, (30, None, None)),
            (30, None, (30, None, None)),
            (30, _ABSENT, (30, None, None)),
            (_ABSENT, _ABSENT, (0, None, None)),
            (None, {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}, (0, 0, 0)),
        ],
    )
    def test_split_as_a_dict(self, total: object, split: object, expected: tuple[Any, ...]) -> None:
        facts = usage_facts(_split(total, split))
        assert facts is not None
        found = (facts.cache_creation_input_tokens, facts.cache_creation_5m_input_tokens)
        assert (*found, facts.cache_creation_1h_input_tokens) == expected

    def test_split_as_an_object_of_another_kind(self) -> None:
        """Neither a dict nor a model: its attributes are read."""
        split = types.SimpleNamespace(ephemeral_5m_input_tokens=4, ephemeral_1h_input_tokens=6)
        facts = usage_facts(_split(_ABSENT, split))
        assert facts is not None
        assert facts[3:6] == (10, 4, 6)

    def test_split_in_the_sdks_usage_model(self) -> None:
        from anthropic.types import Usage as SDKUsage

        raw = SDKUsage.construct(
            **_split(_ABSENT, {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 12})  # type: ignore[arg-type]
        )
        facts = usage_facts(raw)
        assert facts is not None
        assert facts[3:6] == (12, 0, 12)
