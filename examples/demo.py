"""A small support-desk app whose Claude calls are costed by feature, user and step.

Run it with ``make demo``. Without ``ANTHROPIC_API_KEY`` it talks to fluxgate's
in-process fake of the Messages API (real wire format, realistic usage); with
the key set it calls the real API (a few cheap Haiku calls).

It shows:
- a decorated endpoint (``@track(feature=...)``),
- a multi-step pipeline with nested steps,
- a streamed chat,
- one failing call, recorded before its exception reaches the app,
then prints what the local SQLite store recorded, per feature and step.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from decimal import Decimal
from typing import Any

import anthropic

import fluxgate
from fluxgate import AiEventUser, track, track_context
from fluxgate._store import default_db_path
from fluxgate.testing import FakeAnthropicAPI, FakeReply, FakeRequest

MODEL = "claude-haiku-4-5"


def invalid_requests_fail(request: FakeRequest) -> FakeReply | None:
    """Make the fake reject what the real API rejects: max_tokens below 1."""
    body = request.body if isinstance(request.body, dict) else {}
    if int(body.get("max_tokens", 1)) < 1:
        error = {"type": "invalid_request_error", "message": "max_tokens: must be greater than or equal to 1"}
        return FakeReply(status=400, json_body={"type": "error", "error": error})
    return None


def make_clients() -> tuple[Any, Any, str]:
    if os.environ.get("ANTHROPIC_API_KEY"):
        return anthropic.Anthropic(), anthropic.AsyncAnthropic(), "the real Anthropic API"
    fake = FakeAnthropicAPI(responder=invalid_requests_fail)
    return fake.client(), fake.async_client(), "the in-process fake API (set ANTHROPIC_API_KEY for the real one)"


# The help-centre articles every answer is grounded in: sent with each
# pipeline step and cached, so after the first step they are read from the
# prompt cache at a tenth of the input price.
KNOWLEDGE_BASE = "\n".join(
    f"Article {n}: how to export data, manage invoices and reset passwords, step {n}." for n in range(1, 120)
)


def ask(client: Any, prompt: str, max_tokens: int = 200, *, grounded: bool = False) -> str:
    extra: dict[str, Any] = {}
    if grounded:
        extra["system"] = [{"type": "text", "text": KNOWLEDGE_BASE, "cache_control": {"type": "ephemeral"}}]
    message = client.messages.create(
        model=MODEL, max_tokens=max_tokens, messages=[{"role": "user", "content": prompt}], **extra
    )
    return "".join(block.text for block in message.content if block.type == "text")


# -- the app ----------------------------------------------------------------


@track(feature="ticket-summary")
def summarize_ticket(client: Any, ticket: str) -> str:
    """An endpoint: one call, tagged with its feature."""
    return ask(client, f"Summarize this support ticket in one sentence:\n{ticket}", max_tokens=400)


@track(feature="answer-pipeline")
def answer_question(client: Any, question: str) -> str:
    """A pipeline: retrieve, rerank, then draft; each step is its own scope."""
    with track_context(step="expand-query"):
        queries = ask(client, f"Give three search queries for: {question}", max_tokens=80)
    with track_context(step="rerank", metadata={"candidates": 12}):
        ask(client, f"Rank articles for relevance to {question!r}:\n{queries}", max_tokens=60, grounded=True)
    with track_context(step="draft"):
        draft = ask(client, f"Answer the customer: {question}", max_tokens=400, grounded=True)
        with track_context(step="draft/self-check"):
            ask(client, f"Check this answer against the articles:\n{draft}", max_tokens=400, grounded=True)
    return draft


async def chat(client: Any, prompt: str) -> str:
    """A streamed chat reply, as a web handler would relay it."""
    parts: list[str] = []
    async with track_context(feature="live-chat", step="reply"):
        stream = await client.messages.create(
            model=MODEL, max_tokens=200, messages=[{"role": "user", "content": prompt}], stream=True
        )
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                parts.append(event.delta.text)
    return "".join(parts)


def broken_call(client: Any) -> None:
    """A call the API refuses; fluxgate records it, then the app sees the error."""
    with track_context(feature="ticket-summary", step="retry-with-bad-settings"):
        try:
            ask(client, "This request is invalid.", max_tokens=0)
        except anthropic.BadRequestError as exc:
            response = exc.fluxgate_cost_tracking_response  # type: ignore[attr-defined]
            print(f"  expected failure recorded: {response.status} ({response.error_message})")


# -- the report -------------------------------------------------------------


def print_recorded(db: str) -> None:
    conn = sqlite3.connect(db)
    rows = conn.execute(
        """
        SELECT COALESCE(feature, '-'), COALESCE(step, '-'), COUNT(*), SUM(cost_pusd),
               SUM(input_tokens), SUM(output_tokens), GROUP_CONCAT(DISTINCT status)
        FROM events GROUP BY feature, step ORDER BY feature, step
        """
    ).fetchall()
    conn.close()
    print(f"\nRecorded in {db}:\n")
    print(f"  {'feature':<17} {'step':<25} {'calls':>5} {'cost (USD)':>14} {'in':>7} {'out':>6}  statuses")
    total = Decimal(0)
    for feature, step, calls, pusd, tokens_in, tokens_out, statuses in rows:
        cost = Decimal(pusd or 0) / Decimal(10**12)
        total += cost
        print(f"  {feature:<17} {step:<25} {calls:>5} {cost:>14.8f} {tokens_in:>7} {tokens_out:>6}  {statuses}")
    print(f"\n  total cost: ${total:.8f}")


def main() -> int:
    db = str(default_db_path())
    fluxgate.init(db_path=db)
    client, async_client, where = make_clients()
    print(f"Talking to {where}.\n")

    customer = AiEventUser("cust-042", name="Acme Corp", monthly_revenue=499.0)
    with track_context(user=customer, session_id="sess-1"):
        print("  summary:", summarize_ticket(client, "My invoice shows two charges for November.")[:70], "...")
        print("  answer: ", answer_question(client, "How do I export my data?")[:70], "...")
    with track_context(user=AiEventUser("cust-007", name="Tiny Shop", monthly_revenue=9.0), session_id="sess-2"):
        for question in ("Where is my invoice?", "Can I change my plan?", "Why was I charged twice?"):
            answer_question(client, question)
        print("  chat:   ", asyncio.run(chat(async_client, "Say hello to Acme."))[:70], "...")
        broken_call(client)

    if not fluxgate.flush(timeout_s=10):
        print("some events could not be delivered in time", file=sys.stderr)
        return 1
    print_recorded(db)
    fluxgate.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
