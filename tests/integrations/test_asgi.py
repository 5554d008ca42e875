"""FluxgateMiddleware and its helpers, called in process (no server, no network)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

pytest.importorskip("starlette")

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Host, Mount, Route, Router, WebSocketRoute
from starlette.websockets import WebSocket

from fluxgate import AiEventUser, BudgetExceeded, current_context
from fluxgate.integrations import asgi
from fluxgate.integrations.asgi import (
    BUDGET_EXCEEDED_BODY,
    FluxgateMiddleware,
    budget_exceeded_handler,
    route_template,
)

from .conftest import body_of, call_asgi, status_of


def context_now() -> dict[str, Any]:
    ctx = current_context()
    return {"feature": ctx.feature, "user": ctx.user_id, "step": ctx.step, "metadata": dict(ctx.metadata or {})}


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse(context_now())


async def room(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(context_now())
    await websocket.close()


ROUTES = [
    Route("/docs/{doc_id}/summarize", whoami, methods=["GET"]),
    Mount("/api", routes=[Route("/items/{item_id:int}", whoami)]),
    Host("admin.example.com", app=Router([Route("/stats", whoami)])),
    WebSocketRoute("/ws/{room_id}", room),
]


def make_app(**options: Any) -> Starlette:
    app = Starlette(routes=ROUTES)
    app.add_middleware(FluxgateMiddleware, **options)
    return app


def seen(app: Any, path: str, **kwargs: Any) -> dict[str, Any]:
    """The context the endpoint saw."""
    messages = call_asgi(app, path, **kwargs)
    assert status_of(messages) == 200
    result: dict[str, Any] = json.loads(body_of(messages))
    return result


class TestFluxgateMiddleware:
    def test_feature_is_route_template(self) -> None:
        """Without ``feature=``, the feature is the matched route's path template."""
        assert seen(make_app(), "/docs/42/summarize")["feature"] == "/docs/{doc_id}/summarize"

    def test_static_fields(self) -> None:
        """Static values apply to every request; a static feature replaces the route."""
        app = make_app(user=AiEventUser("u1"), feature="search", step="answer", metadata={"tier": "pro"})
        got = seen(app, "/docs/1/summarize")
        assert got == {"feature": "search", "user": "u1", "step": "answer", "metadata": {"tier": "pro"}}

    def test_callables_get_request_with_path_params(self) -> None:
        """Callables receive the Request, with the route's path params although routing has not run."""
        app = make_app(
            user=lambda request: request.headers["x-user"],
            metadata=lambda request: {"doc": request.path_params["doc_id"]},
        )
        got = seen(app, "/docs/9/summarize", headers={"x-user": "ana"})
        assert (got["user"], got["metadata"]) == ("ana", {"doc": "9"})

    def test_async_callable(self) -> None:
        """A callable may be async; its result is awaited."""

        async def user(request: Request) -> AiEventUser:
            await asyncio.sleep(0)
            return AiEventUser("u2", monthly_revenue=49.0)

        assert seen(make_app(user=user), "/docs/1/summarize")["user"] == "u2"

    def test_callable_returning_none(self) -> None:
        """A callable returning None leaves the field unset (an anonymous request)."""
        assert seen(make_app(user=lambda _: None), "/docs/1/summarize")["user"] is None

    def test_failing_callable_is_logged_not_raised(self, caplog: pytest.LogCaptureFixture) -> None:
        """A callable that raises is logged; the request runs, tracked without that field."""

        def user(request: Request) -> str:
            raise LookupError("no session")

        with caplog.at_level(logging.WARNING, logger="fluxgate"):
            got = seen(make_app(user=user), "/docs/1/summarize")
        assert (got["user"], got["feature"]) == (None, "/docs/{doc_id}/summarize")
        assert "'user' callable failed (LookupError)" in caplog.text

    def test_bad_value_from_callable_is_logged(self, caplog: pytest.LogCaptureFixture) -> None:
        """A callable returning the wrong type is logged and that field dropped."""
        with caplog.at_level(logging.WARNING, logger="fluxgate"):
            got = seen(make_app(user=lambda _: 4.2, step=lambda _: "s"), "/docs/1/summarize")
        assert (got["user"], got["step"]) == (None, "s")
        assert "'user' callable failed (TypeError)" in caplog.text

    @pytest.mark.parametrize(("options", "error"), [({"user": 4.2}, TypeError), ({"feature": " "}, ValueError)])
    def test_bad_static_value_raises_at_construction(self, options: dict[str, Any], error: type[Exception]) -> None:
        """A static value is validated once, when the middleware is built."""
        with pytest.raises(error):
            FluxgateMiddleware(Router(), **options)

    def test_no_request_built_without_callables(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With only static values, no Request object is built."""

        def refuse(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("a Request was built")

        monkeypatch.setattr(asgi, "Request", refuse)
        assert seen(make_app(user="u3"), "/docs/1/summarize")["user"] == "u3"

    def test_websocket_gets_route_and_static_fields(self) -> None:
        """A websocket session runs in a scope with its route and static fields; callables are skipped."""
        app = make_app(step="chat", user=lambda _: "never-called")
        messages = call_asgi(app, "/ws/7", kind="websocket")
        sent = next(m for m in messages if m["type"] == "websocket.send")
        got = json.loads(sent["text"])
        assert (got["feature"], got["step"], got["user"]) == ("/ws/{room_id}", "chat", None)

    def test_lifespan_passes_through(self) -> None:
        """Non-HTTP scopes reach the app untouched, outside any fluxgate scope."""
        calls: list[tuple[Any, ...]] = []

        async def inner(scope: Any, receive: Any, send: Any) -> None:
            calls.append((scope, receive, send, current_context().feature))

        async def receive() -> Any:
            return {}

        async def send(message: Any) -> None:
            pass

        scope = {"type": "lifespan"}
        asyncio.run(FluxgateMiddleware(inner, feature="f")(scope, receive, send))
        assert calls == [(scope, receive, send, None)]

    def test_app_errors_propagate_unchanged(self) -> None:
        """An exception from the app propagates as the same object, and the scope is left."""
        boom = RuntimeError("boom")
        features: list[str | None] = []

        async def inner(scope: Any, receive: Any, send: Any) -> None:
            features.append(current_context().feature)
            raise boom

        with pytest.raises(RuntimeError) as info:
            call_asgi(FluxgateMiddleware(inner, feature="f"), "/")
        assert info.value is boom
        assert features == ["f"]
        assert current_context().feature is None


class TestRouteTemplate:
    def scope(self, path: str, method: str = "GET", host: str = "testserver") -> dict[str, Any]:
        return {"type": "http", "path": path, "method": method, "root_path": "", "headers": [(b"host", host.encode())]}

    def test_converters_are_dropped(self) -> None:
        """A converter such as ``:int`` is not part of the template."""
        assert route_template(self.scope("/api/items/3"), Router(ROUTES)) == "/api/items/{item_id}"

    def test_host_routes(self) -> None:
        """Routes under a Host match by the Host header."""
        assert route_template(self.scope("/stats", host="admin.example.com"), Router(ROUTES)) == "/stats"
        assert route_template(self.scope("/stats"), Router(ROUTES)) is None

    def test_unmatched_path(self) -> None:
        """A path no route matches has no template."""
        assert route_template(self.scope("/nowhere"), Router(ROUTES)) is None

    def test_wrong_method_still_names_the_route(self) -> None:
        """A partial match (the router's 405) gives the route's template."""
        assert route_template(self.scope("/docs/1/summarize", "POST"), Router(ROUTES)) == "/docs/{doc_id}/summarize"

    def test_scope_app_wins(self) -> None:
        """The routes of ``scope["app"]`` (set by Starlette) are used before the wrapped app's."""
        scope = {**self.scope("/docs/1/summarize"), "app": Starlette(routes=ROUTES)}
        assert route_template(scope, None) == "/docs/{doc_id}/summarize"

    def test_app_without_routes(self) -> None:
        """A plain ASGI app has no templates."""

        async def plain(scope: Any, receive: Any, send: Any) -> None:
            pass

        assert route_template(self.scope("/docs/1/summarize"), plain) is None


class TestBudgetExceededHandler:
    def test_answers_429_without_figures(self) -> None:
        """The handler answers 429 with a fixed JSON body that leaks no budget name or amount."""
        exc = BudgetExceeded(
            "would cross 'team-day' ($5)", budget="team-day", limit_usd=None, spent_usd=None, needed_usd=None
        )
        request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
        response = asyncio.run(budget_exceeded_handler(request, exc))  # type: ignore[arg-type]
        assert response.status_code == 429
        assert json.loads(bytes(response.body)) == BUDGET_EXCEEDED_BODY
        assert b"team-day" not in bytes(response.body)
