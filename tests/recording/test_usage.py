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
    def test_reads_what_usage_from_reads(self, name: str, raw: dict[str, Any]) -> None:
        """Every recorded usage reads into the same values either way."""
        usage = usage_from(raw)
        facts = usage_facts(raw)
        assert usage is not None
        assert facts is not None
        assert tuple(facts) == attrs.astuple(usage, recurse=False)
