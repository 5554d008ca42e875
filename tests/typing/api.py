"""Public API usage that mypy --strict checks and pytest never runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import anthropic

import fluxgate
from fluxgate import AiEventUser, CostEvent, Status, track, track_context
from fluxgate.sinks import SQLiteSink
from fluxgate.testing import FakeAnthropicAPI, MemorySink, capture_events

fg: fluxgate.FluxGate = fluxgate.init(sinks=[MemorySink(), SQLiteSink("events.db")], flush_interval_s=0.5)


@track(feature="summarization", user=AiEventUser("u1", monthly_revenue=49.0))
def summarize(doc: str) -> int:
    return len(doc)


@track(step="stream")
def produce(n: int) -> Iterator[int]:
    yield from range(n)


@track(step="astream")
async def aproduce(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


@track(feature="async")
async def handler(x: int) -> str:
    return str(x)


length: int = summarize("doc")
items: list[int] = list(produce(3))
text: str = asyncio.run(handler(1))

with track_context(feature="f", step="s", metadata={"k": 1}) as scope:
    feature: str | None = fluxgate.current_context().feature
    user_id: str | None = fluxgate.current_context().user_id

bound = fluxgate.bind_context(summarize)
length = bound("doc")

with capture_events() as events:
    client = FakeAnthropicAPI().client()
first: CostEvent = events[0]
cost: Decimal | None = first.cost_usd
status: Status = first.status
delivered: bool = fluxgate.flush(timeout_s=1.0)
stopped: bool = fluxgate.shutdown(timeout_s=1.0)

guarded_fg: fluxgate.FluxGate = fluxgate.init(budgets=[fluxgate.Budget(5, per="day", scope="user", warn_at=0.8)])
try:
    with track_context(feature="agent", budget_usd=2.0) as run:
        spent = run.spent_usd
except fluxgate.BudgetExceeded as stop:
    needed = stop.needed_usd


def read_tracking(client: anthropic.Anthropic) -> float | None:
    """The attached summary type-checks with the fluxgate.mypy plugin, and through the accessor."""
    message = client.messages.create(
        model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
    )
    attached = message.fluxgate_cost_tracking_response
    typed: fluxgate.CostTrackingResponse | None = fluxgate.tracking_response(message)
    if attached is None or typed is None:
        return None
    return attached.cost
