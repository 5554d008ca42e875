"""Where events go: the :class:`Sink` protocol and the sinks fluxgate ships.

:class:`OTelSink` and :class:`PostgresSink` are loaded on first use, so
``import fluxgate`` never imports opentelemetry or psycopg; the HTTP client
is imported when an :class:`HTTPSink` is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import Sink
from .http import HTTPSink
from .jsonl import JSONLSink
from .sqlite import SQLiteSink

if TYPE_CHECKING:
    from .otel import OTelSink
    from .postgres import PostgresSink

__all__ = ["HTTPSink", "JSONLSink", "OTelSink", "PostgresSink", "SQLiteSink", "Sink"]


def __getattr__(name: str) -> Any:
    if name == "OTelSink":
        from .otel import OTelSink

        return OTelSink
    if name == "PostgresSink":
        from .postgres import PostgresSink

        return PostgresSink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
