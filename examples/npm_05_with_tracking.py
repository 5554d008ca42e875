"""npm docs, "Per-call context fork (withTracking)": override fields for one call only.

The npm snippet::

    const session = anthropic.withContext({ feature: "chat", user: "user-123", conversationId: "conv-abc" });
    // Tag only this turn: session context is unaffected
    const reply = await session.messages.withTracking({ step: "follow-up" })
      .create({ model: "claude-opus-4-5", max_tokens: 1024, messages: history });
    // Works for beta.messages too
    const thinkingReply = await session.beta.messages.withTracking({ step: "reasoning" })
      .create({ model: "claude-opus-4-5", max_tokens: 8000, messages,
                betas: ["interleaved-thinking-2025-05-14"] });

New fields are shallowly merged on top of the session's: a field given to
``with_tracking`` replaces the session's whole (``metadata`` included).

Run: ``python examples/npm_05_with_tracking.py``; offline unless ``ANTHROPIC_API_KEY`` is set.
"""

from __future__ import annotations

from _shared import anthropic, finish, show

HISTORY = [
    {"role": "user", "content": "What is a monad?"},
    {"role": "assistant", "content": "A way to chain computations that carry context."},
    {"role": "user", "content": "Give me a one-line example."},
]
MESSAGES = [{"role": "user", "content": "Is 1001 prime? Answer briefly."}]


def main() -> None:
    session = anthropic.with_context(feature="chat", user="user-123", conversation_id="conv-abc")

    # Tag only this turn: the session's context is unaffected.
    reply = session.messages.with_tracking(step="follow-up").create(
        model="claude-opus-4-5",
        max_tokens=1024,
        messages=HISTORY,
    )
    show("reply", reply)

    # Works for beta.messages too.
    thinking_reply = session.beta.messages.with_tracking(step="reasoning").create(
        model="claude-opus-4-5",
        max_tokens=8000,
        messages=MESSAGES,
        betas=["interleaved-thinking-2025-05-14"],
    )
    show("thinking_reply", thinking_reply)

    print(f"session context after both calls: step={session.context.step!r}")
    follow_up, reasoning = finish()
    assert (follow_up.step, reasoning.step, session.context.step) == ("follow-up", "reasoning", None)
    assert follow_up.conversation_id == reasoning.conversation_id == "conv-abc"


if __name__ == "__main__":
    main()
