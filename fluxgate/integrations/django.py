"""A fluxgate scope per request for Django (WSGI and ASGI).

Add the middleware to ``MIDDLEWARE`` after ``AuthenticationMiddleware``. To
name the user, subclass it and override :meth:`FluxgateMiddleware.get_user`
(Django builds middleware from a dotted path, so options live in the class)::

    # myapp/middleware.py
    class CostMiddleware(FluxgateMiddleware):
        def get_user(self, request):
            return str(request.user.pk) if request.user.is_authenticated else None

    # settings.py
    MIDDLEWARE = [..., "django.contrib.auth.middleware.AuthenticationMiddleware", "myapp.middleware.CostMiddleware"]

A ``StreamingHttpResponse`` is iterated after the middleware has returned,
so its content is wrapped to run each step in the request's scope; Django
closes it when the response is closed, which finishes a stream the client
abandoned.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

try:
    from asgiref.sync import iscoroutinefunction, markcoroutinefunction
    from django.urls import Resolver404, resolve
except ImportError as exc:  # pragma: no cover - depends on the environment
    msg = "fluxgate.integrations.django needs Django 4.2 or later: pip install 'fluxgate[django]'."
    raise ImportError(msg) from exc

from .._models import AiEventUser, ContextFrame
from .._recording import OpenStreams
from .._track import track, track_context

__all__ = ["FluxgateMiddleware"]

logger = logging.getLogger("fluxgate")

_FIELDS = ("user", "feature", "step", "metadata")


class FluxgateMiddleware:
    """Open a fluxgate scope around each Django request, streamed content included.

    Override the ``get_*`` hooks in a subclass to set the scope's fields.
    A hook that raises or returns a value of the wrong type is logged on the
    ``fluxgate`` logger and that field is left out: tracking never fails a
    request. Under ASGI the hooks run in the event loop, so they must not
    query the database (read ``request.user`` only if it is already loaded).
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def get_user(self, request: Any) -> str | AiEventUser | None:
        """The user the request is for (default: none)."""
        return None

    def get_feature(self, request: Any) -> str | None:
        """The feature (default: the URL pattern, e.g. ``"/docs/<int:doc_id>/summarize"``)."""
        try:
            match = resolve(request.path_info, getattr(request, "urlconf", None))
        except Resolver404:
            return None
        route = getattr(match, "route", None)
        if not isinstance(route, str) or not route:
            return None
        return route if route.startswith(("/", "^")) else "/" + route

    def get_step(self, request: Any) -> str | None:
        """The pipeline step (default: none)."""
        return None

    def get_metadata(self, request: Any) -> Mapping[str, Any] | None:
        """Extra JSON-serialisable data stored with each event (default: none)."""
        return None

    def __call__(self, request: Any) -> Any:
        if self._async:
            return self.__acall__(request)
        fields = self._fields(request)
        if not fields:
            return self.get_response(request)
        opened = OpenStreams()
        with track_context(**fields), opened.collecting():
            response = self.get_response(request)
        _keep_scope(response, fields, opened)
        return response

    async def __acall__(self, request: Any) -> Any:
        fields = self._fields(request)
        if not fields:
            return await self.get_response(request)
        opened = OpenStreams()
        async with track_context(**fields):
            with opened.collecting():
                response = await self.get_response(request)
        _keep_scope(response, fields, opened)
        return response

    def _fields(self, request: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for name in _FIELDS:
            hook: Callable[[Any], Any] = getattr(self, f"get_{name}")
            try:
                value = hook(request)
                if value is not None:
                    ContextFrame.build(**{name: value})
            except Exception as exc:  # a bad hook must not fail the request
                logger.warning(
                    "fluxgate: %s.get_%s failed (%s); the request is tracked without it",
                    type(self).__name__,
                    name,
                    type(exc).__name__,
                    exc_info=True,
                )
                continue
            if value is not None:
                fields[name] = value
        return fields


def _keep_scope(response: Any, fields: Mapping[str, Any], opened: OpenStreams) -> None:
    """Run a streaming response's content in the request's scope, step by step.

    Streams the request opened and left open are recorded (as aborted) when
    the response ends: at once for a plain response, when its content is
    exhausted or closed for a streaming one (Django reads it after the
    middleware returned).
    """
    if not getattr(response, "streaming", False):
        opened.finish()
        return
    try:
        content = response.streaming_content
        scoped = track(**fields)
        if getattr(response, "is_async", False):
            response.streaming_content = scoped(_arelay)(content, opened)
        else:
            response.streaming_content = scoped(_relay)(content, opened)
    except Exception:  # the response goes out untracked rather than not at all
        logger.warning("fluxgate: could not keep the scope across a streaming response", exc_info=True)
        opened.finish()


def _relay(content: Iterator[Any], opened: OpenStreams) -> Iterator[Any]:
    try:
        with opened.collecting():
            yield from content  # closing the relay closes ``content`` too
    finally:
        opened.finish()


async def _arelay(content: AsyncIterator[Any], opened: OpenStreams) -> AsyncIterator[Any]:
    try:  # ``async for`` does not close what it iterates; do it, as ``yield from`` would
        with opened.collecting():
            async for chunk in content:
                yield chunk
    finally:
        aclose: Callable[[], Awaitable[Any]] | None = getattr(content, "aclose", None)
        if aclose is not None:
            await aclose()
        opened.finish()
