"""The summary hung on a tracked call's message: a view of the call's facts that behaves as a plain one."""

from __future__ import annotations

import copy
import gc
import os
import pickle
import re
from typing import Any

import pydantic

import fluxgate
from fluxgate import CostTrackingResponse, Status
from fluxgate._ids import new_tracking_id, tracking_id_text, tracking_serial
from fluxgate._recording import Call, PendingEvent
from fluxgate.testing import FakeAnthropicAPI, MemorySink

from ..helpers import message_body

KW: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
}
_ID = re.compile(r"[0-9a-f]{32}")


def tracked_message(sink: MemorySink, **usage: int) -> Any:
    fluxgate.init(sinks=[sink])
    api = FakeAnthropicAPI()
    api.reply_json(message_body(**usage))
    return api.client().messages.create(**KW)


class TestTheSummary:
    def test_read_before_delivery_it_names_the_stored_event(self) -> None:
        """Read before the flusher has the event, the summary's id, time and cost are the stored event's."""
        sink = MemorySink()
        message = tracked_message(sink, input_tokens=1200, output_tokens=345)
        summary = message.fluxgate_cost_tracking_response
        seen = (summary.status, summary.tracking_id, summary.created_at, summary.cost, summary.error_message)
        assert fluxgate.flush(timeout_s=10)
        [event] = sink.events
        assert seen == (Status.SUCCESS, event.tracking_id, event.created_at, float(event.cost_usd), None)
        assert _ID.fullmatch(event.tracking_id)

    def test_read_after_delivery_it_is_the_same(self) -> None:
        sink = MemorySink()
        message = tracked_message(sink, input_tokens=10, output_tokens=2)
        assert fluxgate.flush(timeout_s=10)
        [event] = sink.events
        summary = message.fluxgate_cost_tracking_response
        assert (summary.tracking_id, summary.cost) == (event.tracking_id, float(event.cost_usd))

    def test_it_is_a_cost_tracking_response_to_every_reader(self) -> None:
        """isinstance, equality with a plain one, hash, repr; pickled and copied it is a plain one."""
        summary = tracked_message(MemorySink(), input_tokens=10, output_tokens=2).fluxgate_cost_tracking_response
        plain = CostTrackingResponse(
            status=summary.status,
            cost=summary.cost,
            tracking_id=summary.tracking_id,
            created_at=summary.created_at,
        )
        assert isinstance(summary, CostTrackingResponse)
        assert summary == plain
        assert hash(summary) == hash(plain)
        assert repr(summary) == repr(plain)
        for twin in (pickle.loads(pickle.dumps(summary)), copy.copy(summary), copy.deepcopy(summary)):
            assert type(twin) is CostTrackingResponse
            assert twin == plain


class TestTrackingIds:
    def test_text_of_a_serial_is_32_hex_digits_and_unique(self) -> None:
        serials = [tracking_serial() for _ in range(1000)]
        texts = {tracking_id_text(serial) for serial in serials}
        assert len(texts) == 1000
        assert all(_ID.fullmatch(text) for text in texts)
        assert len({text[:16] for text in texts}) == 1  # one process, one prefix
        assert tracking_id_text(5) == "0" * 31 + "5"  # a prefix with leading zeros keeps them
        assert tracking_id_text(2**128 - 1) == "f" * 32

    def test_new_tracking_id_is_the_text_of_the_next_serial(self) -> None:
        before = tracking_serial()
        assert new_tracking_id() == tracking_id_text(before + 1)

    def test_a_forked_child_draws_a_new_prefix(self) -> None:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: send its id, then leave without running the parent's atexit hooks
            os.write(write, new_tracking_id().encode())
            os._exit(0)
        os.close(write)
        child = os.read(read, 64).decode()
        os.close(read)
        os.waitpid(pid, 0)
        assert _ID.fullmatch(child)
        assert child[:16] != new_tracking_id()[:16]


class TestOneObjectPerCall:
    def test_a_tracked_call_leaves_no_reference_cycle(self) -> None:
        """The call is its own event and does not keep its summary: dropping the message frees both at once."""
        sink = MemorySink()
        fluxgate.init(sinks=[sink])
        api = FakeAnthropicAPI()
        api.reply_json(message_body(input_tokens=10, output_tokens=2))
        client = api.client()
        client.messages.create(**KW)  # warm: the SDK's and fluxgate's caches
        assert fluxgate.flush(timeout_s=10)
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            message = client.messages.create(**KW)
            assert message.fluxgate_cost_tracking_response.cost is not None
            assert fluxgate.flush(timeout_s=10)
            del message
            gc.collect()
            left = [obj for obj in gc.garbage if isinstance(obj, (PendingEvent, CostTrackingResponse))]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
        assert left == []

    def test_a_call_records_one_outcome(self) -> None:
        """A second outcome for a call already queued changes nothing the flusher holds."""
        sink = MemorySink()
        fg = fluxgate.init(sinks=[sink])
        call = Call(fg, "messages.create", model="claude-sonnet-4-5")
        assert call.response is None
        call.succeed(message_body(input_tokens=10, output_tokens=2))
        first = call.response
        call.error("overloaded_error", "a late second outcome")
        assert fluxgate.flush(timeout_s=10)
        [event] = sink.events
        assert (event.status, event.error_message, event.input_tokens) == (Status.SUCCESS, None, 10)
        assert call.response == first


class TestWhatSucceedReads:
    """``Call.succeed`` reads a message from its ``__dict__``, and what its model does not declare from its extras."""

    def test_usage_the_model_does_not_declare_is_read_from_its_extras(self) -> None:
        """A response class without a ``usage`` field (extra="allow") still gives its usage to the event."""

        class Reply(pydantic.BaseModel):  # declares no usage: an older SDK's model for a newer API
            model_config = pydantic.ConfigDict(extra="allow")
            model: str
            stop_reason: str | None = None

        reply = Reply.model_validate(
            {"model": "claude-sonnet-4-5", "stop_reason": "end_turn", "usage": {"input_tokens": 7, "output_tokens": 3}}
        )
        assert "usage" not in reply.__dict__  # the case under test: pydantic keeps it in the extras
        sink = MemorySink()
        fg = fluxgate.init(sinks=[sink])
        call = Call(fg, "messages.create", model="claude-sonnet-4-5")
        call.succeed(reply)
        assert fluxgate.flush(timeout_s=10)
        [event] = sink.events
        assert (event.input_tokens, event.output_tokens, event.stop_reason) == (7, 3, "end_turn")
        assert reply.fluxgate_cost_tracking_response.tracking_id == event.tracking_id
        assert "fluxgate_cost_tracking_response" not in reply.model_dump()

    def test_the_request_id_the_sdk_set_on_the_message_is_recorded(self) -> None:
        """The ``_request_id`` the SDK sets on a returned message (from the request-id header) is the event's."""
        sink = MemorySink()
        fluxgate.init(sinks=[sink])
        api = FakeAnthropicAPI()
        api.reply_json(message_body(input_tokens=5, output_tokens=1), headers={"request-id": "req_from_header"})
        message = api.client().messages.create(**KW)
        assert fluxgate.flush(timeout_s=10)
        [event] = sink.events
        assert message._request_id == event.request_id == "req_from_header"
