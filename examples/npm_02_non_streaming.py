"""npm docs, "Messages — non-streaming": a tagged call and its cost.

The npm snippet::

    const message = await anthropic
      .withContext({
        feature: "summarization",
        user: { id: session.user.id, email: session.user.email },
        sessionId: session.id,
      })
      .messages.create({ model: "claude-sonnet-4-6", max_tokens: 1024,
                         messages: [{ role: "user", content: userPrompt }] });
    const { cost, trackingId } = message.fluxGateCostTrackingResponse;

Run: ``python examples/npm_02_non_streaming.py``; offline unless ``ANTHROPIC_API_KEY`` is set.
"""

from __future__ import annotations

from _shared import anthropic, finish

from fluxgate import AiEventUser

# Stand-ins for the web session and the prompt of the npm snippet.
SESSION = {"id": "sess-7f3a", "user": {"id": "user-123", "email": "ada@example.com"}}
USER_PROMPT = "Summarise in one sentence: fluxgate records what every Claude call costs."


def main() -> None:
    message = anthropic.with_context(
        feature="summarization",
        user=AiEventUser(SESSION["user"]["id"], email=SESSION["user"]["email"]),
        session_id=SESSION["id"],
    ).messages.create(
        model="claude-sonnet-4-6",
        max_tokens=1024,
        messages=[{"role": "user", "content": USER_PROMPT}],
    )

    text = message.content[0].text if message.content[0].type == "text" else ""
    response = message.fluxgate_cost_tracking_response
    cost, tracking_id = response.cost, response.tracking_id

    print(f"text: {text}")
    print(f"cost=${cost:.6f} tracking_id={tracking_id} status={response.status}")
    [event] = finish()
    assert (event.feature, event.user_id, event.session_id) == ("summarization", "user-123", "sess-7f3a")


if __name__ == "__main__":
    main()
