"""A fluxgate scope per request for Starlette, FastAPI and other ASGI apps.

:class:`FluxgateMiddleware` runs the whole request, response body included,
inside one :func:`fluxgate.track_context`, so every Anthropic call the request
makes is recorded with its user and its route. :func:`budget_exceeded_handler`
turns :class:`fluxgate.BudgetExceeded` into an HTTP 429.

It is a pure ASGI middleware, not a ``BaseHTTPMiddleware``: the downstream app
is awaited inside the scope, so a ``StreamingResponse`` body (iterated inside
that await) and background tasks stay in it, and no extra task is spawned.

>>> from starlette.applications import Starlette
>>> app = Starlette()
>>> app.add_middleware(FluxgateMiddleware, user=lambda request: request.headers.get("x-user-id"))
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

try:
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import BaseRoute, Host, Match, Mount
    from starlette.types import ASGIApp, Receive, Scope, Send
except ImportError as exc:  # pragma: no cover - depends on the environment
    msg = "fluxgate.integrations.asgi needs Starlette: pip install 'fluxgate[asgi]'."
    raise ImportError(msg) from exc

from .._models import AiEventUser, ContextFrame
from .._recording import finish_streams_at_exit
from .._track import track_context

__all__ = ["BUDGET_EXCEEDED_BODY", "FluxgateMiddleware", "budget_exceeded_handler", "route_template"]

logger = logging.getLogger("fluxgate")

T = TypeVar("T")

#: A field given per request: called with the request, returns the value (or an awaitable of it).
_Dynamic = Callable[[Request], T | Awaitable[T]]

_UserValue = str | AiEventUser | None
_MetadataValue = Mapping[str, Any] | None

#: What a client that hit a budget is told. The exception's own message names
#: the budget and the spend, which is for your logs, not for your users.
BUDGET_EXCEEDED_BODY = {
    "error": {
        "type": "budget_exceeded",
        "message": "The AI usage limit for this request has been reached. Try again later.",
    }
}


class FluxgateMiddleware:
    """Open a fluxgate scope for each HTTP request (and websocket session).

    Every field takes a value, or a callable that receives the Starlette
    ``Request`` and returns the value (it may be ``async``). A callable is
    only called, and the ``Request`` only built, when one is given; it sees
    the route's ``path_params`` although routing has not run yet. It should
    read headers, cookies, ``request.state`` or ``request.user``, not the
    body, which the endpoint still has to receive. A callable that raises,
    or returns a value of the wrong type, is logged on the ``fluxgate``
    logger and the request is tracked without that field: tracking never
    fails a request. Websocket sessions get the static fields and the route
    but no callables (a ``Request`` cannot be built for them).

    Args:
        app: The ASGI app to wrap.
        user: A user id or :class:`fluxgate.AiEventUser`, or a callable
            returning one (or ``None`` for anonymous requests).
        feature: The feature; by default the matched route's path template,
            e.g. ``"/docs/{doc_id}/summarize"`` (none for unmatched paths).
        step: The pipeline step.
        metadata: Extra JSON-serialisable data stored with each event.

    Raises:
        TypeError, ValueError: A static field is invalid (checked here, once).

    >>> from starlette.applications import Starlette
    >>> app = FluxgateMiddleware(Starlette(), user=AiEventUser("u1"), feature="search")
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        user: _UserValue | _Dynamic[_UserValue] = None,
        feature: str | _Dynamic[str | None] | None = None,
        step: str | _Dynamic[str | None] | None = None,
        metadata: _MetadataValue | _Dynamic[_MetadataValue] = None,
    ) -> None:
        self.app = app
        given: dict[str, Any] = {"user": user, "feature": feature, "step": step, "metadata": metadata}
        self._dynamic: dict[str, Callable[[Request], Any]] = {k: v for k, v in given.items() if callable(v)}
        self._static: dict[str, Any] = {k: v for k, v in given.items() if v is not None and k not in self._dynamic}
        ContextFrame.build(**self._static)  # bad static values fail here, at startup
        self._feature_from_route = feature is None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan and the rest pass through
            await self.app(scope, receive, send)
            return
        context = await self._context(scope, receive)
        if context is None:
            await self.app(scope, receive, send)
            return
        # The body of a StreamingResponse is iterated inside this await, so
        # the scope covers it; a disconnect ends it here too.
        async with context:
            # A body the client abandoned (Starlette stops reading a sync
            # iterator and never closes it) is recorded when the request ends.
            with finish_streams_at_exit():
                await self.app(scope, receive, send)

    async def _context(self, scope: Scope, receive: Receive) -> track_context | None:
        fields = dict(self._static)
        path_params: Mapping[str, Any] | None = None
        if self._feature_from_route or self._dynamic:
            template, path_params = _resolve(scope, self.app)
            if self._feature_from_route and template:
                fields["feature"] = template
        if self._dynamic and scope["type"] == "http":
            request = Request({**scope, "path_params": path_params or {}}, receive)
            for name, resolve in self._dynamic.items():
                value = await _call(name, resolve, request)
                if value is not None:
                    fields[name] = value
        if not fields:
            return None
        try:
            return track_context(**fields)
        except Exception:  # _call checked each value; this is a last resort
            logger.warning("fluxgate: FluxgateMiddleware could not open a scope", exc_info=True)
            return None


async def _call(name: str, resolve: Callable[[Request], Any], request: Request) -> Any:
    """``resolve(request)``, awaited if need be; ``None`` (logged) if it fails or returns a bad value."""
    try:
        value = resolve(request)
        if inspect.isawaitable(value):
            value = await value
        if value is not None:
            ContextFrame.build(**{name: value})
    except Exception as exc:  # a bad resolver must not fail the request
        logger.warning(
            "fluxgate: FluxgateMiddleware's %r callable failed (%s); the request is tracked without it",
            name,
            type(exc).__name__,
            exc_info=True,
        )
        return None
    return value


def route_template(scope: Scope, app: ASGIApp | None = None) -> str | None:
    """The path template of the route that will serve ``scope``, e.g. ``"/docs/{doc_id}"``.

    The routes are those of ``scope["app"]`` (set by Starlette and FastAPI
    before their middleware runs), else of ``app``. Mounts and hosts are
    followed, so a route under ``Mount("/api", ...)`` gives ``"/api/..."``.
    ``None`` when nothing matches or the app has no Starlette routes.

    >>> from starlette.routing import Route, Router
    >>> router = Router([Route("/docs/{doc_id:int}", lambda request: None)])
    >>> route_template({"type": "http", "path": "/docs/7", "method": "GET"}, router)
    '/docs/{doc_id}'
    """
    return _resolve(scope, app)[0]


def _resolve(scope: Scope, app: ASGIApp | None) -> tuple[str | None, Mapping[str, Any] | None]:
    """The route template and path params, found as the router will find them.

    The middleware runs before routing, so it asks each route the router's own
    question, ``route.matches(scope)``, in the router's order (first full
    match, else first partial). Reading ``scope["route"]`` afterwards would be
    too late: the scope's fields are fixed when it is entered.
    """
    routes = _routes_of(scope.get("app")) or _routes_of(app)
    if not routes:
        return None, None
    try:
        found = _match(routes, scope, "")
    except Exception:  # a custom route's bug must not fail the request
        logger.warning("fluxgate: FluxgateMiddleware could not match the route", exc_info=True)
        return None, None
    if found is None:
        return None, None
    template, matched = found
    params = matched.get("path_params")
    return template, params if isinstance(params, Mapping) else None


def _routes_of(app: object) -> list[BaseRoute]:
    routes = getattr(app, "routes", None)
    return list(routes) if isinstance(routes, Iterable) else []


def _match(routes: Iterable[BaseRoute], scope: Scope, prefix: str) -> tuple[str | None, Scope] | None:
    partial: tuple[BaseRoute, Scope] | None = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return _descend(route, {**scope, **child}, prefix)
        if match is Match.PARTIAL and partial is None:
            partial = (route, {**scope, **child})
    return None if partial is None else _descend(*partial, prefix)


def _descend(route: BaseRoute, scope: Scope, prefix: str) -> tuple[str | None, Scope]:
    if isinstance(route, Mount):
        inner = _match(route.routes, scope, prefix + route.path)
        return inner if inner is not None else (prefix + route.path or "/", scope)
    if isinstance(route, Host):
        inner = _match(route.routes, scope, prefix)
        return inner if inner is not None else (prefix or None, scope)
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return (prefix + path if isinstance(path, str) else None), scope


async def budget_exceeded_handler(request: Request, exc: Exception) -> Response:
    """Answer a request stopped by :class:`fluxgate.BudgetExceeded` with HTTP 429.

    The body is :data:`BUDGET_EXCEEDED_BODY`, which names no budget and no
    figures; the event recorded for the blocked call (status ``BLOCKED``)
    holds the details. Only a call made before the response starts can become
    a 429: make the first Anthropic call before returning a ``StreamingResponse``.

    >>> from fastapi import FastAPI  # doctest: +SKIP
    >>> from fluxgate import BudgetExceeded
    >>> app = FastAPI()  # doctest: +SKIP
    >>> app.add_exception_handler(BudgetExceeded, budget_exceeded_handler)  # doctest: +SKIP
    """
    return JSONResponse(BUDGET_EXCEEDED_BODY, status_code=429)
