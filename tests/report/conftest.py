"""Tables fit ``$COLUMNS`` when it is set; tests that want a width set it themselves."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``COLUMNS`` exported by the shell running the tests must not narrow their tables."""
    monkeypatch.delenv("COLUMNS", raising=False)
