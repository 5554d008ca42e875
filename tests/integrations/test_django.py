"""The Django middleware, through Django's own test client (no server, no database)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("django")

import django
from django.conf import settings

import fluxgate
from fluxgate import AiEventUser, current_context
from fluxgate.integrations.django import FluxgateMiddleware
from fluxgate.testing import FakeAnthropicAPI, MemorySink

from .conftest import MODEL

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="fluxgate-tests",
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[f"{__name__}.CostMiddleware"],
        INSTALLED_APPS=[],
        DATABASES={},
    )
    django.setup()

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.test import Client, RequestFactory
from django.urls import path

API = FakeAnthropicAPI()


class CostMiddleware(FluxgateMiddleware):
    def get_user(self, request: Any) -> str | AiEventUser | None:
        user: str | None = request.headers.get("x-user")
        if user == "broken":
            raise LookupError("no such user")
        return user


def context_now() -> dict[str, Any]:
    ctx = current_context()
    return {"feature": ctx.feature, "user": ctx.user_id}


def whoami(request: HttpRequest, doc_id: int) -> JsonResponse:
    return JsonResponse(context_now())


def chunks(request: HttpRequest, doc_id: int) -> StreamingHttpResponse:
    def body() -> Iterator[str]:
        for _ in range(3):
            yield json.dumps(context_now()) + "\n"

    return StreamingHttpResponse(body())


def summary_stream(request: HttpRequest, doc_id: int) -> StreamingHttpResponse:
    prompt = [{"role": "user", "content": f"Summarize document {doc_id}, at length."}]
    events = API.client().messages.create(model=MODEL, max_tokens=512, messages=prompt, stream=True)

    def body() -> Iterator[str]:
        with events:
            for event in events:
                if event.type == "content_block_delta":
                    yield event.delta.text

    return StreamingHttpResponse(body())


urlpatterns = [
    path("docs/<int:doc_id>/whoami", whoami),
    path("docs/<int:doc_id>/chunks", chunks),
    path("docs/<int:doc_id>/stream", summary_stream),
]


class TestDjangoMiddleware:
    def test_user_and_url_pattern(self) -> None:
        """A request runs in a scope with the subclass's user and the URL pattern as feature."""
        response = Client().get("/docs/3/whoami", headers={"x-user": "ana"})
        assert json.loads(response.content) == {"feature": "/docs/<int:doc_id>/whoami", "user": "ana"}

    def test_streaming_content_stays_in_scope(self) -> None:
        """Streamed content, iterated after the middleware returned, still runs in the request's scope."""
        response = Client().get("/docs/3/chunks", headers={"x-user": "bo"})
        lines = b"".join(response.streaming_content).decode().splitlines()
        assert [json.loads(line) for line in lines] == [{"feature": "/docs/<int:doc_id>/chunks", "user": "bo"}] * 3
        assert current_context().feature is None

    def test_abandoned_stream_recorded_on_close(self, sink: MemorySink, no_gc: None) -> None:
        """A stream left part-way is recorded when the response is closed, as a WSGI server closes it."""
        response = Client().get("/docs/3/stream", headers={"x-user": "cy"})
        assert next(iter(response.streaming_content))
        response.close()
        assert fluxgate.flush(timeout_s=10)
        (event,) = sink.events
        assert (event.user_id, event.feature, event.streamed) == ("cy", "/docs/<int:doc_id>/stream", True)
        assert (event.cost_status, event.aborted) == ("estimated_usage", True)

    def test_failing_hook_is_logged(self, caplog: pytest.LogCaptureFixture) -> None:
        """A hook that raises is logged; the request is served without that field."""
        with caplog.at_level(logging.WARNING, logger="fluxgate"):
            response = Client().get("/docs/3/whoami", headers={"x-user": "broken"})
        assert json.loads(response.content) == {"feature": "/docs/<int:doc_id>/whoami", "user": None}
        assert "CostMiddleware.get_user failed (LookupError)" in caplog.text

    def test_async_get_response(self) -> None:
        """Under ASGI (an async get_response) the middleware is async and awaits inside the scope."""
        seen: list[dict[str, Any]] = []

        async def get_response(request: HttpRequest) -> HttpResponse:
            await asyncio.sleep(0)
            seen.append(context_now())
            return HttpResponse(b"ok")

        middleware = CostMiddleware(get_response)
        request = RequestFactory().get("/docs/9/whoami", headers={"x-user": "di"})
        response = asyncio.run(middleware(request))
        assert response.content == b"ok"
        assert seen == [{"feature": "/docs/<int:doc_id>/whoami", "user": "di"}]
