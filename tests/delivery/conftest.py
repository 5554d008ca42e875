"""Flushers left open by a test are closed after it, so no worker keeps retrying into the next test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fluxgate._delivery import flusher


@pytest.fixture(autouse=True)
def _close_flushers() -> Iterator[None]:
    """Sure every flusher a test made is closed when it ends."""
    yield
    for left in list(flusher._live):
        left.close(0.1)
