"""Every way an application reaches Claude through the anthropic SDK, as data.

Three tables, all free of anthropic imports:

- ``route()`` maps an HTTP request the SDK is about to send to what it is
  (a billable message, a legacy completion, a batch creation) or to None;
  ``_instrument`` tracks every request that maps to something.
- ``label()`` names the ``api`` of a request from the request itself: its
  URL, its post-parser (``parse()``) and the header the stream helpers send,
  so every path (``with_raw_response``, a method reference kept from before
  ``init()``, ``client.post("/v1/messages")``) is named alike.
- ``METHODS`` says, for every public method of the resources that can send a
  billable request, how it is handled. ``tests/test_coverage_of_sdk.py`` fails
  when the installed SDK has a method this table does not name, so a new SDK
  method cannot slip past unnoticed.

``docs/call-paths.md`` is the prose version of these tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

__all__ = [
    "BATCH_CREATE",
    "COMPLETE",
    "MESSAGE",
    "METHODS",
    "RESOURCES",
    "Handling",
    "Route",
    "fields_of",
    "label",
    "platform_of",
    "regional_of",
    "route",
]

MESSAGE: Final = "message"
COMPLETE: Final = "complete"
BATCH_CREATE: Final = "batch_create"

# Path (before "?") of a POST -> kind. Everything else is not billable here:
# count_tokens is free, batch retrieve/list/cancel/delete cost nothing, and
# batch *results* are priced when read (``_instrument`` patches ``results``).
_ROUTES: Final = {
    "/v1/messages": MESSAGE,
    "/v1/complete": COMPLETE,
    "/v1/messages/batches": BATCH_CREATE,
}
_HELPER_HEADER: Final = "x-stainless-helper-method"
# Sent by messages.stream() (and beta) since anthropic 0.x, with the resource as its value.
_STREAM_HELPER_HEADER: Final = "x-stainless-stream-helper"
_STREAM_APIS: Final = {"messages": "messages.stream", "beta.messages": "beta.messages.stream"}


class Route:
    """What a request is: its ``kind``, whether it went to the beta API, and the ``api`` names it can have.

    There are six (``_ROUTE_OF``), made once: ``label()`` picks one of their
    names instead of writing it for every call.
    """

    __slots__ = ("beta", "create", "kind", "parse", "stream")

    def __init__(self, kind: str, beta: bool) -> None:
        self.kind = kind
        self.beta = beta
        prefix = "beta.messages" if beta else "messages"
        if kind == COMPLETE:
            self.create = self.parse = self.stream = "completions.create"
        elif kind == BATCH_CREATE:
            self.create = self.parse = self.stream = f"{prefix}.batches.create"
        else:
            self.create, self.parse, self.stream = f"{prefix}.create", f"{prefix}.parse", f"{prefix}.stream"

    def __repr__(self) -> str:
        return f"Route(kind={self.kind!r}, beta={self.beta!r})"


#: Every route there is, by (kind, beta).
_ROUTE_OF: Final = {(kind, beta): Route(kind, beta) for kind in set(_ROUTES.values()) for beta in (False, True)}
#: URL -> its route (beta when its query says ``beta=true``) or None, for the few URLs an application uses.
_URL_ROUTES: dict[str, Route | None] = {}
_MAX_URLS = 256
_UNSEEN: Final = Route("", False)


def _url_route(url: str) -> Route | None:
    path, _, query = url.partition("?")
    kind = _ROUTES.get(path)
    found = None if kind is None else _ROUTE_OF[kind, "beta=true" in query]
    if len(_URL_ROUTES) >= _MAX_URLS:
        _URL_ROUTES.clear()
    _URL_ROUTES[url] = found
    return found


def fields_of(options: Any) -> dict[str, Any]:
    """The fields of the SDK's ``FinalRequestOptions`` (a pydantic model on every release), read once.

    Each attribute read on a pydantic model passes its ``__getattr__`` hook
    (about 600 instructions); its ``__dict__``, read once, holds every field.
    """
    values = getattr(options, "__dict__", None)
    return values if type(values) is dict else {}


def route(request: Mapping[str, Any]) -> Route | None:
    """The route of a request (its options' fields, ``fields_of``), or None when it is not billable."""
    url = request.get("url")
    if url.__class__ is not str:
        return None
    found = _URL_ROUTES.get(url, _UNSEEN)
    if found is _UNSEEN:
        found = _url_route(url)
    if found is None:
        return None
    method = request.get("method")
    if method != "post" and (not isinstance(method, str) or method.lower() != "post"):
        return None
    if not found.beta:
        # anthropic 2.x says "beta" in the options' qualifiers, not in the URL.
        qualifiers = request.get("qualifiers")
        if isinstance(qualifiers, dict) and qualifiers.get("beta") == "true":
            return _ROUTE_OF[found.kind, True]
    return found


def label(found: Route, request: Mapping[str, Any]) -> str:
    """The ``api`` name of a request: ``create``, ``parse`` or ``stream``, beta or not."""
    if found.kind != MESSAGE:
        return found.create
    if callable(request.get("post_parser")):
        return found.parse  # only parse() sets a post_parser on /v1/messages
    headers = request.get("headers")
    if headers and isinstance(headers, dict):
        # messages.stream() says so in a header on every release, naming its
        # resource (anthropic 0.x's async beta stream() sends no beta=true).
        for name in headers:
            helper = _HELPER_NAMES.get(name)
            if helper is None:
                helper = _helper_name(name)
            if helper == _STREAM_HELPER_HEADER:
                return _STREAM_APIS.get(headers[name], found.stream)
            if helper == _HELPER_HEADER and headers[name] == "stream":
                return found.stream
    return found.create


#: A header name -> the helper header it is, lower-cased, or "" for any other: an application
#: sends a few names, each looked at once (a tuple of a request's names as the key cost more).
_HELPER_NAMES: dict[object, str] = {}
_HELPERS: Final = frozenset({_HELPER_HEADER, _STREAM_HELPER_HEADER})


def _helper_name(name: object) -> str:
    """The helper header ``name`` is, in lower case, or "" (remembered in ``_HELPER_NAMES``)."""
    key = name.lower() if isinstance(name, str) else ""
    helper = key if key in _HELPERS else ""
    if len(_HELPER_NAMES) >= _MAX_URLS:
        _HELPER_NAMES.clear()
    _HELPER_NAMES[name] = helper
    return helper


# -- platforms ----------------------------------------------------------------

# Looked for in the lower-cased class names of a client's MRO, most derived first.
_PLATFORMS: Final = (
    ("bedrock", "bedrock"),
    ("vertex", "vertex"),
    ("foundry", "foundry"),
    ("googlecloud", "google-cloud"),
    ("aws", "aws"),
)
_PLATFORM_CACHE: dict[type, str] = {}


def platform_of(client: object) -> str:
    """``"anthropic"``, ``"bedrock"``, ``"vertex"``, ``"foundry"``, ``"aws"`` or ``"google-cloud"``."""
    cls = type(client)
    found = _PLATFORM_CACHE.get(cls)
    if found is None:
        found = "anthropic"
        for klass in cls.__mro__:
            name = klass.__name__.lower()
            hit = next((platform for needle, platform in _PLATFORMS if needle in name), None)
            if hit is not None:
                found = hit
                break
        _PLATFORM_CACHE[cls] = found
    return found


def regional_of(client: object, platform: str) -> bool | None:
    """Vertex: True unless the client's region is ``"global"``; None (decide from the model id) elsewhere."""
    if platform != "vertex":
        return None
    try:
        region = getattr(client, "region", None)
    except Exception:  # noqa: BLE001 - the base class's property raises "region not set"
        return None
    return region != "global" if isinstance(region, str) else None


# -- the public methods, and how each is handled ---------------------------------


@attrs.frozen
class Handling:
    """How fluxgate handles one public SDK method.

    ``kind`` is one of:

    - ``"tracked"``: one event per API call (caught at the HTTP request), ``api`` = ``note``;
    - ``"via"``: sends its requests through tracked methods (``note`` says which);
    - ``"view"``: a view onto the same methods (raw / streaming responses);
    - ``"context"``: not billable itself, but its context is stored for later events;
    - ``"free"``: sends no billable request (``note`` says why).
    """

    kind: str
    note: str


def _tracked(api: str) -> Handling:
    return Handling("tracked", api)


_VIEW = Handling("view", "with_raw_response / with_streaming_response: every request is tracked where it is sent")
_SUB = Handling("via", "a sub-resource; its own methods are listed under it")
_BATCH_FREE = Handling("free", "manages a batch; the batch's requests are priced when their results are read")

#: Resource classes whose public methods ``METHODS`` must cover: (module, class, path).
RESOURCES: Final = (
    ("anthropic.resources.messages.messages", "Messages", "messages"),
    ("anthropic.resources.messages.messages", "AsyncMessages", "messages"),
    ("anthropic.resources.beta.messages.messages", "Messages", "beta.messages"),
    ("anthropic.resources.beta.messages.messages", "AsyncMessages", "beta.messages"),
    ("anthropic.resources.messages.batches", "Batches", "messages.batches"),
    ("anthropic.resources.messages.batches", "AsyncBatches", "messages.batches"),
    ("anthropic.resources.beta.messages.batches", "Batches", "beta.messages.batches"),
    ("anthropic.resources.beta.messages.batches", "AsyncBatches", "beta.messages.batches"),
    ("anthropic.resources.completions", "Completions", "completions"),
    ("anthropic.resources.completions", "AsyncCompletions", "completions"),
    # Platform clients whose beta resources hold their own references to the
    # first-party methods (patching the first-party class does not reach them).
    ("anthropic.lib.bedrock._beta_messages", "Messages", "beta.messages"),
    ("anthropic.lib.bedrock._beta_messages", "AsyncMessages", "beta.messages"),
    ("anthropic.lib.vertex._beta_messages", "Messages", "beta.messages"),
    ("anthropic.lib.vertex._beta_messages", "AsyncMessages", "beta.messages"),
)

#: ``"<path>.<method>"`` -> how it is handled, for every public method of ``RESOURCES``.
METHODS: Final = {
    "messages.create": _tracked("messages.create"),
    "messages.stream": _tracked("messages.stream"),
    "messages.parse": _tracked("messages.parse"),
    "messages.count_tokens": Handling("free", "token counting is free"),
    "messages.batches": _SUB,
    "messages.with_raw_response": _VIEW,
    "messages.with_streaming_response": _VIEW,
    "beta.messages.create": _tracked("beta.messages.create"),
    "beta.messages.stream": _tracked("beta.messages.stream"),
    "beta.messages.parse": _tracked("beta.messages.parse"),
    "beta.messages.tool_runner": Handling(
        "via", "each turn is its own beta.messages.create / parse / stream event, in the context of the caller"
    ),
    "beta.messages.thread": Handling("via", "each turn is its own beta.messages.create (or .stream) event"),
    "beta.messages.count_tokens": Handling("free", "token counting is free"),
    "beta.messages.batches": _SUB,
    "beta.messages.with_raw_response": _VIEW,
    "beta.messages.with_streaming_response": _VIEW,
    "messages.batches.create": Handling("context", "the caller's context is stored per batch id and custom_id"),
    "messages.batches.results": _tracked("messages.batches.results"),
    "messages.batches.retrieve": _BATCH_FREE,
    "messages.batches.list": _BATCH_FREE,
    "messages.batches.cancel": _BATCH_FREE,
    "messages.batches.delete": _BATCH_FREE,
    "messages.batches.with_raw_response": _VIEW,
    "messages.batches.with_streaming_response": _VIEW,
    "beta.messages.batches.create": Handling("context", "the caller's context is stored per batch id and custom_id"),
    "beta.messages.batches.results": _tracked("beta.messages.batches.results"),
    "beta.messages.batches.retrieve": _BATCH_FREE,
    "beta.messages.batches.list": _BATCH_FREE,
    "beta.messages.batches.cancel": _BATCH_FREE,
    "beta.messages.batches.delete": _BATCH_FREE,
    "beta.messages.batches.with_raw_response": _VIEW,
    "beta.messages.batches.with_streaming_response": _VIEW,
    "completions.create": _tracked("completions.create"),
    "completions.with_raw_response": _VIEW,
    "completions.with_streaming_response": _VIEW,
}
