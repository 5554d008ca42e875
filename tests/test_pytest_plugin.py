"""fluxgate's pytest plugin, used from a test file as an application's tests would use it."""

from __future__ import annotations

import pytest

import fluxgate
from fluxgate.testing import capture_events

pytest_plugins = ["pytester"]

HI = [{"role": "user", "content": "hi"}]

APP_TESTS = """
import fluxgate
from fluxgate import track


@track("summarization")
def summarize(client, doc):
    return client.messages.create(model="claude-haiku-4-5", max_tokens=256,
                                  messages=[{"role": "user", "content": doc}])


def test_event_is_visible_right_after_the_call(fluxgate_events):
    client = fluxgate_events.api.client()
    summarize(client, "a document")
    assert len(fluxgate_events) == 1
    [event] = fluxgate_events
    assert event.feature == "summarization"
    assert event.cost_usd is not None
    summarize(client, "another")
    assert [e.feature for e in fluxgate_events] == ["summarization"] * 2


def test_each_test_starts_empty(fluxgate_events):
    assert fluxgate_events == []


def test_its_own_store(fluxgate_events, tmp_path):
    import os
    assert os.environ["FLUXGATE_DB"] == str(tmp_path / "fluxgate-events.db")
"""


class TestPlugin:
    def test_fixture_in_an_applications_tests(self, pytester: pytest.Pytester) -> None:
        """A test file that takes fluxgate_events sees each event right after its call, in a fresh store."""
        pytester.makepyfile(test_app=APP_TESTS)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        result.assert_outcomes(passed=3)

    def test_plugin_is_registered(self, pytestconfig: pytest.Config) -> None:
        """Installing fluxgate registers the plugin through the pytest11 entry point."""
        assert pytestconfig.pluginmanager.has_plugin("fluxgate")


class TestCaptureEvents:
    def test_events_visible_inside_the_block(self) -> None:
        """capture_events() shows each event before the block ends."""
        from fluxgate.testing import FakeAnthropicAPI

        client = FakeAnthropicAPI().client()
        with capture_events() as events:
            client.messages.create(
                model="claude-haiku-4-5", max_tokens=256, messages=[{"role": "user", "content": "hi"}]
            )
            assert len(events) == 1

    def test_records_despite_disabled_with_a_warning(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """FLUXGATE_DISABLED=1 does not silently empty capture_events(): it warns and records."""
        from fluxgate.testing import FakeAnthropicAPI

        monkeypatch.setenv("FLUXGATE_DISABLED", "1")
        client = FakeAnthropicAPI().client()
        with pytest.warns(RuntimeWarning, match="FLUXGATE_DISABLED"), capture_events() as events:
            client.messages.create(
                model="claude-haiku-4-5", max_tokens=256, messages=[{"role": "user", "content": "hi"}]
            )
        assert len(events) == 1

    def test_previous_tracker_restored(self) -> None:
        """A FluxGate active before the block is active again after it."""
        from fluxgate.testing import MemorySink

        outer = fluxgate.init(sinks=[MemorySink()])
        with capture_events():
            pass
        assert fluxgate._fluxgate.active() is outer
