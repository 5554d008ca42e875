"""Validated settings for a FluxGate, from arguments and the environment.

Mistakes raise :class:`ConfigurationError` at once, in the caller's stack,
with a message that says what to change.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ._errors import ConfigurationError
from .sinks._base import Sink

__all__ = ["Config", "env_flag"]


def env_flag(name: str) -> bool:
    """True when the environment variable is set to a truthy value."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _positive(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        msg = f"'{attribute.name}' must be a number > 0 (got {value!r})."
        raise ConfigurationError(msg)


def _positive_int(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"'{attribute.name}' must be an int >= 1 (got {value!r})."
        raise ConfigurationError(msg)


def _check_sinks(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        msg = f"'sinks' must be a list of sinks (got {value!r})."
        raise ConfigurationError(msg)
    for sink in value:
        if not isinstance(sink, Sink):
            msg = (
                f"'sinks' entries must have write(batch) and close() methods, like fluxgate.sinks.SQLiteSink "
                f"(got {sink!r} that is a {type(sink).__name__})."
            )
            raise ConfigurationError(msg)


@attrs.frozen(kw_only=True)
class Config:
    """Everything ``init()`` accepts, checked."""

    sinks: Sequence[Sink] | None = attrs.field(default=None, validator=_check_sinks)
    db_path: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    prices: Mapping[str, Any] | str | os.PathLike[str] | None = None
    flush_interval_s: float = attrs.field(default=1.0, validator=_positive)
    max_batch_size: int = attrs.field(default=100, validator=_positive_int)
    max_queue_size: int = attrs.field(default=10_000, validator=_positive_int)
    exit_timeout_s: float = attrs.field(default=5.0, validator=_positive)
    disabled: bool = False
