"""``fluxgate.anthropic``: the npm package's API over the real SDK and the fake transport."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import pytest

import fluxgate
from fluxgate import AiEventUser, ContextFrame, CostEvent, FluxGate, Status, current_context, track_context
from fluxgate._fluxgate import active
from fluxgate.anthropic import TrackedClient, TrackedSession, create_anthropic_cost_tracker
from fluxgate.testing import FakeAnthropicAPI, FakeReply, FakeRequest, MemorySink, sse_body

MTOK = Decimal(1_000_000)
HELLO = [{"role": "user", "content": "Hello"}]
HAS_COMPLETIONS = hasattr(anthropic.Anthropic(api_key="x"), "completions")


def message_body(
    *, input_tokens: int = 120, output_tokens: int = 30, model: str = "claude-sonnet-4-6"
) -> dict[str, Any]:
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def stream_events(*, input_tokens: int = 50, output_tokens: int = 70) -> list[dict[str, Any]]:
    start = {**message_body(input_tokens=input_tokens, output_tokens=1), "content": [], "stop_reason": None}
    return [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
        {"type": "message_stop"},
    ]


def sonnet_46_cost(input_tokens: int, output_tokens: int) -> Decimal:
    return input_tokens * Decimal(3) / MTOK + output_tokens * Decimal(15) / MTOK


def call(resource: Any, **kwargs: Any) -> Any:
    """``messages.create`` with the required arguments filled in."""
    kwargs.setdefault("model", "claude-sonnet-4-6")
    kwargs.setdefault("max_tokens", 256)
    kwargs.setdefault("messages", HELLO)
    return resource.create(**kwargs)


class Tracker:
    """A FluxGate of the test's own with its MemorySink."""

    def __init__(self) -> None:
        self.sink = MemorySink()
        self.fg = FluxGate(sinks=[self.sink])

    def events(self) -> list[CostEvent]:
        assert self.fg.flush(timeout_s=10)
        return self.sink.events


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    made = Tracker()
    yield made
    made.fg.shutdown(timeout_s=5)


@pytest.fixture
def tracked(api: FakeAnthropicAPI, tracker: Tracker) -> TrackedClient[Any, Any]:
    return create_anthropic_cost_tracker(api.client(), tracker.fg)


def seen_by_api() -> tuple[FakeAnthropicAPI, list[tuple[ContextFrame, FluxGate | None]]]:
    """A fake that notes the scope and the tracker in force while each request is sent."""
    seen: list[tuple[ContextFrame, FluxGate | None]] = []

    def respond(request: FakeRequest) -> FakeReply | None:
        seen.append((current_context(), active()))
        if request.path.endswith("/count_tokens"):
            return FakeReply(json_body={"input_tokens": 11})
        if request.path == "/v1/complete":
            return FakeReply(json_body=COMPLETION)
        if request.path.endswith("/batches"):
            return FakeReply(json_body={"data": [], "has_more": False, "first_id": None, "last_id": None})
        return None

    return FakeAnthropicAPI(responder=respond), seen


class TestCreate:
    def test_installs_the_single_patch(self, api: FakeAnthropicAPI, tracker: Tracker) -> None:
        """Creating a tracker installs fluxgate's class-level patch, not a wrapper of its own."""
        from anthropic._base_client import SyncAPIClient

        assert type(SyncAPIClient.__dict__["request"]).__name__ == "function"
        create_anthropic_cost_tracker(api.client(), tracker.fg)
        assert fluxgate._instrument.patches.is_instrumented()
        patched = SyncAPIClient.__dict__["request"]
        assert isinstance(patched, fluxgate._instrument.patches.wrapt.FunctionWrapper)
        assert type(patched.__wrapped__).__name__ == "function"  # one layer: ours, once
        create_anthropic_cost_tracker(api.client(), tracker.fg)
        assert SyncAPIClient.__dict__["request"] is patched

    def test_client_is_not_modified(self, api: FakeAnthropicAPI, tracker: Tracker) -> None:
        """Calls on the plain client stay untracked when no global tracker is active."""
        client = api.client()
        create_anthropic_cost_tracker(client, tracker.fg)
        message = call(client.messages)
        assert not hasattr(message, "fluxgate_cost_tracking_response")
        assert tracker.events() == []

    def test_rejects_what_is_not_a_fluxgate(self, api: FakeAnthropicAPI) -> None:
        """``fg`` must be a FluxGate; the message says what to pass."""
        with pytest.raises(TypeError, match=r"'fg' must be a fluxgate.FluxGate \(got 'key'"):
            create_anthropic_cost_tracker(api.client(), "key")  # type: ignore[arg-type]

    def test_rejects_what_is_not_a_client(self, tracked: TrackedClient[Any, Any], tracker: Tracker) -> None:
        """``client`` must be an anthropic client, not a tracked one or anything else."""
        with pytest.raises(TypeError, match="'client' must be an anthropic client"):
            create_anthropic_cost_tracker(object(), tracker.fg)
        with pytest.raises(TypeError, match="'client' must be an anthropic client"):
            create_anthropic_cost_tracker(tracked, tracker.fg)

    def test_disabled_is_pass_through(
        self, api: FakeAnthropicAPI, tracker: Tracker, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With FLUXGATE_DISABLED=1 calls go straight to the SDK and nothing is recorded."""
        monkeypatch.setenv("FLUXGATE_DISABLED", "1")
        tracked = create_anthropic_cost_tracker(api.client(), tracker.fg)
        message = call(tracked.with_context(feature="off").messages)
        assert message.content[0].type == "text"
        assert not hasattr(message, "fluxgate_cost_tracking_response")
        assert tracker.events() == []

    def test_survives_global_shutdown(self, tracked: TrackedClient[Any, Any], tracker: Tracker) -> None:
        """Shutting the global tracker down (which removes the patch) does not stop the facade."""
        with fluxgate.testing.capture_events():
            pass
        assert not fluxgate._instrument.patches.is_instrumented()
        call(tracked.with_context(feature="after").messages)
        [event] = tracker.events()
        assert event.feature == "after"


class TestWithContext:
    def test_feature_missing_raises(self, tracked: TrackedClient[Any, Any]) -> None:
        """``feature`` is required: leaving it out raises TypeError naming it."""
        with pytest.raises(TypeError, match="feature"):
            tracked.with_context(user="u1")  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="requires 'feature'"):
            tracked.with_context(feature=None)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("fields", "error", "match"),
        [
            ({"feature": ""}, ValueError, "'feature' must be a non-empty string"),
            ({"feature": 3}, TypeError, "'feature' must be a str"),
            ({"feature": "f", "user": 7.5}, TypeError, "'user' must be a str or int id, or a fluxgate.AiEventUser"),
            ({"feature": "f", "service_tier": "gold"}, ValueError, "'service_tier' must be one of"),
            ({"feature": "f", "metadata": {"x": object()}}, ValueError, "'metadata' must be JSON-serialisable"),
            ({"feature": "f", "sessionId": "s"}, TypeError, "sessionId"),
        ],
    )
    def test_validates_like_track_context(
        self, tracked: TrackedClient[Any, Any], fields: dict[str, Any], error: type[Exception], match: str
    ) -> None:
        """Fields are validated at with_context, as track_context validates them (Python names only)."""
        with pytest.raises(error, match=match):
            tracked.with_context(**fields)

    def test_session_is_immutable(self, tracked: TrackedClient[Any, Any]) -> None:
        """with_context returns a new session; neither the client nor other sessions change."""
        chat = tracked.with_context(feature="chat", user="u1", metadata={"tenant": "a"})
        other = tracked.with_context(feature="other")
        assert isinstance(chat, TrackedSession)
        assert chat.context == ContextFrame.build(feature="chat", user="u1", metadata={"tenant": "a"})
        assert other.context == ContextFrame(feature="other")
        assert tracked.client.context == ContextFrame()
        with pytest.raises(AttributeError):
            chat.context = ContextFrame()  # type: ignore[misc]
        with pytest.raises(AttributeError):
            chat.feature = "x"  # type: ignore[attr-defined]
        with pytest.raises(TypeError):
            chat.context.metadata["tenant"] = "b"  # type: ignore[index]

    def test_session_reused_across_calls(self, api: FakeAnthropicAPI, tracker: Tracker) -> None:
        """A kept session tags every call made through it, and nothing outside it."""
        tracked = create_anthropic_cost_tracker(api.client(), tracker.fg)
        session = tracked.with_context(feature="chat", conversation_id="conv-abc")
        call(session.messages)
        call(tracked.client.messages)
        call(session.messages)
        first, untagged, third = tracker.events()
        assert (first.feature, first.conversation_id) == ("chat", "conv-abc")
        assert (untagged.feature, untagged.conversation_id) == (None, None)
        assert (third.feature, third.conversation_id) == ("chat", "conv-abc")
        assert current_context() == ContextFrame()
        assert active() is None

    def test_session_shared_by_threads(self, tracker: Tracker) -> None:
        """One session used by many threads at once: each call keeps its own fork."""

        def respond(request: FakeRequest) -> FakeReply:
            return FakeReply(json_body=message_body(), headers={"request-id": request.body["messages"][0]["content"]})

        api = FakeAnthropicAPI(responder=respond)
        session = create_anthropic_cost_tracker(api.client(), tracker.fg).with_context(feature="shared", user="u")
        barrier = threading.Barrier(10)

        def work(i: int) -> None:
            barrier.wait()
            for _ in range(3):
                call(session.messages.with_tracking(step=f"step-{i}"), messages=[{"role": "user", "content": f"{i}"}])

        threads = [threading.Thread(target=work, args=(i,)) for i in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        events = tracker.events()
        assert len(events) == 30
        for event in events:
            assert (event.feature, event.user_id, event.step) == ("shared", "u", f"step-{event.request_id}")


class TestMessages:
    def test_create(self, api: FakeAnthropicAPI, tracked: TrackedClient[Any, Any], tracker: Tracker) -> None:
        """messages.create gives the SDK's message, one event with every field, and its summary."""
        api.reply_json(message_body(input_tokens=1200, output_tokens=345))
        user = AiEventUser("u1", name="Ada", email="ada@example.com", monthly_revenue=49.0)
        session = tracked.with_context(
            feature="summarization",
            user=user,
            step="draft",
            session_id="s1",
            conversation_id="c1",
            service_tier="priority",
            metadata={"doc": 7},
        )
        message = call(session.messages)
        assert isinstance(message, anthropic.types.Message)
        [event] = tracker.events()
        assert (event.feature, event.user, event.user_id, event.step) == ("summarization", user, "u1", "draft")
        assert (event.session_id, event.conversation_id, event.service_tier) == ("s1", "c1", "priority")
        assert event.metadata == {"doc": 7}
        assert (event.input_tokens, event.output_tokens) == (1200, 345)
        assert event.cost_usd == sonnet_46_cost(1200, 345)
        response = message.fluxgate_cost_tracking_response
        assert (response.status, response.tracking_id) == (Status.SUCCESS, event.tracking_id)
        assert response.cost == float(sonnet_46_cost(1200, 345))

    def test_stream(self, api: FakeAnthropicAPI, tracked: TrackedClient[Any, Any], tracker: Tracker) -> None:
        """create(stream=True) is recorded when the stream ends, and the stream carries the summary."""
        api.reply_sse(sse_body(stream_events(input_tokens=50, output_tokens=70)))
        stream = call(tracked.with_context(feature="streaming-chat").messages, stream=True)
        assert stream.fluxgate_cost_tracking_response is None
        texts = [e.delta.text for e in stream if e.type == "content_block_delta" and e.delta.type == "text_delta"]
        assert texts == ["Hel", "lo"]
        [event] = tracker.events()
        assert (event.feature, event.streamed, event.input_tokens, event.output_tokens) == (
            "streaming-chat",
            True,
            50,
            70,
        )
        assert stream.fluxgate_cost_tracking_response.tracking_id == event.tracking_id

    def test_stream_uses_the_tracker_chosen_at_call_start(
        self, api: FakeAnthropicAPI, tracked: TrackedClient[Any, Any], tracker: Tracker
    ) -> None:
        """A stream read after the call returned, even under another tracker, reports to the facade's."""
        api.reply_sse(sse_body(stream_events()))
        stream = call(tracked.with_context(feature="late").messages, stream=True)
        elsewhere = MemorySink()
        fluxgate.init(sinks=[elsewhere])
        with track_context(feature="reader"):
            for _ in stream:
                pass
        [event] = tracker.events()
        assert event.feature == "late"
        assert fluxgate.flush(timeout_s=10)
        assert elsewhere.events == []

    def test_stream_helper(self, api: FakeAnthropicAPI, tracked: TrackedClient[Any, Any], tracker: Tracker) -> None:
        """messages.stream() passes through under the session's context and is recorded once."""
        api.reply_sse(sse_body(stream_events(input_tokens=5, output_tokens=9)))
        with tracked.with_context(feature="helper").messages.stream(
            model="claude-sonnet-4-6", max_tokens=64, messages=HELLO
        ) as stream:
            assert "".join(stream.text_stream) == "Hello"
        [event] = tracker.events()
        assert (event.feature, event.input_tokens, event.output_tokens) == ("helper", 5, 9)

    def test_with_streaming_response(
        self, api: FakeAnthropicAPI, tracked: TrackedClient[Any, Any], tracker: Tracker
    ) -> None:
        """with_streaming_response sends on entry, still in the session's context and to its tracker."""
        api.reply_json(message_body(input_tokens=21, output_tokens=4))
        session = tracked.with_context(feature="raw-stream", user="u7")
        with session.messages.with_streaming_response.create(
            model="claude-sonnet-4-6", max_tokens=64, messages=HELLO
        ) as response:
            message = response.parse()
        assert message.content[0].text == "ok"
        [event] = tracker.events()
        assert (event.feature, event.user_id, event.input_tokens, event.output_tokens) == ("raw-stream", "u7", 21, 4)

    def test_async_with_streaming_response(self, api: FakeAnthropicAPI, tracker: Tracker) -> None:
        """The async streaming-response manager is scoped on entry as well."""
        api.reply_json(message_body(input_tokens=8, output_tokens=2))
        session = create_anthropic_cost_tracker(api.async_client(), tracker.fg).with_context(feature="araw")

        async def main() -> None:
            async with session.messages.with_streaming_response.create(
                model="claude-sonnet-4-6", max_tokens=64, messages=HELLO
            ) as response:
                await response.parse()

        asyncio.run(main())
        [event] = tracker.events()
        assert (event.feature, event.input_tokens) == ("araw", 8)

    def test_other_methods_pass_through_in_context(self, tracker: Tracker) -> None:
        """count_tokens, batches and with_raw_response run under the session's context and tracker."""
        api, seen = seen_by_api()
        client = api.client()
        session = create_anthropic_cost_tracker(client, tracker.fg).with_context(feature="counting")
        counted = session.messages.count_tokens(model="claude-sonnet-4-6", messages=HELLO)
        assert counted.input_tokens == 11
        assert seen[-1] == (ContextFrame(feature="counting"), tracker.fg)
        list(session.messages.batches.list())
        assert seen[-1][0].feature == "counting"
        raw = session.messages.with_raw_response.create(model="claude-sonnet-4-6", max_tokens=8, messages=HELLO)
        assert raw.parse().type == "message"
        assert seen[-1][0].feature == "counting"
        assert "batches" in dir(session.messages)
        assert session.messages._client is client  # private names pass through untouched

    def test_every_resource_runs_in_context(self, tracker: Tracker) -> None:
        """messages, beta.messages (forked or not) and completions all send their request in the session's scope."""
        api, seen = seen_by_api()
        session = create_anthropic_cost_tracker(api.client(), tracker.fg).with_context(feature="scoped")
        call(session.messages)
        call(session.beta.messages)
        call(session.beta.messages.with_tracking(step="fork"))
        expected = [
            ContextFrame(feature="scoped"),
            ContextFrame(feature="scoped"),
            ContextFrame.build(feature="scoped", step="fork"),
        ]
        if HAS_COMPLETIONS:
            session.completions.create(model="claude-2.1", max_tokens_to_sample=8, prompt="\n\nHuman: Hi\n\nAssistant:")
            expected.append(ContextFrame(feature="scoped"))
        assert [frame for frame, _ in seen] == expected
        assert all(fg is tracker.fg for _, fg in seen)

    def test_signatures_are_the_sdks(self, api: FakeAnthropicAPI, tracked: TrackedClient[Any, Any]) -> None:
        """Tracked methods show anthropic's own signature, name and docstring."""
        client = api.client()
        session = tracked.with_context(feature="f")
        for name in ("create", "stream", "count_tokens"):
            mine, theirs = getattr(session.messages, name), getattr(client.messages, name)
            assert inspect.signature(mine) == inspect.signature(theirs)
            assert (mine.__name__, mine.__doc__) == (theirs.__name__, theirs.__doc__)
        assert inspect.signature(session.beta.messages.create) == inspect.signature(client.beta.messages.create)

    def test_resources_are_the_sdks_classes(self, tracked: TrackedClient[Any, Any]) -> None:
        """isinstance holds at run time as the type stubs claim: a tracked resource is the SDK's resource."""
        from anthropic.resources.beta.messages import Messages as BetaMessages
        from anthropic.resources.messages import Messages

        session = tracked.with_context(feature="f")
        assert isinstance(session.messages, Messages)
        assert isinstance(session.messages.with_tracking(step="s"), Messages)
        assert isinstance(session.beta.messages, BetaMessages)
        assert "tracked Messages" in repr(session.messages)

    def test_unknown_field_is_named(self, tracked: TrackedClient[Any, Any]) -> None:
        """A keyword that is not a context field is a TypeError naming it."""
        with pytest.raises(TypeError, match="'sessionId'"):
            tracked.with_context(feature="f").messages.with_tracking(sessionId="s")  # type: ignore[call-arg]

    def test_untagged_client(self, api: FakeAnthropicAPI, tracked: TrackedClient[Any, Any], tracker: Tracker) -> None:
        """``.client`` (and the tracked client's own ``messages``) records calls with no feature tag."""
        message = tracked.client.messages.create(model="claude-haiku-4-5", max_tokens=256, messages=HELLO)
        call(tracked.messages)
        first, second = tracker.events()
        assert (first.feature, first.model, second.feature) == (None, "claude-haiku-4-5", None)
        assert message.fluxgate_cost_tracking_response.tracking_id == first.tracking_id


class TestWithTracking:
    def test_merges_for_one_call(self, tracked: TrackedClient[Any, Any], tracker: Tracker) -> None:
        """with_tracking fields go on top of the session's for one call; the session is unchanged."""
        session = tracked.with_context(feature="chat", user="user-123", conversation_id="conv-abc")
        before = session.context
        call(session.messages.with_tracking(step="follow-up"))
        call(session.messages)
        fork, plain = tracker.events()
        assert (fork.feature, fork.user_id, fork.conversation_id, fork.step) == (
            "chat",
            "user-123",
            "conv-abc",
            "follow-up",
        )
        assert (plain.feature, plain.user_id, plain.conversation_id, plain.step) == (
            "chat",
            "user-123",
            "conv-abc",
            None,
        )
        assert session.context is before

    def test_merge_is_shallow(self, tracked: TrackedClient[Any, Any], tracker: Tracker) -> None:
        """A field given to with_tracking replaces the session's whole, metadata and user included."""
        session = tracked.with_context(
            feature="chat", user=AiEventUser("u1", monthly_revenue=10.0), metadata={"tenant": "a"}
        )
        forked = session.messages.with_tracking(user="u2", metadata={"turn": 3})
        call(forked)
        [event] = tracker.events()
        assert event.metadata == {"turn": 3}
        assert event.user == AiEventUser("u2")
        assert session.context.metadata == {"tenant": "a"}

    def test_forks_chain(self, tracked: TrackedClient[Any, Any], tracker: Tracker) -> None:
        """Forks of forks apply in order, and can even change the feature."""
        session = tracked.with_context(feature="chat")
        call(session.messages.with_tracking(step="a").with_tracking(feature="rerank", session_id="s"))
        [event] = tracker.events()
        assert (event.feature, event.step, event.session_id) == ("rerank", "a", "s")

    def test_validates(self, tracked: TrackedClient[Any, Any]) -> None:
        """with_tracking rejects bad fields at once, with track_context's messages."""
        messages = tracked.with_context(feature="chat").messages
        with pytest.raises(TypeError, match="'step' must be a str"):
            messages.with_tracking(step=3)
        with pytest.raises(ValueError, match="'service_tier' must be one of"):
            messages.with_tracking(service_tier="gold")

    def test_beta_messages(self, api: FakeAnthropicAPI, tracked: TrackedClient[Any, Any], tracker: Tracker) -> None:
        """beta.messages.create is tracked, and beta.messages.with_tracking forks as messages does."""
        api.reply_json({**message_body(model="claude-opus-4-6"), "container": None})
        session = tracked.with_context(feature="reasoning-agent", user="u1")
        message = session.beta.messages.with_tracking(step="reasoning").create(
            model="claude-opus-4-6",
            max_tokens=8000,
            messages=HELLO,
            betas=["interleaved-thinking-2025-05-14"],
        )
        call(session.beta.messages)
        fork, plain = tracker.events()
        assert (fork.feature, fork.user_id, fork.step, fork.model) == (
            "reasoning-agent",
            "u1",
            "reasoning",
            "claude-opus-4-6",
        )
        assert (plain.feature, plain.step) == ("reasoning-agent", None)
        assert message.fluxgate_cost_tracking_response.tracking_id == fork.tracking_id
        assert api.requests[0].headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"


class TestInsideTrackContext:
    def test_one_event_facade_wins(self, tracked: TrackedClient[Any, Any], tracker: Tracker) -> None:
        """Inside track_context a facade call is recorded once; its fields win, the rest are inherited."""
        session = tracked.with_context(feature="facade", metadata={"b": 2})
        with track_context(feature="outer", step="outer-step", metadata={"a": 1, "b": 1}):
            call(session.messages)
            assert current_context().feature == "outer"
        [event] = tracker.events()
        assert (event.feature, event.step) == ("facade", "outer-step")
        assert event.metadata == {"a": 1, "b": 2}

    def test_once_when_the_global_tracker_is_the_same(self, api: FakeAnthropicAPI) -> None:
        """With fg from init() the call is recorded once, not once per mechanism."""
        sink = MemorySink()
        fg = fluxgate.init(sinks=[sink])
        tracked = create_anthropic_cost_tracker(api.client(), fg)
        with track_context(feature="outer"):
            call(tracked.with_context(feature="facade").messages)
        assert fluxgate.flush(timeout_s=10)
        [event] = sink.events
        assert event.feature == "facade"

    def test_routes_to_its_own_tracker(
        self, api: FakeAnthropicAPI, tracked: TrackedClient[Any, Any], tracker: Tracker
    ) -> None:
        """Facade calls go to the facade's FluxGate; plain calls still go to the global one."""
        global_sink = MemorySink()
        fluxgate.init(sinks=[global_sink])
        with track_context(feature="outer"):
            call(tracked.with_context(feature="facade").messages)
            call(api.client().messages)
        assert fluxgate.flush(timeout_s=10)
        [mine] = tracker.events()
        [theirs] = global_sink.events
        assert (mine.feature, theirs.feature) == ("facade", "outer")

    def test_untagged_inherits_enclosing(self, tracked: TrackedClient[Any, Any], tracker: Tracker) -> None:
        """``.client`` adds no fields, so an enclosing scope's fields apply."""
        with track_context(feature="outer"):
            call(tracked.client.messages)
        [event] = tracker.events()
        assert event.feature == "outer"


class TestErrors:
    @pytest.mark.parametrize(
        ("status_code", "status", "raised"),
        [
            (500, Status.ERROR, anthropic.InternalServerError),
            (400, Status.MALFORMED_REQUEST, anthropic.BadRequestError),
        ],
    )
    def test_recorded_then_raised(
        self, api: FakeAnthropicAPI, tracker: Tracker, status_code: int, status: Status, raised: type[Exception]
    ) -> None:
        """An API error is recorded (status ERROR or MALFORMED_REQUEST) before it propagates unchanged."""
        api.reply_error(status_code, "some_error", "went wrong")
        tracked = create_anthropic_cost_tracker(api.client(), tracker.fg)
        with pytest.raises(anthropic.APIStatusError) as info:
            call(tracked.with_context(feature="code-review").messages)
        assert (type(info.value), info.value.status_code) == (raised, status_code)
        [event] = tracker.events()
        assert (event.status, event.feature, event.error_message) == (status, "code-review", "went wrong")
        response = info.value.fluxgate_cost_tracking_response  # type: ignore[attr-defined]
        assert (response.status, response.tracking_id) == (status, event.tracking_id)
        assert current_context() == ContextFrame()
        assert active() is None

    def test_async_error(self, api: FakeAnthropicAPI, tracker: Tracker) -> None:
        """An async error is recorded too, with the session's fields."""
        api.reply_error(529, "overloaded_error", "Overloaded")
        session = create_anthropic_cost_tracker(api.async_client(), tracker.fg).with_context(feature="async-err")

        async def main() -> None:
            await call(session.messages)

        with pytest.raises(anthropic.APIStatusError):
            asyncio.run(main())
        [event] = tracker.events()
        assert (event.status, event.feature) == (Status.ERROR, "async-err")


class TestAsync:
    def test_create_and_stream(self, api: FakeAnthropicAPI, tracker: Tracker) -> None:
        """Over AsyncAnthropic: create and create(stream=True) are tracked with the session's fields."""
        api.reply_json(message_body(input_tokens=10, output_tokens=20))
        api.reply_sse(sse_body(stream_events(input_tokens=5, output_tokens=9)))
        tracked = create_anthropic_cost_tracker(api.async_client(), tracker.fg)
        session = tracked.with_context(feature="async-chat")

        async def main() -> tuple[Any, Any]:
            message = await call(session.messages)
            stream = await call(session.messages.with_tracking(step="s"), stream=True)
            async for _ in stream:
                pass
            return message, stream

        message, stream = asyncio.run(main())
        first, second = tracker.events()
        assert (first.feature, first.step, first.input_tokens) == ("async-chat", None, 10)
        assert (second.feature, second.step, second.streamed) == ("async-chat", "s", True)
        assert message.fluxgate_cost_tracking_response.tracking_id == first.tracking_id
        assert stream.fluxgate_cost_tracking_response.tracking_id == second.tracking_id

    def test_awaited_in_another_task(self, tracker: Tracker) -> None:
        """A coroutine made in one place and awaited in a new task still carries the session."""
        api, seen = seen_by_api()
        session = create_anthropic_cost_tracker(api.async_client(), tracker.fg).with_context(feature="task")

        async def main() -> None:
            pending = call(session.messages)
            assert current_context() == ContextFrame()
            await asyncio.create_task(pending)

        asyncio.run(main())
        assert seen == [(ContextFrame(feature="task"), tracker.fg)]
        [event] = tracker.events()
        assert event.feature == "task"

    def test_concurrent_sessions_and_trackers(self) -> None:
        """Concurrent tasks through two trackers each land in their own FluxGate with their own fields."""
        a, b = Tracker(), Tracker()

        def respond(request: FakeRequest) -> FakeReply:
            return FakeReply(json_body=message_body(), headers={"request-id": request.body["messages"][0]["content"]})

        api = FakeAnthropicAPI(responder=respond)

        async def main() -> None:
            client = api.async_client()
            tracked = {
                "a": create_anthropic_cost_tracker(client, a.fg),
                "b": create_anthropic_cost_tracker(client, b.fg),
            }

            async def work(name: str, i: int) -> None:
                await asyncio.sleep(0)
                session = tracked[name].with_context(feature=f"{name}-{i}")
                await call(session.messages, messages=[{"role": "user", "content": f"{name}-{i}"}])

            await asyncio.gather(*(work(name, i) for i in range(50) for name in "ab"))

        try:
            asyncio.run(main())
            for name, t in (("a", a), ("b", b)):
                events = t.events()
                assert len(events) == 50
                assert all(e.feature == e.request_id and e.feature.startswith(name) for e in events)
        finally:
            a.fg.shutdown(timeout_s=5)
            b.fg.shutdown(timeout_s=5)

    def test_beta(self, api: FakeAnthropicAPI, tracker: Tracker) -> None:
        """beta.messages.with_tracking(...).create over AsyncAnthropic is tracked."""
        tracked = create_anthropic_cost_tracker(api.async_client(), tracker.fg)

        async def main() -> Any:
            return await call(tracked.with_context(feature="abeta").beta.messages.with_tracking(step="r"))

        message = asyncio.run(main())
        [event] = tracker.events()
        assert (event.feature, event.step) == ("abeta", "r")
        assert message.fluxgate_cost_tracking_response.tracking_id == event.tracking_id


COMPLETION = {
    "type": "completion",
    "id": "compl_01EjfrPvPEsRDRUKD6VoBxtK",
    "completion": " Hello!",
    "stop_reason": "stop_sequence",
    "model": "claude-2.1",
    "stop": "\n\nHuman:",
    "log_id": "compl_01EjfrPvPEsRDRUKD6VoBxtK",
}


class TestLegacyCompletions:
    @pytest.mark.skipif(not HAS_COMPLETIONS, reason="this anthropic release has no legacy completions")
    def test_tracked(self, api: FakeAnthropicAPI, tracked: TrackedClient[Any, Any], tracker: Tracker) -> None:
        """completions.create is tracked with the session's fields where the SDK has it."""
        api.reply_json(COMPLETION)
        completion = tracked.with_context(feature="legacy-completion").completions.create(
            model="claude-2.1", max_tokens_to_sample=512, prompt="\n\nHuman: Hi\n\nAssistant:"
        )
        assert completion.completion == " Hello!"
        assert api.requests[0].path == "/v1/complete"
        [event] = tracker.events()
        assert (event.feature, event.model) == ("legacy-completion", "claude-2.1")
        assert completion.fluxgate_cost_tracking_response.tracking_id == event.tracking_id

    @pytest.mark.skipif(HAS_COMPLETIONS, reason="this anthropic release has legacy completions")
    def test_absent(self, tracked: TrackedClient[Any, Any]) -> None:
        """Where the SDK has no completions, asking for them says so."""
        session = tracked.with_context(feature="legacy-completion")
        with pytest.raises(AttributeError, match=r"installed anthropic release \(.+\) has no legacy Text Completions"):
            session.completions  # noqa: B018
        assert not hasattr(tracked, "completions")
