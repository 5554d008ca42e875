"""Class-level wrapt patches of anthropic, and ``instrument()`` / ``uninstrument()``.

Every patch sits in a table, ``TARGETS`` (put in by ``instrument()``) or
``responses.ON_FIRST_RAW`` (at the first raw response), and ``uninstrument()``
takes out each one that went in, so each has its undo. Patching classes (never
clients) tracks clients made before and after ``init()``. The wrappers read
the active FluxGate on each call: with none, they pass straight through.

One patch sees every call: ``SyncAPIClient.request`` and
``AsyncAPIClient.request``, where every API call of every client
(first-party, Bedrock, Vertex, ...) passes exactly once (retries happen
inside). A request that ``routes.route`` calls billable (``POST
/v1/messages``, ``/v1/complete``) is one call and gives one event, named from
the request itself (``routes.label``); ``POST /v1/messages/batches`` keeps
the caller's context. No public method (``create``, ``stream``, ``parse``)
is wrapped: a wrapper there would stand between the SDK's warnings and the
caller's line, and add a hop to every call.

What the SDK hands back is the SDK's own object, followed by class-level
patches of its methods, with per-object state kept beside it (``hooks``):
streams and ``stream()`` helpers (``streams``), raw responses
(``responses``; their ``parse()`` from the first raw response on, as the SDK
parses every ordinary response with it too), tool runners (``runners``) and
batch results (``batches``). The user's call always runs outside
``guarded()``: its result or exception (``CancelledError`` and
``KeyboardInterrupt`` included) reaches the user untouched; only fluxgate's
own bookkeeping is guarded. See ``docs/call-paths.md`` for every path and
release.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable
from typing import Any

import wrapt

from .._context import current_context
from .._fluxgate import FluxGate, active
from .._guard import env_flag, guarded, logger, swallow
from .._models import ContextFrame
from .._recording import ATTRIBUTE, STEP, Call, get, read_content
from . import batches, responses, runners, streams
from .batches import remember_batch
from .hooks import MARK, Target, marked
from .responses import track_raw
from .routes import BATCH_CREATE, Route, fields_of, label, platform_of, regional_of, route
from .streams import is_async_stream, is_stream, track_stream

__all__ = ["ATTRIBUTE", "SUPPORTED_ANTHROPIC", "TARGETS", "instrument", "is_instrumented", "uninstrument"]

#: The anthropic releases fluxgate supports (checked in CI at both ends and in between).
SUPPORTED_ANTHROPIC = ">=0.50"


# -- level 1: the HTTP request -------------------------------------------------------


class _BatchCreation:
    """``POST /v1/messages/batches``: not billed itself; keeps the caller's context."""

    __slots__ = ("api", "body", "context", "fg", "platform")

    def __init__(self, fg: FluxGate, api: str, platform: str, body: Any, context: ContextFrame) -> None:
        self.fg, self.api, self.platform, self.body, self.context = fg, api, platform, body, context

    def fail(self, exc: BaseException) -> None:
        """A batch that was not created (or whose creation was interrupted) costs nothing."""

    def settle(self, result: Any) -> Any:
        batch = result
        if _is_raw(result):  # with_raw_response: the batch is the JSON body, read already
            content = read_content(result.http_response)
            batch = None if content is None else json.loads(content)
        remember_batch(self.fg, batch=batch, body=self.body, api=self.api, platform=self.platform, context=self.context)
        return result


def _bind(found: Route, client: Any, request: dict[str, Any], kwargs: dict[str, Any]) -> Call | _BatchCreation | None:
    """The call this request (its options' fields) is: a new one, reporting to the active FluxGate (None if none is)."""
    fg = active()
    if fg is None:
        return None
    body = request.get("json_data")
    platform = platform_of(client)
    if found.kind == BATCH_CREATE:
        return _BatchCreation(fg, label(found, request), platform, body, current_context())
    model = get(body, "model")
    regional = None if platform != "vertex" else regional_of(client, platform)
    # Positional: a class called with keywords builds a dict of them (and unpacks it again).
    return Call(fg, label(found, request), platform, model, regional, kwargs.get("stream") is True, body)


def _is_raw(result: Any) -> bool:
    """An ``APIResponse`` / ``LegacyAPIResponse`` (``with_raw_response``, ``with_streaming_response``)."""
    return _kind(result) == _RAW


_MODEL, _STREAM, _RAW = 0, 1, 2
_KINDS: dict[type, int] = {}


def _kind(result: Any) -> int:
    """What the SDK returned, by class (looked up once per class: hasattr on pydantic is slow)."""
    cls = type(result)
    kind = _KINDS.get(cls)
    if kind is None:
        if is_stream(result) or is_async_stream(result):
            kind = _STREAM
        elif hasattr(result, "http_response") and hasattr(result, "parse"):
            kind = _RAW
        else:
            kind = _MODEL
        _KINDS[cls] = kind
    return kind


def _settle(call: Call | _BatchCreation, result: Any) -> Any:
    """What the user gets back: the SDK's result, recorded now or followed as it is read."""
    if isinstance(call, _BatchCreation):
        return call.settle(result)
    log = STEP.get()
    if log is not None:
        log.last = call
    kind = _KINDS.get(type(result))
    if kind is None:
        kind = _kind(result)
    if kind == _STREAM:
        return track_stream(call, result)
    if kind == _RAW:
        if not _raw_armed:
            _arm_raw()
        return track_raw(call, result)
    call.succeed(result)
    return result


_COUNTED_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking")


def _count_body(call: Call, options: Any) -> dict[str, Any] | None:
    body = getattr(options, "json_data", None)
    if not call.tracker.budget_count_tokens or not isinstance(body, dict) or call.platform != "anthropic":
        return None
    if not str(getattr(options, "url", "")).startswith("/v1/messages"):
        return None
    return {k: body[k] for k in _COUNTED_FIELDS if k in body}


def _counted(response: Any) -> int | None:
    tokens = get(response, "input_tokens")
    return tokens if isinstance(tokens, int) else None


def _input_counter(call: Call, client: Any, options: Any) -> Callable[[], int | None] | None:
    """With ``budget_count_tokens``: ask the free count_tokens endpoint for the exact input."""
    body = _count_body(call, options)
    if body is None:
        return None

    def count() -> int | None:
        try:
            return _counted(client.post("/v1/messages/count_tokens", body=body, cast_to=object))
        except Exception:  # noqa: BLE001 - fall back to the estimate
            return None

    return count


async def _async_input_count(call: Call, client: Any, options: Any) -> Callable[[], int | None] | None:
    """The async twin of ``_input_counter`` (the count is fetched before the check)."""
    body = _count_body(call, options)
    if body is None:
        return None
    try:
        tokens = _counted(await client.post("/v1/messages/count_tokens", body=body, cast_to=object))
    except Exception:  # noqa: BLE001 - fall back to the estimate
        tokens = None
    return lambda: tokens


def _request(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``SyncAPIClient.request``: one billable request, one call."""
    options = args[1] if len(args) > 1 else kwargs.get("options")
    request = fields_of(options)
    found = route(request)
    if found is None:
        return wrapped(*args, **kwargs)
    # try/except and swallow() rather than `with guarded()`: the same handling,
    # about 4,600 instructions (8 %) less per call on this path (bench_instructions).
    try:
        call = _bind(found, instance, request, kwargs)
    except Exception as exc:  # noqa: BLE001 - fluxgate's fault: the call goes untracked
        swallow(exc)
        call = None
    if call is None:
        return wrapped(*args, **kwargs)
    if isinstance(call, Call) and call.budgeted:
        call.reserve(request.get("json_data"), _input_counter(call, instance, options))
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        # An API error, or an interruption (KeyboardInterrupt, SystemExit): one
        # event either way, the budget reservation settled, the exception as raised.
        with guarded():
            call.fail(exc)
        raise
    try:
        return _settle(call, result)
    except Exception as exc:  # noqa: BLE001 - the user gets the SDK's result untouched
        swallow(exc)
        return result


async def _arequest(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``AsyncAPIClient.request``: the async twin of ``_request``."""
    options = args[1] if len(args) > 1 else kwargs.get("options")
    request = fields_of(options)
    found = route(request)
    if found is None:
        return await wrapped(*args, **kwargs)
    try:  # see _request
        call = _bind(found, instance, request, kwargs)
    except Exception as exc:  # noqa: BLE001 - fluxgate's fault: the call goes untracked
        swallow(exc)
        call = None
    if call is None:
        return await wrapped(*args, **kwargs)
    if isinstance(call, Call) and call.budgeted:
        call.reserve(request.get("json_data"), await _async_input_count(call, instance, options))
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        # CancelledError (a timeout, a client that went away) included: see _request.
        with guarded():
            call.fail(exc)
        raise
    try:
        return _settle(call, result)
    except Exception as exc:  # noqa: BLE001 - the user gets the SDK's result untouched
        swallow(exc)
        return result


marked(_request)
marked(_arequest)


# -- the table -------------------------------------------------------------------------

#: (module, class, attribute, wrapper or property): the one table ``instrument``
#: and ``uninstrument`` both walk. A target missing from the installed SDK (a
#: class or method a release does not have) is skipped; so is a method the class
#: does not define itself (it inherits the patched one), and a property whose
#: name the class already has.
TARGETS: tuple[Target, ...] = (
    ("anthropic._base_client", "SyncAPIClient", "request", _request),
    ("anthropic._base_client", "AsyncAPIClient", "request", _arequest),
    *streams.TARGETS,
    *responses.TARGETS,
    *runners.TARGETS,
    *batches.TARGETS,
)

_installed: list[tuple[type, str, Any]] = []
_install_lock = threading.Lock()
#: Whether ``responses.ON_FIRST_RAW`` is in place: at the first raw response after ``instrument()``.
_raw_armed = False


def resolve(module: str, cls: str) -> type | None:
    try:
        owner = getattr(importlib.import_module(module), cls, None)
    except ImportError:
        return None
    return owner if isinstance(owner, type) else None


def _wrapped_by_us(owner: type, method: str) -> bool:
    current = owner.__dict__.get(method)
    return isinstance(current, wrapt.FunctionWrapper) and getattr(current._self_wrapper, MARK, False)


def _install(owner: type, name: str, patch: Any) -> bool:
    """Put one patch in place, unless it is there already or the class does not define the method."""
    if isinstance(patch, property):
        if name in owner.__dict__:
            return False
        setattr(owner, name, patch)
    else:
        if name not in owner.__dict__ or _wrapped_by_us(owner, name):
            return False
        wrapt.wrap_function_wrapper(owner, name, patch)
    _installed.append((owner, name, patch))
    return True


def instrument(*, force: bool = False) -> bool:
    """Patch anthropic's classes. Safe to call again: never double-wraps.

    Does nothing while ``FLUXGATE_DISABLED`` is set, unless ``force`` (what
    ``capture_events()`` asks: a test that captures events needs them).
    Returns True if anything was patched by this call.
    """
    if not force and env_flag("FLUXGATE_DISABLED"):
        return False
    owners = _resolved(TARGETS)
    # init() and the facade may both install at once: check-and-wrap must be
    # atomic, or a method could be wrapped twice and its calls counted twice.
    with _install_lock:
        return _install_all(owners)


def _arm_raw() -> None:
    """Patch what following a raw response needs (``responses.ON_FIRST_RAW``), once per ``instrument()``."""
    global _raw_armed  # noqa: PLW0603 - one switch, set under the lock that installs
    owners = _resolved(responses.ON_FIRST_RAW)
    with _install_lock:
        if _raw_armed or not _installed:  # armed by another thread, or uninstrumented meanwhile
            return
        _install_all(owners)
        _raw_armed = True


def _resolved(targets: tuple[Target, ...]) -> list[tuple[type | None, str, Any]]:
    """``targets`` with each class found (None where the SDK has none): imports, so outside the lock."""
    return [(resolve(module, cls), name, patch) for module, cls, name, patch in targets]


def _install_all(owners: list[tuple[type | None, str, Any]]) -> bool:
    """Put each resolved patch in place (the caller holds ``_install_lock``); True if any went in."""
    patched = False
    for owner, name, patch in owners:
        if owner is not None and _install(owner, name, patch):
            patched = True
    return patched


def uninstrument() -> None:
    """Remove every patch ``instrument()`` installed, restoring the originals."""
    with _install_lock:
        _uninstall()


def _uninstall() -> None:
    global _raw_armed  # noqa: PLW0603 - see _arm_raw
    _raw_armed = False
    while _installed:
        owner, name, patch = _installed.pop()
        if isinstance(patch, property):
            if owner.__dict__.get(name) is patch:
                delattr(owner, name)
        elif _wrapped_by_us(owner, name):
            setattr(owner, name, owner.__dict__[name].__wrapped__)
        else:  # someone wrapped on top of us; pulling ours out would drop theirs
            logger.warning("fluxgate: %s.%s was re-patched by another library; left in place", owner.__name__, name)


def is_instrumented() -> bool:
    """True while fluxgate's patches are installed."""
    return bool(_installed)
