"""npm docs, "One-time setup": build the tracked client once and share it.

The npm package's ``lib/anthropic.ts``::

    const _client = new Anthropic({ apiKey: process.env.ANTHROPIC_API_KEY! });
    const fg = new FluxGate({ apiKey: process.env.FLUXGATE_API_KEY! });
    export const anthropic = createAnthropicCostTracker(_client, fg);

In Python it is a module such as ``myapp/llm.py`` (``_shared.py`` is the one
the other examples import). Run: ``python examples/npm_01_setup.py``; offline
unless ``ANTHROPIC_API_KEY`` is set.
"""

from __future__ import annotations

import os

from anthropic import Anthropic

import fluxgate
from fluxgate.anthropic import create_anthropic_cost_tracker
from fluxgate.testing import FakeAnthropicAPI, MemorySink


def main() -> None:
    # new Anthropic({ apiKey }): the real client when the key is set, else the in-process fake.
    if os.environ.get("ANTHROPIC_API_KEY"):
        _client = Anthropic(api_key=os.environ["ANTHROPIC_API_KEY"])
    else:
        _client = FakeAnthropicAPI().client()

    # new FluxGate({ apiKey }): FLUXGATE_ENDPOINT and FLUXGATE_API_KEY, when set, add the
    # ingest endpoint; the MemorySink keeps this example from writing any file.
    sink = MemorySink()
    fg = fluxgate.FluxGate(sinks=[sink])

    anthropic = create_anthropic_cost_tracker(_client, fg)
    print(f"tracked client: {anthropic!r}")

    message = anthropic.with_context(feature="setup-check").messages.create(
        model="claude-haiku-4-5",
        max_tokens=64,
        messages=[{"role": "user", "content": "Say hello in five words."}],
    )
    response = message.fluxgate_cost_tracking_response
    print(f"status={response.status} cost=${response.cost:.6f} tracking_id={response.tracking_id}")

    fg.shutdown(timeout_s=10)
    [event] = sink.events
    print(f"recorded: feature={event.feature} model={event.model} cost=${event.cost_usd}")


if __name__ == "__main__":
    main()
