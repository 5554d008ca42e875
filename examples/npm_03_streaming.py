"""npm docs, "Messages — streaming": ``stream: true``, then the cost once the stream closes.

The npm snippet::

    const stream = await anthropic
      .withContext({ feature: "streaming-chat" })
      .messages.create({ model: "claude-sonnet-4-6", max_tokens: 1024,
                         messages: [{ role: "user", content: prompt }], stream: true });
    for await (const event of stream) {
      if (event.type === "content_block_delta" && event.delta.type === "text_delta") {
        process.stdout.write(event.delta.text);
      }
    }
    console.log(stream.fluxGateCostTrackingResponse);   // available after the stream closes

Run: ``python examples/npm_03_streaming.py``; offline unless ``ANTHROPIC_API_KEY`` is set.
"""

from __future__ import annotations

import sys

from _shared import anthropic, finish, show

PROMPT = "Write two sentences about rivers."


def main() -> None:
    stream = anthropic.with_context(feature="streaming-chat").messages.create(
        model="claude-sonnet-4-6",
        max_tokens=1024,
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
    )

    for event in stream:
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            sys.stdout.write(event.delta.text)
    print()

    # Available after the stream closes (None while it is still being read).
    show("stream", stream)
    [event] = finish()
    assert event.streamed
    assert event.feature == "streaming-chat"


if __name__ == "__main__":
    main()
