"""Where events go: the :class:`Sink` protocol and the sinks fluxgate ships."""

from __future__ import annotations

from ._base import Sink
from .sqlite import SQLiteSink

__all__ = ["SQLiteSink", "Sink"]
