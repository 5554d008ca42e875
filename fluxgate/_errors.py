"""Exceptions factored out to avoid import loops.

The hierarchy::

    FluxgateError
    ├── ConfigurationError       also ValueError; raised at once by init(), sinks and scopes
    └── SinkError                permanent: the batch is dropped, logged and counted
        └── TransientSinkError   retried by the flusher with backoff
"""

from __future__ import annotations

__all__ = ["ConfigurationError", "FluxgateError", "SinkError", "TransientSinkError"]


class FluxgateError(Exception):
    """Base class of every exception fluxgate defines."""


class ConfigurationError(FluxgateError, ValueError):
    """A setting is wrong; the message names it and says what to change."""


class SinkError(FluxgateError):
    """A sink refused a batch for good: retrying would not help."""


class TransientSinkError(SinkError):
    """A sink failed in a way that may pass (network, 5xx, locked database).

    Args:
        retry_after_s: How long the sink asked us to wait, if it said so.
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
