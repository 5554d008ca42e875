"""The SDK's own warnings point at the caller's line, tracked or not."""

from __future__ import annotations

import asyncio
import inspect
import warnings
from collections.abc import Callable
from typing import Any

import anthropic
import pytest
from anthropic.resources.messages import messages as messages_module

import fluxgate
from fluxgate.testing import FakeAnthropicAPI, MemorySink

from ..helpers import HELLO

DEPRECATED: dict[str, str] = getattr(messages_module, "DEPRECATED_MODELS", {})
HAS_PARSE = hasattr(anthropic.resources.messages.Messages, "parse")
pytestmark = pytest.mark.skipif(not DEPRECATED, reason="this anthropic release deprecates no model")


def model() -> str:
    return next(iter(DEPRECATED))


def where_warned(call: Callable[[], Any]) -> tuple[str, int]:
    """The (file, line) the SDK's DeprecationWarning names, and the line ``call`` was made on."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    [warning] = [w for w in caught if issubclass(w.category, DeprecationWarning) and model() in str(w.message)]
    return warning.filename, warning.lineno


def warned_at(call: Callable[[Any], Any]) -> tuple[str, int]:
    """Where ``call``'s warning points, called from one place (so both runs compare alike)."""
    client = FakeAnthropicAPI().client()
    return where_warned(lambda: call(client))


def create(client: Any) -> Any:
    return client.messages.create(model=model(), max_tokens=16, messages=HELLO)  # the caller's line


def stream(client: Any) -> Any:
    with client.messages.stream(model=model(), max_tokens=16, messages=HELLO) as events:  # the caller's line
        events.until_done()


def parse(client: Any) -> Any:
    return client.messages.parse(model=model(), max_tokens=16, messages=HELLO)  # the caller's line


def line_of(function: Callable[..., Any]) -> int:
    """The line of ``function`` marked as the caller's."""
    lines, start = inspect.getsourcelines(function)
    return start + next(i for i, text in enumerate(lines) if "the caller's line" in text)


CALLS = [create, stream] + ([parse] if HAS_PARSE else [])


class TestDeprecationWarnings:
    def test_create_names_the_callers_line(self) -> None:
        """A deprecated model's warning from create() names the caller's file and line, not fluxgate's."""
        fluxgate.init(sinks=[MemorySink()])
        assert where_warned(lambda: create(FakeAnthropicAPI().client())) == (__file__, line_of(create))

    @pytest.mark.parametrize("call", CALLS, ids=lambda c: c.__name__)
    def test_same_place_as_without_fluxgate(self, call: Callable[[Any], Any]) -> None:
        """Tracked or not, each method's warning names the same file and line."""
        plain = warned_at(call)
        fluxgate.init(sinks=[MemorySink()])
        assert warned_at(call) == plain

    def test_async_warning_unchanged(self) -> None:
        """An async call's warning lands where it lands without fluxgate."""

        async def main() -> None:
            await FakeAnthropicAPI().async_client().messages.create(model=model(), max_tokens=16, messages=HELLO)

        plain = where_warned(lambda: asyncio.run(main()))
        fluxgate.init(sinks=[MemorySink()])
        assert where_warned(lambda: asyncio.run(main())) == plain
