"""Helpers shared by test modules: canned messages, stream events and exact prices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import fluxgate
from fluxgate import CostEvent
from fluxgate.testing import MemorySink

MTOK = Decimal(1_000_000)
# Claude Sonnet 4.6, $ per million tokens (anthropic-pricing.md, P2-P4).
SONNET_46_IN, SONNET_46_OUT = Decimal(3), Decimal(15)
HELLO = [{"role": "user", "content": "Hello"}]


def sonnet_46_cost(input_tokens: int, output_tokens: int) -> Decimal:
    return input_tokens * SONNET_46_IN / MTOK + output_tokens * SONNET_46_OUT / MTOK


def message_body(
    *, input_tokens: int = 120, output_tokens: int = 30, stop_reason: str = "end_turn", model: str = "claude-sonnet-4-6"
) -> dict[str, Any]:
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def stream_events(
    *, input_tokens: int = 120, output_tokens: int = 30, stop_reason: str = "end_turn"
) -> list[dict[str, Any]]:
    return [
        {
            "type": "message_start",
            "message": {**message_body(input_tokens=input_tokens, output_tokens=1), "content": [], "stop_reason": None},
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
        {"type": "message_stop"},
    ]


def flushed(sink: MemorySink) -> list[CostEvent]:
    assert fluxgate.flush(timeout_s=10)
    return sink.events


def create(client: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("model", "claude-sonnet-4-6")
    kwargs.setdefault("max_tokens", 256)
    kwargs.setdefault("messages", HELLO)
    return client.messages.create(**kwargs)
