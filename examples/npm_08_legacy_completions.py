"""npm docs, "Legacy text completions": ``completions.create`` is tracked where the SDK has it.

The npm snippet::

    const completion = await anthropic.withContext({ feature: "legacy-completion" })
      .completions.create({ model: "claude-2.1", max_tokens_to_sample: 512,
                            prompt: `\\n\\nHuman: ${userPrompt}\\n\\nAssistant:` });
    console.log(completion.completion);

Only anthropic releases up to 0.125 have ``client.completions``; on newer ones
this example says so and exits 0. The legacy API reports no token usage, so
the event has no cost. Against the real API ``claude-2.1`` is retired: the
call fails, and the failure is what gets recorded. Prefer ``messages.create``
for all new work.

Run: ``python examples/npm_08_legacy_completions.py``; offline unless ``ANTHROPIC_API_KEY`` is set.
"""

from __future__ import annotations

from _shared import anthropic, fake_api, finish, show
from anthropic import APIStatusError

USER_PROMPT = "Say hello."


def main() -> None:
    session = anthropic.with_context(feature="legacy-completion")
    try:
        completions = session.completions
    except AttributeError as err:
        print(f"skipped: {err}")
        finish()
        return

    if fake_api is not None:
        fake_api.reply_json(
            {
                "type": "completion",
                "id": "compl_01EjfrPvPEsRDRUKD6VoBxtK",
                "completion": " Hello! How can I help you today?",
                "stop_reason": "stop_sequence",
                "model": "claude-2.1",
                "stop": "\n\nHuman:",
                "log_id": "compl_01EjfrPvPEsRDRUKD6VoBxtK",
            }
        )
    try:
        completion = completions.create(
            model="claude-2.1",
            max_tokens_to_sample=512,
            prompt=f"\n\nHuman: {USER_PROMPT}\n\nAssistant:",
        )
    except APIStatusError as err:
        print(f"the API refused the legacy call (HTTP {err.status_code}); recorded anyway:")
        show("error", err)
    else:
        print(completion.completion)
        show("completion", completion)
    [event] = finish()
    assert event.feature == "legacy-completion"


if __name__ == "__main__":
    main()
