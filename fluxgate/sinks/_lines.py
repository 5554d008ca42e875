"""JSON lines of events: the format of JSONL files and spill files, and locked appends to them."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from .._models import AiEventUser, CostEvent, Status

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["event_from_dict", "event_line", "lock_file", "unlock_file", "write_all"]

_FIELDS = frozenset(f.name for f in attrs.fields(CostEvent))


def event_line(event: CostEvent) -> bytes:
    """One event as a compact JSON line (the spill and JSONL format)."""
    return json.dumps(event.to_dict(), separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def event_from_dict(data: Mapping[str, Any]) -> CostEvent:
    """Rebuild a :class:`CostEvent` from ``CostEvent.to_dict()`` output.

    Unknown keys are ignored, so files written by a newer fluxgate still load.

    Raises:
        TypeError, ValueError, KeyError: ``data`` is not an event.
    """
    values = {key: value for key, value in data.items() if key in _FIELDS}
    values["status"] = Status(values["status"])
    cost = values.get("cost_usd")
    values["cost_usd"] = None if cost is None else Decimal(cost)
    values["cost_breakdown"] = {k: Decimal(v) for k, v in (values.get("cost_breakdown") or {}).items()}
    user = values.get("user")
    if isinstance(user, Mapping):
        fields = dict(user)
        values["user"] = AiEventUser(fields.pop("id"), **fields)
    return CostEvent(**values)


def lock_file(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)


def unlock_file(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
