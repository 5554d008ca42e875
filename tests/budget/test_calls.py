"""Budgets in front of real (fake-transport) calls: blocking, windows, scopes, processes."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import fluxgate
from fluxgate import Budget, BudgetExceeded, Status, track_context
from fluxgate._budget.guard import MemorySpendStore, estimate_input_tokens
from fluxgate.testing import FakeAnthropicAPI, FakeReply, FakeRequest, MemorySink, sse_body

REPO = Path(__file__).resolve().parents[2]
MTOK = Decimal(1_000_000)
MODEL = "claude-sonnet-4-6"  # $3 in, $15 out per million tokens
PROMPT = [{"role": "user", "content": "Plan the next step."}]
MAX_TOKENS = 1000
REQUEST = {"model": MODEL, "max_tokens": MAX_TOKENS, "messages": PROMPT}
# Each call really uses 500 in / 200 out; its worst case is the estimate + max_tokens.
ACTUAL = (500 * Decimal(3) + 200 * Decimal(15)) / MTOK
WORST = (estimate_input_tokens(REQUEST) * Decimal(3) + MAX_TOKENS * Decimal(15)) / MTOK


def fixed_usage(request: FakeRequest) -> FakeReply:
    body = request.body if isinstance(request.body, dict) else {}
    message = {
        "id": "msg_b",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", MODEL),
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 500, "output_tokens": 200},
    }
    if body.get("stream"):
        start = {**message, "content": [], "stop_reason": None, "usage": {"input_tokens": 500, "output_tokens": 1}}
        return FakeReply(
            sse=sse_body(
                [
                    {"type": "message_start", "message": start},
                    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 200}},
                    {"type": "message_stop"},
                ]
            )
        )
    return FakeReply(json_body=message)


def call(client: Any, **kwargs: Any) -> Any:
    return client.messages.create(**{**REQUEST, **kwargs})


def calls_that_fit(limit: Decimal) -> int:
    """How many calls pass: call k+1 is sent while spent + its worst case stays within the limit."""
    spent, sent = Decimal(0), 0
    while spent + WORST <= limit:
        spent += ACTUAL
        sent += 1
    return sent


@pytest.fixture
def api() -> FakeAnthropicAPI:
    return FakeAnthropicAPI(responder=fixed_usage)


def events_of(sink: MemorySink) -> list[fluxgate.CostEvent]:
    assert fluxgate.flush(timeout_s=10)
    return sink.events


class TestBlocking:
    def test_loop_stops_at_exact_call(self, api: FakeAnthropicAPI) -> None:
        """A loop of calls stops at the first call whose worst case would cross the limit."""
        limit = Decimal("0.05")
        sink = MemorySink()
        fluxgate.init(sinks=[sink], budgets=[Budget(limit, per="day")], budget_store=MemorySpendStore())
        client = api.client()
        sent = 0
        with pytest.raises(BudgetExceeded) as info:  # noqa: PT012 - the loop is what is under test
            for _ in range(1000):
                call(client)
                sent += 1
        assert sent == calls_that_fit(limit) > 3
        assert len(api.requests) == sent  # the blocked call never reached the API
        events = events_of(sink)
        assert [e.status for e in events] == [Status.SUCCESS] * sent + [Status.BLOCKED]
        blocked = events[-1]
        assert (blocked.cost_usd, blocked.error_type) == (Decimal(0), "budget_exceeded")
        assert info.value.fluxgate_cost_tracking_response.tracking_id == blocked.tracking_id  # type: ignore[attr-defined]
        assert info.value.fluxgate_cost_tracking_response.status is Status.BLOCKED  # type: ignore[attr-defined]
        assert info.value.limit_usd == limit
        assert sum(e.cost_usd or 0 for e in events) <= limit

    def test_retrying_under_except_exception_never_spends(self, api: FakeAnthropicAPI) -> None:
        """A blanket ``except Exception`` retry loop only meets more blocks: nothing reaches the API."""
        sink = MemorySink()
        fluxgate.init(sinks=[sink], budgets=[Budget(0)], budget_store=MemorySpendStore())
        caught = 0
        for _ in range(5):
            try:
                call(api.client())
            except Exception as exc:  # the agent-loop pattern under test
                caught += isinstance(exc, BudgetExceeded)
        assert caught == 5
        assert api.requests == []
        assert fluxgate.flush(timeout_s=10)
        assert [e.status for e in sink.events] == [Status.BLOCKED] * 5

    def test_per_user_budgets_are_separate(self, api: FakeAnthropicAPI) -> None:
        """One user hitting their budget does not block another user."""
        sink = MemorySink()
        fluxgate.init(sinks=[sink], budgets=[Budget(WORST, per="user")], budget_store=MemorySpendStore())
        client = api.client()
        with track_context(user="alice"):
            call(client)
            with pytest.raises(BudgetExceeded, match="alice"):
                call(client)
        with track_context(user="bob"):
            call(client)
        call(client)  # no user: a per-user budget does not apply
        statuses = [(e.user_id, e.status) for e in events_of(sink)]
        assert statuses == [
            ("alice", Status.SUCCESS),
            ("alice", Status.BLOCKED),
            ("bob", Status.SUCCESS),
            (None, Status.SUCCESS),
        ]

    def test_where_limits_a_budget_to_a_feature(self, api: FakeAnthropicAPI) -> None:
        """A budget restricted to one feature leaves the others alone."""
        fluxgate.init(
            sinks=[MemorySink()], budgets=[Budget(0, where={"feature": "agent"})], budget_store=MemorySpendStore()
        )
        client = api.client()
        with track_context(feature="chat"):
            call(client)
        with track_context(feature="agent"), pytest.raises(BudgetExceeded):
            call(client)

    def test_unpriced_model_fails_closed(self, api: FakeAnthropicAPI) -> None:
        """A budgeted call on a model with no price is refused unless the budget allows it."""
        fluxgate.init(sinks=[MemorySink()], budgets=[Budget(100)], budget_store=MemorySpendStore())
        with pytest.raises(BudgetExceeded, match="no price"):
            call(api.client(), model="claude-unknown-9")
        assert api.requests == []
        fluxgate.init(sinks=[MemorySink()], budgets=[Budget(100, on_unpriced="allow")], budget_store=MemorySpendStore())
        call(api.client(), model="claude-unknown-9")
        assert len(api.requests) == 1

    def test_async_calls(self, api: FakeAnthropicAPI) -> None:
        """Async calls are checked the same way."""
        fluxgate.init(sinks=[MemorySink()], budgets=[Budget(WORST)], budget_store=MemorySpendStore())
        client = api.async_client()

        async def main() -> None:
            await call(client)
            await call(client)

        with pytest.raises(BudgetExceeded):
            asyncio.run(main())
        assert len(api.requests) == 1

    def test_warn_at_fires_once_per_window(self, api: FakeAnthropicAPI) -> None:
        """Crossing warn_at calls the hook once, not on every later call."""
        seen: list[tuple[str, Decimal]] = []
        budget = Budget(WORST * 10, warn_at=0.3, on_warn=lambda _budget, group, spent: seen.append((group, spent)))
        fluxgate.init(sinks=[MemorySink()], budgets=[budget], budget_store=MemorySpendStore())
        client = api.client()
        for _ in range(7):
            call(client)
        assert seen == []  # 6 spent + 1 reserved stays under 30 %
        for _ in range(5):
            call(client)
        assert len(seen) == 1
        assert seen[0][0] == "*"


class TestWindows:
    def test_day_rolls_over_at_midnight_in_its_zone(self, api: FakeAnthropicAPI) -> None:
        """A blocked day budget allows calls again from local midnight, not a second before."""
        now = [1_795_000_000.0]  # a fixed instant; the window is the Paris day around it
        budget = Budget(WORST, per="day", tz="Europe/Paris", clock=lambda: now[0])
        fluxgate.init(sinks=[MemorySink()], budgets=[budget], budget_store=MemorySpendStore())
        client = api.client()
        call(client)
        with pytest.raises(BudgetExceeded):
            call(client)
        _, end_ms = budget.window_bounds(now[0])
        now[0] = end_ms / 1000 - 0.001
        with pytest.raises(BudgetExceeded):
            call(client)
        now[0] = end_ms / 1000
        call(client)
        assert len(api.requests) == 2


class TestScopes:
    def test_scope_budget_caps_its_block(self, api: FakeAnthropicAPI) -> None:
        """track_context(budget_usd=...) stops calls inside it; a new entry starts afresh."""
        sink = MemorySink()
        fluxgate.init(sinks=[sink])
        client = api.client()
        scope = track_context(feature="agent-run", budget_usd=WORST + ACTUAL)
        with scope:
            call(client)
            call(client)  # spent ACTUAL, reserves WORST: fits exactly
            with pytest.raises(BudgetExceeded):
                call(client)
        assert scope.spent_usd == 2 * ACTUAL
        with scope:
            call(client)
        assert len(api.requests) == 3

    def test_nested_scopes_each_enforce(self, api: FakeAnthropicAPI) -> None:
        """An inner scope's limit and the outer one's are both enforced; the outer sees the inner's spend."""
        fluxgate.init(sinks=[MemorySink()])
        client = api.client()
        with track_context(budget_usd=2 * ACTUAL + WORST) as outer:
            with track_context(step="inner", budget_usd=WORST) as inner:
                call(client)
                with pytest.raises(BudgetExceeded):
                    call(client)
            assert inner.spent_usd == ACTUAL
            call(client)
            call(client)
            with pytest.raises(BudgetExceeded):
                call(client)
        assert outer.spent_usd == 3 * ACTUAL

    def test_stream_settled_at_real_cost(self, api: FakeAnthropicAPI) -> None:
        """A stream holds its worst case while it runs and is settled at its real cost when it ends."""
        fluxgate.init(sinks=[MemorySink()])
        client = api.client()
        with track_context(budget_usd=WORST * 2) as scope:
            stream = call(client, stream=True)
            assert scope.spent_usd is not None
            assert scope.spent_usd >= WORST
            for _ in stream:
                pass
            assert scope.spent_usd == ACTUAL

    def test_failed_call_costs_nothing(self, api: FakeAnthropicAPI) -> None:
        """A call the API rejects gives its reservation back."""
        fluxgate.init(sinks=[MemorySink()])
        api_error = FakeAnthropicAPI()
        api_error.reply_error(529, "overloaded_error", "Overloaded")
        with track_context(budget_usd=WORST) as scope, pytest.raises(Exception, match="Overloaded"):
            call(api_error.client())
        assert scope.spent_usd == 0


WORKER = textwrap.dedent(
    """
    import sys
    import fluxgate
    from fluxgate import Budget, BudgetExceeded
    from fluxgate.testing import FakeAnthropicAPI
    from tests.budget.test_calls import REQUEST, fixed_usage

    fluxgate.init(budgets=[Budget(sys.argv[1], per="day", name="shared-team-budget")])
    client = FakeAnthropicAPI(responder=fixed_usage).client()
    sent = 0
    try:
        while True:
            client.messages.create(**REQUEST)
            sent += 1
    except BudgetExceeded:
        pass
    fluxgate.flush(timeout_s=30)
    print(sent)
    """
)


@pytest.mark.slow
class TestProcesses:
    def test_eight_processes_share_one_budget(self, tmp_path: Path) -> None:
        """Eight processes spending against one budget never overspend (by more than one worst case)."""
        limit = ACTUAL * 40
        db = tmp_path / "shared.db"
        env = {**os.environ, "PYTHONPATH": str(REPO), "FLUXGATE_DB": str(db)}
        env.pop("ANTHROPIC_API_KEY", None)
        procs = [
            subprocess.Popen([sys.executable, "-c", WORKER, str(limit)], stdout=subprocess.PIPE, env=env, text=True)
            for _ in range(8)
        ]
        sent = sum(int(p.communicate(timeout=120)[0]) for p in procs)
        assert all(p.returncode == 0 for p in procs)
        conn = sqlite3.connect(db)
        spent_pusd, successes = conn.execute(
            "SELECT SUM(cost_pusd), COUNT(*) FROM events WHERE status = 'SUCCESS'"
        ).fetchone()
        conn.close()
        assert successes == sent
        spent = Decimal(spent_pusd) / Decimal(10**12)
        assert spent <= limit + WORST
        assert sent == calls_that_fit(limit)  # and no room was lost either
