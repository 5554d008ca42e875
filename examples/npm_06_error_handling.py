"""npm docs, "Error handling": a failed call is recorded (status ERROR) before it propagates.

The npm snippet::

    try {
      const message = await anthropic.withContext({ feature: "code-review" })
        .messages.create({ model: "claude-sonnet-4-6", max_tokens: 4096, messages });
    } catch (err) {
      // Already recorded in FluxGate: just re-throw
      throw err;
    }

Offline, the fake API answers 529 (overloaded); against the real API the call
names a model that does not exist, so it fails with 404.

Run: ``python examples/npm_06_error_handling.py``; offline unless ``ANTHROPIC_API_KEY`` is set.
"""

from __future__ import annotations

from typing import Any

from _shared import anthropic, fake_api, finish, show
from anthropic import APIStatusError

MESSAGES = [{"role": "user", "content": "Review: def add(a, b): return a - b"}]


def review(model: str) -> Any:
    """The npm snippet, line for line."""
    try:
        message = anthropic.with_context(feature="code-review").messages.create(
            model=model,
            max_tokens=4096,
            messages=MESSAGES,
        )
    except APIStatusError:
        # Already recorded in FluxGate: just re-raise.
        raise
    return message


def main() -> None:
    model = "claude-sonnet-4-6"
    if fake_api is not None:
        fake_api.reply_error(529, "overloaded_error", "Overloaded")
    else:
        model = "claude-no-such-model"  # a real API error, at no cost

    try:
        review(model)
    except APIStatusError as err:  # your own error pipeline
        print(f"caught {type(err).__name__} (HTTP {err.status_code}), already recorded:")
        show("error", err)
    else:
        raise SystemExit("expected the call to fail")

    [event] = finish()
    assert event.status.value in ("ERROR", "MALFORMED_REQUEST")
    assert event.feature == "code-review"


if __name__ == "__main__":
    main()
