"""fluxgate.testing: the fake Messages API behaves like the real one where costs depend on it."""

from __future__ import annotations

from typing import Any

import fluxgate
from fluxgate._recording.usage import get
from fluxgate.testing import FakeAnthropicAPI, MemorySink, capture_events

DOCS = "Refund policy: refunds within 30 days. " * 200


def ask(client: Any, question: str, ttl: str | None = None) -> Any:
    control: dict[str, str] = {"type": "ephemeral"}
    if ttl:
        control["ttl"] = ttl
    return client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=400,
        system=[{"type": "text", "text": DOCS, "cache_control": control}],
        messages=[{"role": "user", "content": question}],
    )


class TestFakeCaching:
    def test_first_call_writes_then_reads(self) -> None:
        """A cached prefix is written on first use (5-minute TTL) and read afterwards."""
        api = FakeAnthropicAPI()
        client = api.client()
        first = ask(client, "Can I get a refund?").usage
        second = ask(client, "How long do refunds take?").usage
        assert first.cache_creation_input_tokens > 1000
        # Old SDKs keep cache_creation as an undeclared dict; new ones as a model.
        assert get(get(first, "cache_creation"), "ephemeral_5m_input_tokens") == first.cache_creation_input_tokens
        assert first.cache_read_input_tokens == 0
        assert second.cache_read_input_tokens == first.cache_creation_input_tokens
        assert second.cache_creation_input_tokens == 0

    def test_one_hour_ttl(self) -> None:
        """A 1-hour cache_control is reported as a 1-hour write."""
        usage = ask(FakeAnthropicAPI().client(), "hi", ttl="1h").usage
        assert get(get(usage, "cache_creation"), "ephemeral_1h_input_tokens") == usage.cache_creation_input_tokens > 0

    def test_events_carry_the_split(self) -> None:
        """Tracked calls record the write split and the read, priced at their rates."""
        api = FakeAnthropicAPI()
        with capture_events() as events:
            ask(api.client(), "a")
            ask(api.client(), "b")
        write, read = events
        assert write.cache_creation_5m_input_tokens == write.cache_creation_input_tokens > 0
        assert read.cache_read_input_tokens == write.cache_creation_input_tokens
        assert write.cost_breakdown["cache_write_5m"] > 0
        assert read.cost_breakdown["cache_read"] > 0

    def test_reply_length_varies_with_the_prompt(self) -> None:
        """Different prompts get different reply lengths; the same prompt the same one."""
        client = FakeAnthropicAPI().client()
        lengths = {
            client.messages.create(
                model="claude-sonnet-4-6", max_tokens=1000, messages=[{"role": "user", "content": f"q{i}"}]
            ).usage.output_tokens
            for i in range(10)
        }
        assert len(lengths) > 3


class TestMemorySink:
    def test_retried_batch_kept_once(self) -> None:
        """MemorySink de-duplicates on tracking_id, like a real store."""
        sink = MemorySink()
        fluxgate.init(sinks=[sink])
        FakeAnthropicAPI().client().messages.create(
            model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
        assert fluxgate.flush(timeout_s=10)
        sink.write(list(sink.events))
        assert len(sink.events) == 1
