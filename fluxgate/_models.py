"""The records fluxgate passes between its layers.

Every record is a frozen attrs class: once a ``CostEvent`` leaves the caller's
thread nobody can change it, so the flusher and the sinks never need a lock.
"""

from __future__ import annotations

import enum
import json
import math
import numbers
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, TypedDict

import attrs

__all__ = [
    "CONTEXT_FIELDS",
    "SERVICE_TIERS",
    "AiEventUser",
    "ContextFields",
    "ContextFrame",
    "Cost",
    "CostEvent",
    "CostStatus",
    "CostTrackingResponse",
    "Iteration",
    "SessionFields",
    "Status",
    "Usage",
    "UsageFacts",
    "json_ready",
    "tracking_response",
]

#: The service tiers a scope may name (the npm package's ``serviceTier``).
SERVICE_TIERS = frozenset({"default", "standard", "batch", "flex", "priority"})

#: How far a cost can be trusted.
#: ``priced``: every token was priced from an official row.
#: ``estimated_price``: priced from a price row that is not official (a
#: third-party table, or a tier priced at standard rates).
#: ``estimated_usage``: the usage itself is an estimate: a stream that ended
#: (closed, cancelled, abandoned) before its final usage arrived.
#: ``partial``: priced, but part of the usage could not be priced exactly (for
#: example cache writes without their TTL split, billed at the 5-minute rate).
#: ``unpriced_model``: the model has no row; ``cost_usd`` is ``None``.
CostStatus = Literal["priced", "estimated_price", "estimated_usage", "partial", "unpriced_model"]


class Status(str, enum.Enum):
    """The outcome of a tracked call, as the npm package reports it."""

    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    BLOCKED = "BLOCKED"
    MAX_TOKENS = "MAX_TOKENS"
    CONTENT_FILTER = "CONTENT_FILTER"
    RECITATION = "RECITATION"
    MALFORMED_REQUEST = "MALFORMED_REQUEST"

    def __str__(self) -> str:
        return self.value


def _check_text(name: str, value: object, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        msg = f"'{name}' must be a str (got {value!r} that is a {type(value).__name__})."
        raise TypeError(msg)
    if not value.strip():
        msg = f"'{name}' must be a non-empty string (got {value!r})."
        raise ValueError(msg)


def _validate_text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_text(attribute.name, value)


#: A month's revenue from one user above this is a mistake (a unit or a field mixed up).
MAX_MONTHLY_REVENUE = 1e12


def _storable(value: object) -> object:
    """Text every sink can encode: a lone surrogate (``json.loads('"\\ud800"')``) becomes ``?``."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
    return value


def _storable_text(value: str | None) -> str | None:
    text = _storable(value)
    return text if isinstance(text, str) else None


def _revenue(value: object) -> object:
    """Any real number (int, float, Decimal, Fraction) as a float; anything else is left for the check."""
    if isinstance(value, (numbers.Real, Decimal)) and not isinstance(value, (bool, float)):
        try:
            return float(value)
        except (OverflowError, ValueError):
            return value
    return value


def _validate_revenue(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, float):
        msg = f"'{attribute.name}' must be a number (got {value!r} that is a {type(value).__name__})."
        raise TypeError(msg)
    if not math.isfinite(value) or not 0 <= value <= MAX_MONTHLY_REVENUE:
        msg = f"'{attribute.name}' must be a finite number of USD from 0 to {MAX_MONTHLY_REVENUE:.0f} (got {value!r})."
        raise ValueError(msg)


@attrs.frozen(kw_only=False)
class AiEventUser:
    """The end user a call was made for.

    Args:
        id: Your stable identifier for the user.
        name: A display name.
        email: A contact address.
        monthly_revenue: What the user pays you per month, in USD; reports
            set AI spend against it.

    >>> AiEventUser("u1", monthly_revenue=49.0).id
    'u1'
    """

    id: str = attrs.field(
        converter=_storable, validator=attrs.validators.and_(_validate_text, attrs.validators.instance_of(str))
    )
    name: str | None = attrs.field(default=None, kw_only=True, converter=_storable, validator=_validate_text)
    email: str | None = attrs.field(default=None, kw_only=True, converter=_storable, validator=_validate_text)
    monthly_revenue: float | None = attrs.field(
        default=None, kw_only=True, converter=_revenue, validator=_validate_revenue
    )

    def to_dict(self) -> dict[str, Any]:
        """The user as a JSON-ready dict (the shape sinks store)."""
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "monthly_revenue": self.monthly_revenue,
        }


# Already-frozen mappings pass through as they are: an event built from a
# frozen context and a frozen Cost copies nothing on the caller's hot path.
def _freeze_metadata(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if value is None or type(value) is MappingProxyType:
        return value
    return MappingProxyType(dict(value))


def _freeze_breakdown(value: Mapping[str, Decimal]) -> Mapping[str, Decimal]:
    if type(value) is MappingProxyType:
        return value
    return MappingProxyType(dict(value))


#: How deeply ``metadata`` may nest, and how long it may be as JSON: it is
#: stored with every event, so a runaway structure would cost every sink.
MAX_METADATA_DEPTH = 16
MAX_METADATA_CHARS = 64 * 1024


def _check_depth(value: object, left: int) -> None:
    if isinstance(value, Mapping):
        children: Any = value.values()
    elif isinstance(value, (list, tuple)):
        children = value
    else:
        return
    if left <= 0:
        msg = f"'metadata' must nest at most {MAX_METADATA_DEPTH} levels deep."
        raise ValueError(msg)
    for child in children:
        _check_depth(child, left - 1)


@attrs.frozen(kw_only=True)
class ContextFrame:
    """One scope's fields, or (from ``current_context()``) the merged view of all.

    ``None`` means "not set here"; an inner frame's set fields win over outer
    ones, and ``metadata`` merges key by key.
    """

    feature: str | None = None
    user: AiEventUser | None = None
    step: str | None = None
    session_id: str | None = None
    conversation_id: str | None = None
    service_tier: str | None = None
    metadata: Mapping[str, Any] | None = attrs.field(default=None, converter=_freeze_metadata)

    @property
    def user_id(self) -> str | None:
        """The user's id, or ``None`` when no user is set."""
        return None if self.user is None else self.user.id

    @classmethod
    def build(
        cls,
        *,
        feature: str | None = None,
        user: str | int | AiEventUser | None = None,
        step: str | None = None,
        session_id: str | None = None,
        conversation_id: str | None = None,
        service_tier: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ContextFrame:
        """Validate user-supplied fields and build a frame.

        Raises:
            TypeError: A field has the wrong type.
            ValueError: A field is empty, an unknown service tier, or metadata
                that is not JSON-serialisable.
        """
        for name, value in (
            ("feature", feature),
            ("step", step),
            ("session_id", session_id),
            ("conversation_id", conversation_id),
        ):
            _check_text(name, value)
        feature, step, session_id, conversation_id = (
            _storable_text(v) for v in (feature, step, session_id, conversation_id)
        )
        if isinstance(user, int) and not isinstance(user, bool):
            user = str(user)  # a numeric user id is stored as its decimal string
        if isinstance(user, str):
            _check_text("user", user)
            user = AiEventUser(user)
        elif user is not None and not isinstance(user, AiEventUser):
            msg = (
                f"'user' must be a str or int id, or a fluxgate.AiEventUser "
                f"(got {user!r} that is a {type(user).__name__})."
            )
            raise TypeError(msg)
        if service_tier is not None:
            _check_text("service_tier", service_tier)
            if service_tier not in SERVICE_TIERS:
                msg = f"'service_tier' must be one of {sorted(SERVICE_TIERS)} (got {service_tier!r})."
                raise ValueError(msg)
        if metadata is not None:
            if not isinstance(metadata, Mapping):
                msg = f"'metadata' must be a dict (got {metadata!r} that is a {type(metadata).__name__})."
                raise TypeError(msg)
            for key in metadata:
                if not isinstance(key, str):
                    msg = f"'metadata' keys must be str (got {key!r} that is a {type(key).__name__})."
                    raise TypeError(msg)
            _check_depth(metadata, MAX_METADATA_DEPTH)
            try:
                text = json.dumps(dict(metadata), allow_nan=False)
            except (TypeError, ValueError, RecursionError) as exc:
                msg = f"'metadata' must be JSON-serialisable ({exc})."
                raise ValueError(msg) from None
            if len(text) > MAX_METADATA_CHARS:
                msg = f"'metadata' must be at most {MAX_METADATA_CHARS} characters as JSON (got {len(text)})."
                raise ValueError(msg)
        return cls(
            feature=feature,
            user=user,
            step=step,
            session_id=session_id,
            conversation_id=conversation_id,
            service_tier=service_tier,
            metadata=metadata,
        )

    def merged_with(self, inner: ContextFrame) -> ContextFrame:
        """This frame with ``inner``'s set fields on top."""
        if self is _EMPTY_FRAME:
            return inner
        metadata = self.metadata
        if inner.metadata is not None:
            metadata = inner.metadata if metadata is None else {**metadata, **inner.metadata}
        return ContextFrame(
            feature=inner.feature if inner.feature is not None else self.feature,
            user=inner.user if inner.user is not None else self.user,
            step=inner.step if inner.step is not None else self.step,
            session_id=inner.session_id if inner.session_id is not None else self.session_id,
            conversation_id=inner.conversation_id if inner.conversation_id is not None else self.conversation_id,
            service_tier=inner.service_tier if inner.service_tier is not None else self.service_tier,
            metadata=metadata,
        )


#: The seven context fields, in order: what track_context, @track and the facade take.
CONTEXT_FIELDS = tuple(field.name for field in attrs.fields(ContextFrame))


class _ScopeFields(TypedDict, total=False):
    user: str | int | AiEventUser | None
    step: str | None
    session_id: str | None
    conversation_id: str | None
    service_tier: str | None
    metadata: Mapping[str, Any] | None


class ContextFields(_ScopeFields, total=False):
    """The context fields as keyword arguments: one definition the facade's signatures and stubs reuse."""

    feature: str | None


class SessionFields(_ScopeFields):
    """:class:`ContextFields` with ``feature`` required (``with_context``)."""

    feature: str


_EMPTY_FRAME = ContextFrame()


@attrs.frozen(kw_only=True)
class Iteration:
    """One entry of a beta response's ``usage.iterations`` (compaction, advisor...)."""

    type: str
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_creation_5m_input_tokens: int | None = None
    cache_creation_1h_input_tokens: int | None = None
    cache_read_input_tokens: int = 0


@attrs.frozen(kw_only=True)
class Usage:
    """Token and request counts of one API call, as the API reported them.

    ``input_tokens`` excludes cache reads and writes (Anthropic's convention).
    ``reasoning_tokens`` is already inside ``output_tokens``; it is reported,
    never billed twice. ``cache_creation_5m_input_tokens`` and
    ``cache_creation_1h_input_tokens`` are ``None`` when the response gave only
    the total.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int | None = None
    cache_creation_input_tokens: int = 0
    cache_creation_5m_input_tokens: int | None = None
    cache_creation_1h_input_tokens: int | None = None
    cache_read_input_tokens: int = 0
    web_search_requests: int = 0
    web_fetch_requests: int = 0
    #: The tier that served the call (``usage.service_tier``: standard, priority, batch).
    service_tier: str | None = None
    #: ``usage.speed``: ``"fast"`` bills at fast-mode rates.
    speed: str | None = None
    #: ``usage.inference_geo``: where inference ran.
    inference_geo: str | None = None
    iterations: tuple[Iteration, ...] = ()


class UsageFacts(NamedTuple):
    """A :class:`Usage`'s fields as a tuple: what the flusher reads the SDK's usage into.

    The same names, types and defaults as :class:`Usage`, made in one call
    instead of one attribute store per field (a frozen attrs class pays
    ``object.__setattr__`` for each of its 13): the flusher reads one usage
    per call. Never handed to users; pricing and the stores read either.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int | None = None
    cache_creation_input_tokens: int = 0
    cache_creation_5m_input_tokens: int | None = None
    cache_creation_1h_input_tokens: int | None = None
    cache_read_input_tokens: int = 0
    web_search_requests: int = 0
    web_fetch_requests: int = 0
    service_tier: str | None = None
    speed: str | None = None
    inference_geo: str | None = None
    iterations: tuple[Iteration, ...] = ()


@attrs.frozen(kw_only=True)
class Cost:
    """What a call cost, exactly.

    ``total_usd`` is ``None`` only when ``status == "unpriced_model"``.
    """

    total_usd: Decimal | None
    status: CostStatus
    breakdown: Mapping[str, Decimal] = attrs.field(factory=dict, converter=_freeze_breakdown)
    price_version: str = ""
    #: The price-table key the model resolved to (``None`` when unknown).
    resolved_model: str | None = None


class CostTrackingResponse:
    """What fluxgate hangs on a returned message, stream or exception.

    Mirrors the npm package's ``FluxGateCostTrackingResponse``: ``status``,
    ``cost`` (USD, ``None`` when unknown), ``tracking_id``, ``created_at``
    (Unix ms) and ``error_message``. Read-only.

    The cost may be worked out on first read: pricing runs off the caller's
    thread unless someone asks for it (see ``_pending.PendingEvent``).
    """

    # Private slots behind read-only properties: one is built for every
    # tracked call, and plain slot stores are the cheapest immutable record.
    __slots__ = ("_cost", "_created_at", "_error_message", "_price", "_status", "_tracking_id")

    def __init__(
        self,
        *,
        status: Status,
        cost: float | None = None,
        tracking_id: str | None,
        created_at: int | None,
        error_message: str | None = None,
        price: Callable[[], float | None] | None = None,
    ) -> None:
        self._status = status
        self._cost = cost
        self._tracking_id = tracking_id
        self._created_at = created_at
        self._error_message = error_message
        self._price = price

    @property
    def status(self) -> Status:
        """SUCCESS, ERROR, BLOCKED, MAX_TOKENS, CONTENT_FILTER, RECITATION or MALFORMED_REQUEST."""
        return self._status

    @property
    def cost(self) -> float | None:
        """The call's cost in USD, or None when it cannot be known."""
        price = self._price
        if price is not None:
            self._cost = price()
            self._price = None
        return self._cost

    @property
    def tracking_id(self) -> str | None:
        """The id of the call's :class:`CostEvent`."""
        return self._tracking_id

    @property
    def created_at(self) -> int | None:
        """When the call started, Unix time in milliseconds."""
        return self._created_at

    @property
    def error_message(self) -> str | None:
        """The API's error message, for a failed or blocked call."""
        return self._error_message

    def _key(self) -> tuple[object, ...]:
        return (self.status, self.cost, self.tracking_id, self.created_at, self.error_message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Plain data across pickle, copy and deepcopy (process pools included):
        # the cost is worked out now, and the pricing callable is left behind.
        return (_tracking_response, self._key())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CostTrackingResponse):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"CostTrackingResponse(status={self.status!r}, cost={self.cost!r}, tracking_id={self.tracking_id!r}, "
            f"created_at={self.created_at!r}, error_message={self.error_message!r})"
        )


#: The attribute fluxgate sets on returned messages, streams, responses and exceptions.
TRACKING_ATTRIBUTE = "fluxgate_cost_tracking_response"


def tracking_response(obj: object) -> CostTrackingResponse | None:
    """The :class:`CostTrackingResponse` fluxgate attached to ``obj``, or None.

    The typed way to read ``message.fluxgate_cost_tracking_response``: works
    on messages, streams, raw responses and the SDK's exceptions, and type
    checks without stubs for anthropic's classes.

    >>> tracking_response(object()) is None
    True
    """
    found = getattr(obj, TRACKING_ATTRIBUTE, None)
    return found if isinstance(found, CostTrackingResponse) else None


def _tracking_response(
    status: Status, cost: float | None, tracking_id: str | None, created_at: int | None, error_message: str | None
) -> CostTrackingResponse:
    return CostTrackingResponse(
        status=status, cost=cost, tracking_id=tracking_id, created_at=created_at, error_message=error_message
    )


@attrs.frozen(kw_only=True)
class CostEvent:
    """One tracked API call: the data contract every sink and report reads.

    Prompts and completions are never in it. ``created_at`` is Unix time in
    milliseconds; durations are milliseconds.
    """

    tracking_id: str
    created_at: int
    status: Status
    cost_usd: Decimal | None
    cost_status: CostStatus
    cost_breakdown: Mapping[str, Decimal] = attrs.field(factory=dict, converter=_freeze_breakdown)
    price_version: str = ""
    model: str | None = None
    api: str = "messages.create"
    platform: str = "anthropic"
    streamed: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int | None = None
    cache_creation_input_tokens: int = 0
    cache_creation_5m_input_tokens: int | None = None
    cache_creation_1h_input_tokens: int | None = None
    cache_read_input_tokens: int = 0
    web_search_requests: int = 0
    web_fetch_requests: int = 0
    stop_reason: str | None = None
    latency_ms: float | None = None
    time_to_first_token_ms: float | None = None
    stream_duration_ms: float | None = None
    request_id: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    # Context, copied from the caller's scope when the call started.
    feature: str | None = None
    user_id: str | None = None
    user: AiEventUser | None = None
    step: str | None = None
    session_id: str | None = None
    conversation_id: str | None = None
    service_tier: str | None = None
    metadata: Mapping[str, Any] | None = attrs.field(default=None, converter=_freeze_metadata)
    # Billing facts the response reported, kept so a cost can be recomputed.
    usage_service_tier: str | None = None
    speed: str | None = None
    inference_geo: str | None = None
    batch_id: str | None = None
    custom_id: str | None = None
    #: True for a stream that ended before the API finished it (closed, cancelled, abandoned).
    aborted: bool = False

    @property
    def tracking_response(self) -> CostTrackingResponse:
        """The npm-shaped summary of this event."""
        return CostTrackingResponse(
            status=self.status,
            cost=None if self.cost_usd is None else float(self.cost_usd),
            tracking_id=self.tracking_id,
            created_at=self.created_at,
            error_message=self.error_message,
        )

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data: Decimals as strings, the user as a dict."""
        return {field: json_ready(getattr(self, field)) for field in _EVENT_FIELDS}


def json_ready(value: object) -> Any:
    """A ``CostEvent`` field's value as ``to_dict()`` gives it: Decimals as strings, the user as a dict."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Status):
        return value.value
    if isinstance(value, AiEventUser):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: str(v) if isinstance(v, Decimal) else v for k, v in value.items()}
    return value


_EVENT_FIELDS: tuple[str, ...] = tuple(f.name for f in attrs.fields(CostEvent))
