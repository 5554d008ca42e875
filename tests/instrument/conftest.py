"""Fixtures for the instrumentation tests."""

from __future__ import annotations

import pytest

import fluxgate._store.batches


@pytest.fixture(autouse=True)
def _fresh_memory_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own in-memory batch store: the fake API numbers batches from 1 in every test."""
    monkeypatch.setattr(fluxgate._store.batches, "_memory", {})
