"""What the ``npm_*`` examples share: the Python twin of the npm docs' ``lib/anthropic.ts``.

Offline by default: without ``ANTHROPIC_API_KEY`` the anthropic client talks to
``fluxgate.testing.FakeAnthropicAPI`` in process, so the examples run anywhere
and cost nothing. With the key set, the client is a real ``anthropic.Anthropic()``
and the calls are real (and billed).

Events go to a :class:`~fluxgate.testing.MemorySink`, so the examples leave no
files behind; with ``FLUXGATE_ENDPOINT`` (and ``FLUXGATE_API_KEY``) set, the
FluxGate also sends them to that ingest endpoint.
"""

from __future__ import annotations

import os
from typing import Any

from anthropic import Anthropic

import fluxgate
from fluxgate.anthropic import create_anthropic_cost_tracker
from fluxgate.testing import FakeAnthropicAPI, MemorySink

#: The fake API when offline (script special replies on it), None against the real API.
fake_api: FakeAnthropicAPI | None = None if os.environ.get("ANTHROPIC_API_KEY") else FakeAnthropicAPI()

_client: Anthropic = Anthropic() if fake_api is None else fake_api.client()

sink = MemorySink()
fg = fluxgate.FluxGate(sinks=[sink])

anthropic = create_anthropic_cost_tracker(_client, fg)


def show(label: str, obj: Any) -> None:
    """Print what fluxgate hung on a message, a stream or an exception."""
    response = getattr(obj, "fluxgate_cost_tracking_response", None)
    if response is None:
        print(f"{label}: no fluxgate_cost_tracking_response")
        return
    cost = "unpriced" if response.cost is None else f"${response.cost:.6f}"
    print(
        f"{label}: status={response.status} cost={cost} tracking_id={response.tracking_id} "
        f"created_at={response.created_at}"
        + (f" error_message={response.error_message!r}" if response.error_message else "")
    )


def finish() -> list[fluxgate.CostEvent]:
    """Deliver what was recorded, print one line per event and stop the FluxGate."""
    fg.shutdown(timeout_s=10)
    for event in sink.events:
        cost = "unpriced" if event.cost_usd is None else f"${event.cost_usd}"
        user = f" user={event.user_id}" if event.user_id else ""
        step = f" step={event.step}" if event.step else ""
        print(
            f"recorded: {event.api} feature={event.feature}{user}{step} model={event.model} "
            f"status={event.status} in={event.input_tokens} out={event.output_tokens} cost={cost}"
        )
    return sink.events
