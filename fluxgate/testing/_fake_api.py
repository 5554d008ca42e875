"""The fake Anthropic API of ``fluxgate.testing``: Messages, Bedrock, Vertex, Message Batches and Admin reports.

:class:`FakeAnthropicAPI` is the Messages fake (``_fake_messages``) plus the
routes of the other platforms, all served in process by an httpx(2)
``MockTransport``; the wire formats are in ``_fake_wire``. The Admin API's
usage and cost reports (what ``fluxgate reconcile`` reads) are answered by
``fluxgate._reconcile`` from the Messages calls this fake answered.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ._fake_messages import FakeMessagesAPI
from ._fake_wire import AWSEventStreamDecoder, FakeReply, FakeRequest, achunks, event_stream_body, http_library

if TYPE_CHECKING:
    from .._reconcile import AnsweredCall

__all__ = ["FakeAnthropicAPI"]


class FakeAnthropicAPI(FakeMessagesAPI):
    """An in-process fake of the Anthropic Messages API.

    Unscripted requests get a plausible reply: the requested model, input
    tokens estimated from the request's size, a short text, and for
    ``stream=True`` the real event sequence. Script exact replies with
    :meth:`reply` (or the ``reply_*`` shortcuts); they are served in order.
    ``.requests`` lists everything received, so tests can assert that a call
    was (or was not) sent.

    The Admin API's usage and cost reports (``GET /v1/organizations/...``)
    are served too, from :attr:`answered_calls` (every ``/v1/messages`` call
    answered with a 200, billed at fluxgate's price) plus
    :attr:`untracked_usage`; :meth:`serve_admin` puts them on a local port
    for ``fluxgate reconcile``.

    Args:
        responder: Decides the reply for unscripted requests instead of the
            default; called with the parsed JSON body.
        untracked_usage: Spend the reports should also count that no tracked
            call made (the Console, another application), as
            ``fluxgate._reconcile.AnsweredCall`` records.
    """

    def __init__(
        self,
        *,
        responder: Callable[[FakeRequest], FakeReply | None] | None = None,
        untracked_usage: Sequence[AnsweredCall] = (),
    ) -> None:
        from .._reconcile import AnsweredCalls

        super().__init__(responder=responder)
        self._answered = AnsweredCalls()
        #: Usage the reports count on top of :attr:`answered_calls`.
        self.untracked_usage: list[AnsweredCall] = list(untracked_usage)

    @property
    def answered_calls(self) -> Sequence[AnsweredCall]:
        """The Messages calls this fake answered with a 200, as Anthropic's usage and cost reports count them."""
        return self._answered

    # -- the Admin API's usage and cost reports (what ``fluxgate reconcile`` reads) --

    def serve_admin(self, *, admin_key: str | None = None) -> contextlib.AbstractContextManager[str]:
        """Serve this fake's usage and cost reports on 127.0.0.1 while the block runs; yields the base URL.

        Point ``ANTHROPIC_BASE_URL`` at it (and ``ANTHROPIC_ADMIN_KEY`` at any
        ``sk-ant-admin...`` key, or ``admin_key``) and run ``fluxgate reconcile``.
        """
        from .._reconcile import serve_admin_api

        return serve_admin_api(self.answered_calls, self.untracked_usage, admin_key=admin_key)

    def _handle(self, request: Any) -> Any:
        from .._reconcile import ADMIN_PATH_PREFIX, handle_admin_request

        path = request.url.path
        if path.startswith(ADMIN_PATH_PREFIX):
            with self._lock:
                self.requests.append(
                    FakeRequest(method=request.method, path=path, headers=dict(request.headers), body=None)
                )
            query = request.url.query
            status, headers, body = handle_admin_request(
                request.method,
                path,
                query.decode() if isinstance(query, bytes) else str(query),
                dict(request.headers),
                list(self.answered_calls),
                self.untracked_usage,
            )
            return http_library().Response(status, headers=headers, content=body)
        response = super()._handle(request)
        if request.method == "POST" and path.rstrip("/") == "/v1/messages" and response.status_code == 200:
            from .._fluxgate import active

            tracker = active()  # bill at the prices of the tracker that recorded the call
            content_type = response.headers.get("content-type", "")
            self._answered.add_reply(content_type, response.content, prices=None if tracker is None else tracker.prices)
        return response

    # -- Bedrock, Vertex and Message Batches (the Messages API is FakeMessagesAPI) --

    def streamed_client(self, **options: Any) -> Any:
        """An ``anthropic.Anthropic`` whose fake sends each body in chunks, as a network does.

        With :meth:`client` every body is in memory before the SDK sees it;
        here nothing is read until the SDK or the user reads it, so a test can
        tell whether a body was consumed.
        """
        import anthropic

        options.setdefault("api_key", "sk-ant-fake-key")
        options.setdefault("max_retries", 0)
        return anthropic.Anthropic(http_client=http_library().Client(transport=self.platform_transport()), **options)

    def async_streamed_client(self, **options: Any) -> Any:
        """The async twin of :meth:`streamed_client`."""
        import anthropic

        options.setdefault("api_key", "sk-ant-fake-key")
        options.setdefault("max_retries", 0)
        transport = self.platform_transport(asynchronous=True)
        return anthropic.AsyncAnthropic(http_client=http_library().AsyncClient(transport=transport), **options)

    def platform_transport(self, *, asynchronous: bool = False, chunk_size: int = 64) -> Any:
        """A ``MockTransport`` that also serves Bedrock, Vertex and the Message Batches routes.

        Bedrock: ``/model/{id}/invoke`` (JSON) and ``/model/{id}/invoke-with-response-stream``
        (AWS event-stream frames). Vertex: ``.../models/{id}:rawPredict`` and
        ``:streamRawPredict`` (SSE). The model id is in the path, as the SDK
        sends it; replies are scripted or made as for ``/v1/messages``.
        Batches: ``POST /v1/messages/batches`` (ended at once), ``GET`` the
        batch and its JSONL ``results``. Other paths go to the plain fake.
        Every body is sent in chunks of ``chunk_size`` bytes, unread until read
        (``asynchronous`` for an ``AsyncClient``).
        """
        httpx = http_library()

        def handle(request: Any) -> Any:
            response = self._serve_platforms(request)
            body = response.content
            pieces = [body[i : i + chunk_size] for i in range(0, len(body), chunk_size)]
            content = achunks(pieces) if asynchronous else iter(pieces)
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return httpx.MockTransport(handle)

    def batches_client(self, **options: Any) -> Any:
        """An ``anthropic.Anthropic`` whose fake also serves Message Batches."""
        import anthropic

        options.setdefault("api_key", "sk-ant-fake-key")
        options.setdefault("max_retries", 0)
        return anthropic.Anthropic(http_client=http_library().Client(transport=self.platform_transport()), **options)

    def async_batches_client(self, **options: Any) -> Any:
        """An ``anthropic.AsyncAnthropic`` whose fake also serves Message Batches."""
        import anthropic

        options.setdefault("api_key", "sk-ant-fake-key")
        options.setdefault("max_retries", 0)
        transport = self.platform_transport(asynchronous=True)
        return anthropic.AsyncAnthropic(http_client=http_library().AsyncClient(transport=transport), **options)

    def bedrock_client(self, *, asynchronous: bool = False, **options: Any) -> Any:
        """An ``AnthropicBedrock`` (or the async one) talking to this fake, with no AWS credentials.

        Releases with Bedrock API keys get a fake key; older ones (SigV4 only)
        get their request signing switched off on this client. Without
        botocore, the SDK cannot decode Bedrock's event stream, so this client
        gets a decoder of the same frames (``fluxgate._wire``).
        """
        import importlib.util
        import inspect

        import anthropic

        cls = anthropic.AsyncAnthropicBedrock if asynchronous else anthropic.AnthropicBedrock
        httpx = http_library()
        http_client = httpx.AsyncClient if asynchronous else httpx.Client
        options.setdefault("aws_region", "us-east-1")
        options.setdefault("max_retries", 0)
        keyed = "api_key" in inspect.signature(cls.__init__).parameters
        if keyed:
            options.setdefault("api_key", "fake-bedrock-api-key")
        else:
            options.setdefault("aws_access_key", "AKIAFAKE")
            options.setdefault("aws_secret_key", "fake-secret")
        client = cls(http_client=http_client(transport=self.platform_transport(asynchronous=asynchronous)), **options)
        if not keyed:  # no SigV4 signing: it needs boto3 and real credentials
            vars(client)["_prepare_request"] = _unsigned_async if asynchronous else _unsigned
        if importlib.util.find_spec("botocore") is None:
            vars(client)["_make_sse_decoder"] = AWSEventStreamDecoder
        return client

    def vertex_client(self, *, asynchronous: bool = False, **options: Any) -> Any:
        """An ``AnthropicVertex`` (or the async one) talking to this fake, with a fake access token."""
        import anthropic

        cls = anthropic.AsyncAnthropicVertex if asynchronous else anthropic.AnthropicVertex
        httpx = http_library()
        http_client = httpx.AsyncClient if asynchronous else httpx.Client
        options.setdefault("region", "us-east5")
        options.setdefault("project_id", "fake-project")
        options.setdefault("access_token", "fake-vertex-token")
        options.setdefault("max_retries", 0)
        return cls(http_client=http_client(transport=self.platform_transport(asynchronous=asynchronous)), **options)

    def script_batch_result(self, custom_id: str, result: Mapping[str, Any]) -> None:
        """Make the next batch that contains ``custom_id`` return ``result`` for it.

        ``result`` is the ``result`` object of a results line, e.g.
        ``{"type": "succeeded", "message": {...}}`` or ``{"type": "expired"}``.
        """
        self._batch_state()["scripted"][custom_id] = dict(result)

    def add_batch(self, batch_id: str, results: Sequence[Mapping[str, Any]]) -> None:
        """Serve a batch this fake did not create (one made elsewhere), ended, with these result lines."""
        self._batch_state()["batches"][batch_id] = [dict(line) for line in results]

    def _batch_state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.__dict__.setdefault("_fluxgate_batches", {"batches": {}, "scripted": {}})
        return state

    def _serve_platforms(self, request: Any) -> Any:
        import re

        path = request.url.path
        bedrock = re.search(r"/model/(?P<model>[^/]+)/(?P<op>invoke-with-response-stream|invoke)$", path)
        vertex = re.search(r"/publishers/anthropic/models/(?P<model>[^/:]+):(?P<op>streamRawPredict|rawPredict)$", path)
        if bedrock is None and vertex is None and not path.startswith("/v1/messages/batches"):
            return self._handle(request)
        httpx = http_library()
        raw = request.read() if hasattr(request, "read") else request.content
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        received = FakeRequest(method=request.method, path=path, headers=dict(request.headers), body=body)
        with self._lock:
            self.requests.append(received)
            self._count += 1
            number = self._count
        if bedrock is None and vertex is None:
            return self._serve_batches(request.method, path, body, number)
        found = bedrock or vertex
        assert found is not None
        streamed = found.group("op") in ("invoke-with-response-stream", "streamRawPredict")
        with self._lock:
            reply = self._scripted.popleft() if self._scripted else None
        if reply is None and self._responder is not None:
            reply = self._responder(received)
        if reply is None:
            synthetic = {**(body if isinstance(body, dict) else {}), "model": found.group("model"), "stream": streamed}
            reply = self._default(attrs.evolve(received, body=synthetic), number)
        headers = {"request-id": f"req_fake_{number:06d}", **reply.headers}
        if reply.sse is not None and bedrock is not None:
            headers["content-type"] = "application/vnd.amazon.eventstream"
            return httpx.Response(reply.status, headers=headers, content=event_stream_body(reply.sse))
        if reply.sse is not None:
            headers["content-type"] = "text/event-stream"
            return httpx.Response(reply.status, headers=headers, content=reply.sse.encode())
        return httpx.Response(reply.status, headers=headers, json=reply.json_body)

    def _serve_batches(self, method: str, path: str, body: Any, number: int) -> Any:
        httpx = http_library()
        state = self._batch_state()
        parts = path.rstrip("/").split("/")  # ["", "v1", "messages", "batches", id?, "results"?]
        if method == "POST" and len(parts) == 4:
            batch_id = f"msgbatch_fake_{number:06d}"
            lines = []
            for i, request in enumerate((body or {}).get("requests", [])):
                custom_id = request["custom_id"]
                result = state["scripted"].pop(custom_id, None)
                if result is None:
                    params = FakeRequest(method="POST", path="/v1/messages", headers={}, body=request["params"])
                    message = self._default(params, number * 1000 + i).json_body
                    result = {"type": "succeeded", "message": message}
                lines.append({"custom_id": custom_id, "result": result})
            state["batches"][batch_id] = lines
            return httpx.Response(200, json=_batch_json(batch_id, lines))
        batch_id = parts[4] if len(parts) > 4 else ""
        lines = state["batches"].get(batch_id)
        if lines is None:
            error = {"type": "error", "error": {"type": "not_found_error", "message": f"no batch {batch_id}"}}
            return httpx.Response(404, json=error)
        if len(parts) == 6 and parts[5] == "results":
            text = "".join(json.dumps(line) + "\n" for line in lines)
            return httpx.Response(200, headers={"content-type": "application/binary"}, content=text.encode())
        return httpx.Response(200, json=_batch_json(batch_id, lines))


def _batch_json(batch_id: str, lines: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    for line in lines:
        kind = line["result"]["type"]
        counts[kind] = counts.get(kind, 0) + 1
    return {
        "id": batch_id,
        "type": "message_batch",
        "processing_status": "ended",
        "request_counts": counts,
        "created_at": "2026-11-27T00:00:00Z",
        "ended_at": "2026-11-27T00:05:00Z",
        "expires_at": "2026-11-28T00:00:00Z",
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": f"https://api.anthropic.com/v1/messages/batches/{batch_id}/results",
    }


def _unsigned(request: Any) -> None:
    """A Bedrock client's request signing, switched off (the fake needs no credentials)."""


async def _unsigned_async(request: Any) -> None:
    """The async twin of ``_unsigned``."""
