"""How a call turned out, read off what came back, without side effects.

A call (``_calls``) and its recorders (``_recorders``) both need these: the
status a stop reason means, and a response's headers and body. They live
below both so that neither module imports the other at run time.
"""

from __future__ import annotations

from typing import Any

from .._guard import guarded
from .._models import Status

__all__ = ["STOP_STATUS", "SUCCESS", "header", "read_content", "str_or_none"]

#: ``Status.SUCCESS``, read once: on Python 3.11 reading an enum member off its
#: class takes about 165 ns (1,500 instructions), once per tracked call.
SUCCESS = Status.SUCCESS

#: The status of a call that stopped for this reason; any other reason is SUCCESS.
STOP_STATUS = {
    "max_tokens": Status.MAX_TOKENS,
    "model_context_window_exceeded": Status.MAX_TOKENS,
    "refusal": Status.CONTENT_FILTER,
}


def str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def header(response: Any, name: str = "request-id") -> str | None:
    """A header of an httpx response, or None."""
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    with guarded():
        return str_or_none(headers.get(name))
    return None


def read_content(http: Any) -> bytes | None:
    """The body of an httpx response if it has been read (by anyone), else None; never reads it."""
    try:
        content = http.content
    except Exception:  # noqa: BLE001 - httpx raises ResponseNotRead; any failure means "not read"
        return None
    return content if isinstance(content, bytes) else None
