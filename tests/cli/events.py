"""Hand-made events and stores for the command-line tests, written through the real SQLiteSink."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from fluxgate import AiEventUser, CostEvent, Status
from fluxgate.sinks import SQLiteSink

REPO = Path(__file__).resolve().parents[2]
HOUR = 3_600_000
DAY = 24 * HOUR
NOW = int(datetime(2026, 11, 20, 12, tzinfo=timezone.utc).timestamp() * 1000)
SONNET = "claude-sonnet-4-6"

_ids = itertools.count()


def event(
    *,
    cost: str | None = "0.01",
    at: int = NOW - HOUR,
    status: Status = Status.SUCCESS,
    model: str = SONNET,
    user: AiEventUser | str | None = None,
    **fields: Any,
) -> CostEvent:
    """A hand-made event; ``cost=None`` is a call to a model with no price."""
    who = AiEventUser(user) if isinstance(user, str) else user
    fields.setdefault("cost_status", "unpriced_model" if cost is None else "priced")
    return CostEvent(
        tracking_id=f"cli-{next(_ids)}",
        created_at=at,
        status=status,
        cost_usd=None if cost is None else Decimal(cost),
        model=model,
        user=who,
        user_id=None if who is None else who.id,
        **fields,
    )


def fill(path: Path, events: list[CostEvent]) -> Path:
    """Write ``events`` through the real sink."""
    sink = SQLiteSink(path)
    sink.write(events)
    sink.close()
    return path


def fluxgate_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m fluxgate ARGS`` in a real process, with this checkout first on the path."""
    environ = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fluxgate", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
