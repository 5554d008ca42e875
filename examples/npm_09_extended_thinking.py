"""npm docs, "Beta features (extended thinking)": reasoning tokens are billed and costed.

The npm snippet::

    const message = await anthropic.withContext({ feature: "reasoning-agent" })
      .beta.messages.create({ model: "claude-opus-4-5", max_tokens: 16000,
                              thinking: { type: "enabled", budget_tokens: 10000 },
                              messages: [{ role: "user", content: complexProblem }],
                              betas: ["interleaved-thinking-2025-05-14"] });
    const { cost, trackingId } = message.fluxGateCostTrackingResponse;
    // cost includes input + output + reasoning tokens

Thinking tokens are part of ``usage.output_tokens`` (the billed total), so the
cost includes them; ``reasoning_tokens`` is filled in only when the API reports
the split (``usage.output_tokens_details``). Offline, the fake API answers with
a scripted reply that has a thinking block.

Run: ``python examples/npm_09_extended_thinking.py``; offline unless ``ANTHROPIC_API_KEY`` is set.
"""

from __future__ import annotations

from _shared import anthropic, fake_api, finish

COMPLEX_PROBLEM = "How many positive integers below 1000 are divisible by 7 but not by 11?"

THINKING_REPLY = {
    "id": "msg_fake_thinking",
    "type": "message",
    "role": "assistant",
    "model": "claude-opus-4-5",
    "content": [
        {
            "type": "thinking",
            "thinking": "Multiples of 7 below 1000: 142. Multiples of 77 below 1000: 12. 142 - 12 = 130.",
            "signature": "fake-signature",
        },
        {"type": "text", "text": "130"},
    ],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    # output_tokens is the billed total: the thinking and the answer together.
    "usage": {
        "input_tokens": 58,
        "output_tokens": 1843,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    },
}


def main() -> None:
    if fake_api is not None:
        fake_api.reply_json(THINKING_REPLY)

    message = anthropic.with_context(feature="reasoning-agent").beta.messages.create(
        model="claude-opus-4-5",
        max_tokens=16000,
        thinking={"type": "enabled", "budget_tokens": 10000},
        messages=[{"role": "user", "content": COMPLEX_PROBLEM}],
        betas=["interleaved-thinking-2025-05-14"],
    )

    response = message.fluxgate_cost_tracking_response
    cost, tracking_id = response.cost, response.tracking_id
    # cost includes input + output + reasoning tokens
    kinds = [block.type for block in message.content]
    print(f"content blocks: {kinds}")
    print(f"cost=${cost:.6f} tracking_id={tracking_id}")

    [event] = finish()
    reasoning = "inside output_tokens" if event.reasoning_tokens is None else event.reasoning_tokens
    print(f"input_tokens={event.input_tokens} output_tokens={event.output_tokens} reasoning_tokens={reasoning}")
    assert "thinking" in kinds


if __name__ == "__main__":
    main()
