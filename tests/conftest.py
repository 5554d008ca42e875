"""Shared fixtures: every test starts clean and fails on swallowed errors."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import fluxgate
import fluxgate._guard
import fluxgate._store.batches
from fluxgate._context import _STACK
from fluxgate.testing import FakeAnthropicAPI, MemorySink

#: The recorded API interactions the tests replay, kept in the repository (tests/fixtures/anthropic/)
#: so a plain clone runs every test (``$FLUXGATE_FIXTURES`` points elsewhere).
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "anthropic"


def fixtures_dir() -> Path:
    """Where the recorded API interactions are."""
    env = os.environ.get("FLUXGATE_FIXTURES")
    return Path(env) if env else FIXTURES


def load_recording(name: str) -> dict[str, Any]:
    """One recorded interaction."""
    data: dict[str, Any] = json.loads((fixtures_dir() / name).read_text())
    return data


@pytest.fixture(autouse=True)
def swallowed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[BaseException]]:
    """Collect what fluxgate swallows; a test that expects none fails on any.

    Tests that inject faults on purpose take this fixture and clear it.
    """
    caught: list[BaseException] = []
    monkeypatch.setattr(fluxgate._guard, "_report", caught.append)
    monkeypatch.delenv("FLUXGATE_DEBUG", raising=False)
    monkeypatch.delenv("FLUXGATE_DISABLED", raising=False)
    yield caught
    assert not caught, f"fluxgate swallowed errors: {caught!r}"


@pytest.fixture(autouse=True)
def _clean_slate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Sure all tests start with no scope, no tracker and no patches, and a private store."""
    monkeypatch.setenv("FLUXGATE_DB", str(tmp_path / "default-events.db"))
    # Batch contexts kept in memory live as long as the process; each test gets its own.
    monkeypatch.setattr(fluxgate._store.batches, "_memory", {})
    token = _STACK.set(())
    yield
    fluxgate.shutdown(timeout_s=5)
    _STACK.reset(token)


@pytest.fixture
def api() -> FakeAnthropicAPI:
    """An in-process fake of the Messages API."""
    return FakeAnthropicAPI()


@pytest.fixture
def sink() -> MemorySink:
    """fluxgate started with a MemorySink; flush before reading ``sink.events``."""
    memory = MemorySink()
    fluxgate.init(sinks=[memory])
    return memory
