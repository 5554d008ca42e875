"""The calls a fake API answered, as Anthropic's usage and cost reports would bill them.

``fluxgate.testing.FakeAnthropicAPI`` adds every Messages reply it sends with
a 200 to an :class:`AnsweredCalls`, and serves its Admin reports from it (see
``fake_admin``), so ``fluxgate reconcile`` against the fake finds every call
fluxgate tracked billed at the same price.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, overload

from .._models import Usage
from .fake_admin import AnsweredCall

if TYPE_CHECKING:
    from .._pricing import PriceTable

__all__ = ["AnsweredCalls"]


class AnsweredCalls(Sequence[AnsweredCall]):
    """The Messages calls a fake API answered, each billed the first time it is read.

    :meth:`add_reply` records only a reply's model and usage: pricing can log
    (an unknown model is warned about once), and a test's log must not change
    because a fake answered a call. Each call is billed at fluxgate's price
    from the table given with it (the one that tracked it), so the reports
    bill what fluxgate tracked. It is read on every request, so it may grow
    while :func:`serve_admin_api` serves it.
    """

    def __init__(self) -> None:
        self._answers: list[tuple[int, dict[str, Any], PriceTable | None]] = []
        self._billed: list[AnsweredCall] = []
        self._lock = threading.Lock()

    def add_reply(
        self, content_type: str, content: bytes, *, prices: PriceTable | None = None, at_ms: int | None = None
    ) -> None:
        """Remember the call behind a Messages reply: a JSON message, or a stream's server-sent events."""
        body = _reply_body(content_type, content)
        if body is not None:
            when = time.time_ns() // 1_000_000 if at_ms is None else at_ms
            with self._lock:
                self._answers.append((when, body, prices))

    def __len__(self) -> int:
        return len(self._answers)

    @overload
    def __getitem__(self, index: int) -> AnsweredCall: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[AnsweredCall]: ...
    def __getitem__(self, index: int | slice) -> AnsweredCall | Sequence[AnsweredCall]:
        with self._lock:
            while len(self._billed) < len(self._answers):
                self._billed.append(_bill(*self._answers[len(self._billed)]))
            return self._billed[index]


def _reply_body(content_type: str, content: bytes) -> dict[str, Any] | None:
    """``{"model": ..., "usage": {...}}`` of a Messages reply, or ``None`` when it has none."""
    body: dict[str, Any] = {}
    try:
        if "text/event-stream" in content_type:
            for line in content.decode().splitlines():
                if not line.startswith("data:"):
                    continue
                data = json.loads(line[5:])
                if data.get("type") == "message_start":
                    body = {"model": data["message"].get("model"), "usage": dict(data["message"].get("usage") or {})}
                elif data.get("type") == "message_delta" and body:
                    body["usage"].update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
        else:
            body = json.loads(content)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(body, dict) or not isinstance(body.get("usage"), dict) or not isinstance(body.get("model"), str):
        return None
    return {"model": body["model"], "usage": body["usage"]}


def _bill(at_ms: int, body: dict[str, Any], prices: PriceTable | None) -> AnsweredCall:
    """The call as the reports bill it: at fluxgate's price for its model and usage."""
    from .._pricing import PriceTable

    usage = body["usage"]
    cache, tools = usage.get("cache_creation") or {}, usage.get("server_tool_use") or {}
    cost = (prices or PriceTable.default()).price(
        body["model"],
        Usage(
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            cache_creation_input_tokens=int(usage.get("cache_creation_input_tokens") or 0),
            cache_creation_5m_input_tokens=cache.get("ephemeral_5m_input_tokens"),
            cache_creation_1h_input_tokens=cache.get("ephemeral_1h_input_tokens"),
            cache_read_input_tokens=int(usage.get("cache_read_input_tokens") or 0),
            web_search_requests=int(tools.get("web_search_requests") or 0),
            service_tier=usage.get("service_tier"),
        ),
        at_ms=at_ms,
    )
    return AnsweredCall.from_response(body, at_ms=at_ms, cost_usd=cost.total_usd, cost_breakdown=cost.breakdown)
