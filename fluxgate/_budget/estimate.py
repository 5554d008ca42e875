"""A request's worst-case cost, before it is sent and without the network."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .._models import Usage

__all__ = ["estimate_input_tokens", "worst_case_usd"]


def _utf8_len(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    return len(json.dumps(value, default=str, ensure_ascii=False).encode("utf-8"))


#: Tokens counted for each image or document block (images cost at most
#: ~1,600 tokens; a PDF page about as much): a deliberate over-count.
_MEDIA_BLOCK_TOKENS = 1_600
_MEDIA_PAGE_BYTES = 100_000


def _text_tokens(value: Any) -> int:
    return -(-_utf8_len(value) * 2 // 3) + 1


def estimate_input_tokens(request: Mapping[str, Any]) -> int:
    """A conservative count of a request's input tokens, without the network.

    Text is counted as one token per 1.5 UTF-8 bytes (English prose runs about
    4 bytes per token, code about 3, a CJK character is 3 bytes and about one
    token, hex and base64 strings nearer 1.5), plus 10 tokens per message and
    per request; images count 1,600 tokens each; documents 1,600 per 100 kB of
    payload; tool definitions add 1,000 tokens for the tool-use system prompt
    extended thinking 100 and structured outputs 300. It over-counts ordinary prose about 2.5 times;
    pass an exact count (the free ``count_tokens`` endpoint) where that matters.
    """
    total = 0
    media = 0

    def walk(node: Any) -> None:
        nonlocal total, media
        if isinstance(node, Mapping):
            kind = node.get("type")
            if kind in ("image", "document"):
                source = node.get("source")
                size = _utf8_len(source.get("data")) if isinstance(source, Mapping) else 0
                media += _MEDIA_BLOCK_TOKENS * max(1, -(-size // _MEDIA_PAGE_BYTES))
                return
            for key, value in node.items():
                if key in ("text", "content", "input", "name", "description", "thinking") and isinstance(value, str):
                    total += _text_tokens(value)
                else:
                    walk(value)
        elif isinstance(node, (list, tuple)):
            for item in node:
                walk(item)
        elif node is not None:
            total += _text_tokens(node)

    messages = request.get("messages")
    walk(messages)
    walk(request.get("system"))
    walk(request.get("tools"))
    count = len(messages) if isinstance(messages, (list, tuple)) else 1
    overhead = 10 * count + 10
    if request.get("tools"):
        overhead += 1_000
    if request.get("output_config") or request.get("output_format"):
        overhead += 300  # structured outputs add a schema system prompt
    thinking = request.get("thinking")
    if isinstance(thinking, Mapping) and thinking.get("type") not in (None, "disabled"):
        overhead += 100
    return total + media + overhead


def _has_cache_control(node: Any) -> bool:
    if isinstance(node, Mapping):
        return isinstance(node.get("cache_control"), Mapping) or any(_has_cache_control(v) for v in node.values())
    if isinstance(node, (list, tuple)):
        return any(_has_cache_control(v) for v in node)
    return False


def worst_case_usd(
    prices: Any, model: str | None, request: Mapping[str, Any], input_tokens: int | None = None
) -> Decimal | None:
    """The most a request can cost: all input at its dearest rate, plus ``max_tokens`` of output.

    Input is counted by :func:`estimate_input_tokens` unless ``input_tokens``
    is given (an exact ``count_tokens`` result). A request that asks for
    caching has all its input priced as 1-hour cache writes, the dearest
    input rate. None when the model has no price.
    """
    if model is None:
        return None
    tokens = estimate_input_tokens(request) if input_tokens is None else input_tokens
    max_tokens = request.get("max_tokens")
    output = max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else 0
    cached = _has_cache_control(request)
    speed = request.get("speed")
    geo = request.get("inference_geo")
    usage = Usage(
        input_tokens=0 if cached else tokens,
        output_tokens=output,
        cache_creation_input_tokens=tokens if cached else 0,
        cache_creation_5m_input_tokens=0 if cached else None,
        cache_creation_1h_input_tokens=tokens if cached else None,
        speed=speed if isinstance(speed, str) else None,
        inference_geo=geo if isinstance(geo, str) else None,
    )
    cost = prices.price(model, usage)
    total: Decimal | None = cost.total_usd
    return total
