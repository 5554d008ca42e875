"""npm docs, "Rich user attribution": a user with monthly revenue, for spend/revenue views.

The npm snippet::

    await anthropic
      .withContext({
        feature: "premium-chat",
        user: { id: currentUser.id, name: currentUser.name, email: currentUser.email,
                monthlyRevenue: currentUser.mrr },   // optional: spend/revenue ratio charts
        conversationId: thread.id,
      })
      .messages.create({ model: "claude-sonnet-4-6", max_tokens: 2048, messages });

In Python the user object is a :class:`fluxgate.AiEventUser` and ``monthlyRevenue``
is ``monthly_revenue`` (USD per month).

Run: ``python examples/npm_04_rich_user.py``; offline unless ``ANTHROPIC_API_KEY`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass

from _shared import anthropic, finish, show

from fluxgate import AiEventUser


@dataclass(frozen=True)
class CurrentUser:
    id: str
    name: str
    email: str
    mrr: float


CURRENT_USER = CurrentUser(id="user-42", name="Grace Hopper", email="grace@example.com", mrr=49.0)
THREAD_ID = "thread-9c1"
MESSAGES = [{"role": "user", "content": "Plan a three-step onboarding email sequence."}]


def main() -> None:
    message = anthropic.with_context(
        feature="premium-chat",
        user=AiEventUser(
            CURRENT_USER.id,
            name=CURRENT_USER.name,
            email=CURRENT_USER.email,
            monthly_revenue=CURRENT_USER.mrr,  # optional: used in spend/revenue ratio charts
        ),
        conversation_id=THREAD_ID,
    ).messages.create(model="claude-sonnet-4-6", max_tokens=2048, messages=MESSAGES)

    show("message", message)
    [event] = finish()
    assert event.user is not None
    revenue = event.user.monthly_revenue or 0.0
    print(
        f"user={event.user.id} ({event.user.name}) monthly_revenue=${revenue:.2f} conversation={event.conversation_id}"
    )
    if event.cost_usd is not None and revenue:
        print(f"this call is {float(event.cost_usd) / revenue:.6%} of the user's monthly revenue")


if __name__ == "__main__":
    main()
