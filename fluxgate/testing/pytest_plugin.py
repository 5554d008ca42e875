"""The pytest plugin fluxgate installs (entry point ``pytest11``): the ``fluxgate_events`` fixture.

A test that takes ``fluxgate_events`` runs with fluxgate tracking into a
store of its own (a temp SQLite file for anything that writes one, and an
in-memory sink to read from); every event is visible right after its call,
and a :class:`~fluxgate.testing.FakeAnthropicAPI` is at hand::

    def test_summarize_is_tagged(fluxgate_events):
        client = fluxgate_events.api.client()
        summarize(client, "...")
        [event] = fluxgate_events
        assert event.feature == "summarization"

Loading the plugin imports nothing of fluxgate's until a test asks for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from . import CapturedEvents

__all__ = ["fluxgate_events"]


@pytest.fixture
def fluxgate_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CapturedEvents]:
    """Track this test's anthropic calls; the events, delivered before every read."""
    from . import capture_events

    monkeypatch.setenv("FLUXGATE_DB", str(tmp_path / "fluxgate-events.db"))
    with capture_events() as events:
        yield events
