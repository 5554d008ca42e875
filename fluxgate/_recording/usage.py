"""SDK responses and stream events -> :class:`Usage`.

Duck-typed on purpose: anthropic's pydantic models, their beta twins, plain
dicts parsed from JSON and objects from SDK releases we have never seen all
go through the same ``_get``. A field of the wrong type reads as absent; the
callers decide what a missing usage means.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from .._models import Iteration, Usage, UsageFacts

__all__ = ["StreamAccumulator", "detached", "event_type", "fields", "get", "usage_facts", "usage_from"]


def get(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]``; None when absent."""
    if obj is None:
        return None
    if type(obj) is dict:
        return obj.get(name)
    # Attributes first: an isinstance(obj, Mapping) check is an ABC lookup,
    # and this runs a dozen times per tracked call.
    value = getattr(obj, name, None)
    if value is None and isinstance(obj, Mapping):
        return obj.get(name)
    return value


# Classes whose instances keep their fields in ``__dict__`` (pydantic models,
# v1 and v2), found once per class. Reading their ``__dict__`` skips pydantic's
# ``__getattr__``, which is slow for absent fields (it raises inside).
_PLAIN: dict[type, bool] = {}


def fields(obj: Any) -> Mapping[str, Any] | None:
    """A mapping view of a model or dict, for reading many fields; None if neither."""
    cls = type(obj)
    if cls is dict:
        return obj  # type: ignore[no-any-return]
    plain = _PLAIN.get(cls)
    if plain is None:
        plain = _PLAIN[cls] = hasattr(cls, "model_fields") or hasattr(cls, "__fields__")
    if plain:
        values: dict[str, Any] = obj.__dict__
        extra = getattr(obj, "__pydantic_extra__", None)
        return {**values, **extra} if extra else values
    if isinstance(obj, Mapping):
        return obj
    return None


#: The fields of a usage the SDK gives as models of their own.
_NESTED = ("cache_creation", "server_tool_use", "output_tokens_details")


def detached(usage: Any) -> Any:
    """``usage`` as a plain dict (its nested models as dicts too), for a call waiting to be written.

    A queued call lives until the flusher writes it. The SDK's usage is a
    model with a ``__dict__``, a set of the fields given and a model of its
    own for the cache write's split: six objects the collector tracks,
    promoted through its generations while they wait, so tracked calls
    brought three times the collections, full ones of the whole heap
    included, that untracked calls never cause. A dict of plain values leaves
    the collector's lists at its next pass. A dict or an object that is not
    a model is kept as it is.
    """
    if _PLAIN.get(type(usage)):  # a model class seen before: fields()'s view, copied, without its call
        extra = getattr(usage, "__pydantic_extra__", None)
        plain = {**usage.__dict__, **extra} if extra else usage.__dict__.copy()
    else:
        view = fields(usage)
        if type(view) is not dict or view is usage:
            return usage
        plain = dict(view)
    return _nested_plain(plain)


def _nested_plain(plain: dict[str, Any]) -> dict[str, Any]:
    """``plain`` (a usage's own dict) with its nested SDK models made dicts of their fields, in place."""
    for name in _NESTED:
        inner = plain.get(name)
        if inner is not None and type(inner) is not dict:
            # A field of an SDK model is a model too: its __dict__, unless it has extras.
            inner_own = getattr(inner, "__dict__", None)
            if type(inner_own) is dict and not getattr(inner, "__pydantic_extra__", None):
                plain[name] = inner_own.copy()
    return plain


def _reader(obj: Any) -> Callable[[str], Any]:
    """``get`` bound to ``obj``, for reading many of its fields: its mapping view's ``get`` where it has one.

    ``get()`` on a pydantic model takes pydantic's slow path (an
    AttributeError raised and caught, then an ABC check) for every field the
    SDK release does not declare; its own fields read as one mapping do not.
    """
    view = fields(obj)
    return partial(get, obj) if view is None else view.get


def event_type(event: Any) -> str | None:
    """A stream event's ``type``, read without pydantic's attribute machinery."""
    # ``type`` is a declared field of every SDK event model, so plain
    # attribute access finds it without pydantic's slow path for misses.
    kind = event.get("type") if type(event) is dict else getattr(event, "type", None)
    return kind if type(kind) is str else None


def _int(obj: Any, name: str) -> int | None:
    value = get(obj, name)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _str(obj: Any, name: str) -> str | None:
    value = get(obj, name)
    return value if isinstance(value, str) else None


def _iterations(raw: Any) -> tuple[Iteration, ...]:
    if not isinstance(raw, (list, tuple)):
        return ()
    out = []
    for item in raw:
        kind = _str(item, "type")
        if kind is None:
            continue
        split = get(item, "cache_creation")
        out.append(
            Iteration(
                type=kind,
                model=_str(item, "model"),
                input_tokens=_int(item, "input_tokens") or 0,
                output_tokens=_int(item, "output_tokens") or 0,
                cache_creation_input_tokens=_int(item, "cache_creation_input_tokens") or 0,
                cache_creation_5m_input_tokens=_int(split, "ephemeral_5m_input_tokens"),
                cache_creation_1h_input_tokens=_int(split, "ephemeral_1h_input_tokens"),
                cache_read_input_tokens=_int(item, "cache_read_input_tokens") or 0,
            )
        )
    return tuple(out)


def usage_from(raw: Any) -> Usage | None:
    """Read a ``usage`` object (model or dict); None if it has no token counts."""
    facts = usage_facts(raw)
    return None if facts is None else Usage(**facts._asdict())


def usage_facts(raw: Any) -> UsageFacts | None:
    """``usage_from`` into a :class:`UsageFacts` (the flusher's cheaper record of the same fields).

    Made from its values in field order: a class called with thirteen
    keywords gets them as a dict first (twice the instructions of the rest).
    """
    if raw is None:
        return None
    # A dict (what a tracked call keeps: ``detached``) is its own view: no call to fields().
    view = raw if type(raw) is dict else fields(raw)
    if view is None:  # an object of a shape we do not know: read its attributes
        view = {name: getattr(raw, name, None) for name in _USAGE_FIELDS}
    get = view.get
    input_tokens, output_tokens, total_write, read = (
        get("input_tokens"),
        get("output_tokens"),
        get("cache_creation_input_tokens"),
        get("cache_read_input_tokens"),
    )
    if type(input_tokens) is not int or type(output_tokens) is not int or type(total_write) is not int:
        # Not the API's usual usage (all three given): a count of another type reads as absent.
        input_tokens = input_tokens if type(input_tokens) is int else None
        output_tokens = output_tokens if type(output_tokens) is int else None
        if input_tokens is None and output_tokens is None:
            return None
        total_write = total_write if type(total_write) is int else None
    split = get("cache_creation")
    if split is None:
        five = hour = None
    else:  # the TTL split: a model or a dict, read as one mapping (the API sends it on every response)
        parts = split if type(split) is dict else fields(split)
        if parts is None:
            five, hour = _int(split, "ephemeral_5m_input_tokens"), _int(split, "ephemeral_1h_input_tokens")
        else:
            five, hour = parts.get("ephemeral_5m_input_tokens"), parts.get("ephemeral_1h_input_tokens")
        if type(five) is not int or type(hour) is not int or total_write is None:  # not the usual split
            five, hour, total_write = _split(five, hour, total_write)
    server, details, iterations = get("server_tool_use"), get("output_tokens_details"), get("iterations")
    tier, speed, geo = get("service_tier"), get("speed"), get("inference_geo")
    return _new_facts(
        (
            input_tokens or 0,
            output_tokens or 0,
            None if details is None else _int(details, "thinking_tokens"),  # reasoning_tokens
            total_write or 0,  # cache_creation_input_tokens, then its 5m and 1h parts
            five,
            hour,
            read if type(read) is int else 0,  # cache_read_input_tokens
            0 if server is None else _int(server, "web_search_requests") or 0,
            0 if server is None else _int(server, "web_fetch_requests") or 0,
            tier if type(tier) is str else None,  # service_tier
            speed if type(speed) is str else None,
            geo if type(geo) is str else None,  # inference_geo
            () if iterations is None else _iterations(iterations),
        )
    )


def _split(five: Any, hour: Any, total_write: int | None) -> tuple[int | None, int | None, int | None]:
    """The cache write's 5m and 1h parts and its total, from a split with a part missing (or not an int).

    A split with neither part leaves the parts None; with one, the other is 0,
    and a missing total is their sum.
    """
    five = five if type(five) is int else None
    hour = hour if type(hour) is int else None
    if five is None and hour is None:
        return None, None, total_write
    if total_write is None:
        total_write = (five or 0) + (hour or 0)
    return five or 0, hour or 0, total_write


#: A UsageFacts from its values in field order, made in C (``tuple.__new__``).
_new_facts: Callable[[tuple[Any, ...]], UsageFacts] = partial(tuple.__new__, UsageFacts)

#: The fields ``usage_facts`` reads, in the order it unpacks them.
_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cache_creation",
    "server_tool_use",
    "output_tokens_details",
    "service_tier",
    "speed",
    "inference_geo",
    "iterations",
)


#: ``message_delta.usage`` fields that overwrite ``message_start``'s when not null.
_DELTA_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "server_tool_use",
    "output_tokens_details",
    "iterations",
)


_START_FIELDS = (*_DELTA_FIELDS, "cache_creation", "service_tier", "speed", "inference_geo")


class StreamAccumulator:
    """Folds stream events into the final usage, exactly as the API means it.

    ``message_start`` gives the input side; each ``message_delta`` carries
    cumulative counts that overwrite (never add to) what came before, and
    null fields leave the earlier value alone. Legacy ``completion`` events
    give the model and stop reason only: their usage stays unknown (None).
    """

    __slots__ = ("_usage", "finished", "message_id", "model", "saw_delta", "saw_start", "stop_reason")

    def __init__(self) -> None:
        self._usage: dict[str, Any] = {}
        self.model: str | None = None
        self.message_id: str | None = None
        self.stop_reason: str | None = None
        self.saw_start = False
        self.saw_delta = False
        self.finished = False

    def feed(self, event: Any, kind: str | None = None) -> None:
        """Take one event (an SDK model or a dict), and its ``type`` if known."""
        if kind is None:
            kind = event_type(event)
        if kind == "message_start":
            self._start(get(event, "message"))
        elif kind == "message_delta":
            self._delta(event)
        elif kind == "message_stop":
            self.finished = True
        elif kind == "completion":
            self._completion(event)

    def _start(self, message: Any) -> None:
        self.saw_start = True
        self.model = _str(message, "model")
        self.message_id = _str(message, "id")
        usage = get(message, "usage")
        if usage is not None:
            read = _reader(usage)
            self._usage = {name: read(name) for name in _START_FIELDS}

    def _completion(self, event: Any) -> None:
        # Legacy /v1/complete streams: every event repeats the model, the last
        # one has the stop reason, and none carries usage.
        self.model = _str(event, "model") or self.model
        stop = _str(event, "stop_reason")
        if stop is not None:
            self.stop_reason = stop
            self.finished = True

    def _delta(self, event: Any) -> None:
        self.saw_delta = True
        stop = _str(get(event, "delta"), "stop_reason")
        if stop is not None:
            self.stop_reason = stop
        usage = get(event, "usage")
        if usage is None:
            return
        read = _reader(usage)
        for name in _DELTA_FIELDS:
            value = read(name)
            if value is not None:
                self._usage[name] = value

    def usage(self) -> Usage | None:
        """The usage as of the last event, or None before ``message_start``."""
        if not self._usage:
            return None
        return usage_from(self._usage)

    def sdk_usage(self) -> dict[str, Any] | None:
        """The usage as of the last event as the SDK's fields, or None where ``usage()`` is None.

        What a finished stream's call keeps until the flusher reads it
        (``usage_facts``), as a create's call keeps ``detached``'s copy: a
        copy, its nested models as dicts, and no :class:`Usage` made on the
        caller's thread.
        """
        found = self._usage
        if type(found.get("input_tokens")) is not int and type(found.get("output_tokens")) is not int:
            return None  # usage_facts reads no counts from it
        return _nested_plain(dict(found))
