"""SQLiteSink: the embedded default store, one row per event (implemented in ``fluxgate._store``)."""

from __future__ import annotations

from .._store import SQLiteSink

__all__ = ["SQLiteSink"]
