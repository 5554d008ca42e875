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

__all__ = ["Config", "resolve_endpoint"]


def resolve_endpoint(endpoint: str | None, api_key: str | None) -> tuple[str | None, str | None]:
    """The ingest endpoint and key: the arguments, else ``FLUXGATE_ENDPOINT`` / ``FLUXGATE_API_KEY``.

    Raises:
        ConfigurationError: ``api_key`` was passed without an endpoint.
    """
    if endpoint is None:
        endpoint = os.environ.get("FLUXGATE_ENDPOINT", "").strip() or None
    if api_key is None:
        api_key = os.environ.get("FLUXGATE_API_KEY", "").strip() or None
    elif endpoint is None:
        msg = "'api_key' is sent to an ingest endpoint: pass endpoint= (or set FLUXGATE_ENDPOINT) too."
        raise ConfigurationError(msg)
    return endpoint, api_key


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


def _check_spill_path(_: object, attribute: attrs.Attribute[Any], value: Path | None) -> None:
    if value is not None and value.exists() and not value.is_dir():
        msg = f"'spill_path' must be a directory (one spill file per sink goes in it); got the file {str(value)!r}."
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
    endpoint: str | None = None
    # repr=False: the key must never reach a log line or a traceback.
    api_key: str | None = attrs.field(default=None, repr=False)
    allow_insecure_http: bool = False
    spill_path: Path | None = attrs.field(
        default=None, converter=attrs.converters.optional(Path), validator=_check_spill_path
    )
    max_spill_bytes: int = attrs.field(default=100 * 2**20, validator=_positive_int)
    disabled: bool = False
