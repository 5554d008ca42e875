"""``fluxgate.anthropic`` as users write it: mypy checks this file, pytest never runs it.

The tracked objects must keep anthropic's own signatures and overloads, so a
wrong argument fails here exactly as it would on the plain client.
"""

from __future__ import annotations

from typing import Any

import anthropic
from anthropic import AsyncStream, Stream
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.beta import BetaMessage
from typing_extensions import assert_type

import fluxgate
from fluxgate import AiEventUser, ContextFrame
from fluxgate.anthropic import (
    AsyncTrackedBeta,
    AsyncTrackedMessages,
    TrackedBeta,
    TrackedBetaMessages,
    TrackedClient,
    TrackedMessages,
    TrackedSession,
    create_anthropic_cost_tracker,
)

HELLO: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Hello"}]


def sync_usage(fg: fluxgate.FluxGate) -> None:
    tracked = create_anthropic_cost_tracker(anthropic.Anthropic(), fg)
    assert_type(tracked, TrackedClient[TrackedMessages, TrackedBeta])

    session = tracked.with_context(
        feature="summarization",
        user=AiEventUser("u1", email="u1@example.com", monthly_revenue=49.0),
        session_id="s1",
        conversation_id="c1",
        step="draft",
        service_tier="standard",
        metadata={"doc": 7},
    )
    assert_type(session, TrackedSession[TrackedMessages, TrackedBeta])
    assert_type(session.context, ContextFrame)

    message = session.messages.create(model="claude-sonnet-4-6", max_tokens=1024, messages=HELLO)
    assert_type(message, Message)
    text: str = message.content[0].text if message.content[0].type == "text" else ""

    stream = session.messages.create(model="claude-sonnet-4-6", max_tokens=1024, messages=HELLO, stream=True)
    assert_type(stream, Stream[RawMessageStreamEvent])

    reply = session.messages.with_tracking(step="follow-up").create(
        model="claude-opus-4-5", max_tokens=1024, messages=HELLO
    )
    assert_type(reply, Message)

    thinking = session.beta.messages.with_tracking(step="reasoning").create(
        model="claude-opus-4-5",
        max_tokens=8000,
        messages=[{"role": "user", "content": "Why?"}],
        thinking={"type": "enabled", "budget_tokens": 4000},
        betas=["interleaved-thinking-2025-05-14"],
    )
    assert_type(thinking, BetaMessage)
    assert_type(session.beta.messages, TrackedBetaMessages)

    with session.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=HELLO) as events:
        for chunk in events.text_stream:
            text += chunk

    untagged = tracked.client.messages.create(model="claude-haiku-4-5", max_tokens=256, messages=HELLO)
    assert_type(untagged, Message)
    assert_type(tracked.messages, TrackedMessages)
    legacy: Any = tracked.with_context(feature="legacy").completions

    session.messages.create(model="claude-sonnet-4-6", max_tokens="many", messages=HELLO)  # type: ignore[call-overload]
    tracked.with_context(user="u1")  # type: ignore[call-arg]
    session.messages.with_tracking(step=3)  # type: ignore[arg-type]
    del legacy


async def async_usage(fg: fluxgate.FluxGate) -> None:
    tracked = create_anthropic_cost_tracker(anthropic.AsyncAnthropic(), fg)
    assert_type(tracked, TrackedClient[AsyncTrackedMessages, AsyncTrackedBeta])
    session = tracked.with_context(feature="chat")

    message = await session.messages.create(model="claude-sonnet-4-6", max_tokens=1024, messages=HELLO)
    assert_type(message, Message)

    stream = await session.messages.with_tracking(step="s").create(
        model="claude-sonnet-4-6", max_tokens=1024, messages=HELLO, stream=True
    )
    assert_type(stream, AsyncStream[RawMessageStreamEvent])

    beta = await session.beta.messages.create(
        model="claude-opus-4-5", max_tokens=64, messages=[{"role": "user", "content": "Hello"}]
    )
    assert_type(beta, BetaMessage)


def other_clients(fg: fluxgate.FluxGate, client: object) -> None:
    tracked = create_anthropic_cost_tracker(client, fg)
    assert_type(tracked, TrackedClient[Any, Any])
