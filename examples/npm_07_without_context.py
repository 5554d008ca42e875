"""npm docs, "Without context": ``.client`` gives tracked calls with no feature tag.

The npm snippet::

    const message = await anthropic.client.messages.create({
      model: "claude-haiku-3", max_tokens: 256, messages: [{ role: "user", content: "ping" }],
    });

``claude-haiku-3`` is not a model id the API knows; the Python twin uses
``claude-haiku-4-5``, the current small model.

Run: ``python examples/npm_07_without_context.py``; offline unless ``ANTHROPIC_API_KEY`` is set.
"""

from __future__ import annotations

from _shared import anthropic, finish, show


def main() -> None:
    message = anthropic.client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=256,
        messages=[{"role": "user", "content": "ping"}],
    )
    show("health check", message)
    [event] = finish()
    assert event.feature is None


if __name__ == "__main__":
    main()
