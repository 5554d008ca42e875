"""The one list of options that ``init()`` and ``FluxGate`` take, validated.

:class:`Config` is the definition: every option, its default and its check.
``init()`` and ``FluxGate()`` spell the same keywords out for type checkers
and editors (a test holds the three in agreement). Mistakes raise
:class:`ConfigurationError` at once, in the caller's stack, with a message
that names the option, what was expected and what arrived.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ._budget import Budget, SpendStore
from ._delivery import DEFAULT_MAX_SPILL_BYTES, DropHook, RetryPolicy
from ._errors import ConfigurationError
from .sinks import Sink

__all__ = ["BUDGET_ON_ERROR", "Config", "resolve_endpoint"]

#: What a budgeted call does when its spend can't be read or reserved.
BUDGET_ON_ERROR = ("block", "allow")
#: Longer than any interval anyone means: a day.
_MAX_INTERVAL_S = 86_400.0


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


def _got(value: object) -> str:
    return f"{value!r} that is a {type(value).__name__}"


def _seconds(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"'{attribute.name}' must be a number of seconds (got {_got(value)})."
        raise ConfigurationError(msg)
    if not math.isfinite(value) or not 0 < value <= _MAX_INTERVAL_S:
        msg = f"'{attribute.name}' must be a finite number of seconds > 0 and <= {_MAX_INTERVAL_S:g} (got {value!r})."
        raise ConfigurationError(msg)


def _count(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"'{attribute.name}' must be an int >= 1 (got {_got(value)})."
        raise ConfigurationError(msg)


def _to_path(name: str, value: object) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or isinstance(value, bytes):
        msg = f"'{name}' must be a path, a str or os.PathLike (got {_got(value)})."
        raise ConfigurationError(msg)
    return Path(value)


def _db_path(value: object) -> Path | None:
    return _to_path("db_path", value)


def _spill_path(value: object) -> Path | None:
    return _to_path("spill_path", value)


def _check_store(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, (str, os.PathLike)) or isinstance(value, bytes)):
        msg = f"'store' must be a postgresql:// URL or a SQLite file's path (got {_got(value)})."
        raise ConfigurationError(msg)


def _optional_str(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        msg = f"'{attribute.name}' must be a str (got {_got(value)})."
        raise ConfigurationError(msg)


def _flag(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        msg = f"'{attribute.name}' must be True or False (got {_got(value)})."
        raise ConfigurationError(msg)


def _check_sinks(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        msg = f"'sinks' must be a list of sinks (got {_got(value)})."
        raise ConfigurationError(msg)
    for sink in value:
        if not isinstance(sink, Sink):
            msg = (
                f"'sinks' entries must have write(batch) and close() methods, like fluxgate.sinks.SQLiteSink "
                f"(got {_got(sink)})."
            )
            raise ConfigurationError(msg)


def _check_prices(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, (Mapping, str, os.PathLike)):
        msg = f"'prices' must be a mapping of model id to price row, or a JSON file's path (got {_got(value)})."
        raise ConfigurationError(msg)


def _check_spill_path(_: object, attribute: attrs.Attribute[Any], value: Path | None) -> None:
    if value is not None and value.exists() and not value.is_dir():
        msg = f"'spill_path' must be a directory (one spill file per sink goes in it); got the file {str(value)!r}."
        raise ConfigurationError(msg)


def _check_on_drop(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not callable(value):
        msg = f"'on_drop' must be a callable taking (event, reason) (got {_got(value)})."
        raise ConfigurationError(msg)


def _check_retry(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, RetryPolicy):
        msg = f"'retry' must be a fluxgate.RetryPolicy, e.g. RetryPolicy(max_attempts=3) (got {_got(value)})."
        raise ConfigurationError(msg)


def _check_budgets(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, (Budget, str, bytes)) or not isinstance(value, Sequence):
        msg = f"'budgets' must be a list of fluxgate.Budget (got {value!r})."
        raise ConfigurationError(msg)
    for budget in value:
        if not isinstance(budget, Budget):
            msg = f"'budgets' entries must be fluxgate.Budget (got {_got(budget)})."
            raise ConfigurationError(msg)


def _check_budget_store(instance: Config, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if instance.budgets is None:
        msg = "'budget_store' keeps the spend of budgets: pass budgets=[fluxgate.Budget(...)] too."
        raise ConfigurationError(msg)
    if not isinstance(value, SpendStore):
        msg = f"'budget_store' must have reserve(), settle() and spent() methods (got {value!r})."
        raise ConfigurationError(msg)


def _check_budget_on_error(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in BUDGET_ON_ERROR:
        msg = f"'budget_on_error' must be one of {', '.join(map(repr, BUDGET_ON_ERROR))} (got {value!r})."
        raise ConfigurationError(msg)


def _budget_list(value: object) -> object:
    return list(value) if isinstance(value, (list, tuple)) else value


@attrs.frozen(kw_only=True)
class Config:
    """Every option of ``init()`` and ``FluxGate()``, checked; see :class:`fluxgate.FluxGate` for what each does."""

    sinks: Sequence[Sink] | None = attrs.field(default=None, validator=_check_sinks)
    store: str | os.PathLike[str] | None = attrs.field(default=None, validator=_check_store)
    db_path: Path | None = attrs.field(default=None, converter=_db_path)
    prices: Mapping[str, Any] | str | os.PathLike[str] | None = attrs.field(default=None, validator=_check_prices)
    flush_interval_s: float = attrs.field(default=1.0, validator=_seconds)
    max_batch_size: int = attrs.field(default=100, validator=_count)
    max_queue_size: int = attrs.field(default=10_000, validator=_count)
    exit_timeout_s: float = attrs.field(default=5.0, validator=_seconds)
    on_drop: DropHook | None = attrs.field(default=None, validator=_check_on_drop)
    retry: RetryPolicy | None = attrs.field(default=None, validator=_check_retry)
    endpoint: str | None = attrs.field(default=None, validator=_optional_str)
    # repr=False: the key must never reach a log line or a traceback.
    api_key: str | None = attrs.field(default=None, repr=False, validator=_optional_str)
    allow_insecure_http: bool = attrs.field(default=False, validator=_flag)
    spill_path: Path | None = attrs.field(default=None, converter=_spill_path, validator=_check_spill_path)
    max_spill_bytes: int = attrs.field(default=DEFAULT_MAX_SPILL_BYTES, validator=_count)
    budgets: Sequence[Budget] | None = attrs.field(default=None, converter=_budget_list, validator=_check_budgets)
    budget_store: SpendStore | None = attrs.field(default=None, validator=_check_budget_store)
    budget_count_tokens: bool = attrs.field(default=False, validator=_flag)
    budget_on_error: str = attrs.field(default="block", validator=_check_budget_on_error)
    budget_lock_timeout_s: float = attrs.field(default=2.0, validator=_seconds)
    propagate_context: bool = attrs.field(default=True, validator=_flag)
