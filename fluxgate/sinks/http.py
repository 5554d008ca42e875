"""HTTPSink: send batches to a FluxGate-compatible ingest endpoint.

The wire protocol is ``docs/ingest-protocol.md``. The client is ``httpx2``
(anthropic 2.x) or ``httpx`` (older anthropic), whichever is installed: one
of them always is, because anthropic depends on it, so this sink adds no
dependency. It is imported when the first sink is built, never by
``import fluxgate``.

Status codes map onto the flusher's error contract: 408, 429, 5xx and network
errors raise :class:`TransientSinkError` (with the ``Retry-After`` the server
asked for), 413 splits the batch in two, and any other 4xx raises
:class:`SinkError`, which drops the batch.
"""

from __future__ import annotations

import datetime
import email.utils
import gzip
import hashlib
import importlib
import ipaddress
import json
import math
import os
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

from .._errors import ConfigurationError, SinkError, TransientSinkError
from .._models import CostEvent
from .._store import encode, event_dict
from .._version import __version__

__all__ = ["INGEST_PATH", "SCHEMA_VERSION", "HTTPSink"]

#: The path fluxgate appends to an endpoint that does not already end in it.
INGEST_PATH = "/v1/events"
#: The version of the batch schema this sink sends.
SCHEMA_VERSION = 1
#: Bodies at least this long are gzipped.
GZIP_MIN_BYTES = 1024

_RETRY_STATUSES = frozenset({408, 425, 429})


def _client_module() -> Any:
    """The installed httpx flavour: ``httpx2`` (anthropic 2.x) or ``httpx``."""
    for name in ("httpx2", "httpx"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    msg = "HTTPSink needs httpx2 or httpx (anthropic installs one of them); pip install httpx."
    raise ConfigurationError(msg)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def retry_after_s(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds a ``Retry-After`` header asks for: delta-seconds or an HTTP-date.

    >>> retry_after_s("2")
    2.0
    >>> retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412478.0)
    2.0
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": UTC, by RFC 5322
            when = when.replace(tzinfo=datetime.timezone.utc)
        seconds = when.timestamp() - now()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _public_url(url: str) -> str:
    """``url`` without user info, query or fragment: safe to log."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class HTTPSink:
    """Send events to a FluxGate ingest endpoint as gzipped JSON batches.

    Args:
        endpoint: The server's base URL (``https://ingest.example.com``);
            :data:`INGEST_PATH` is appended unless the URL already ends in it.
        api_key: Sent as ``Authorization: Bearer <api_key>``; never logged.
        allow_insecure_http: Allow ``http://`` to a host that is not
            loopback (the key and the events would cross the network in clear).
        connect_timeout_s: Time to open a connection.
        read_timeout_s: Time to wait for each read of the response.
        compress: Gzip bodies of :data:`GZIP_MIN_BYTES` or more.

    Raises:
        ConfigurationError: The URL is not http(s), or is plain http to a
            remote host without ``allow_insecure_http``.

    >>> HTTPSink("https://ingest.example.com", api_key="secret")
    HTTPSink('https://ingest.example.com/v1/events')
    """

    def __init__(
        self,
        endpoint: str,
        *,
        api_key: str | None = None,
        allow_insecure_http: bool = False,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 10.0,
        compress: bool = True,
    ) -> None:
        if not isinstance(endpoint, str):
            msg = f"HTTPSink 'endpoint' must be a URL string (got {endpoint!r} that is a {type(endpoint).__name__})."
            raise ConfigurationError(msg)
        parts = urllib.parse.urlsplit(endpoint.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            msg = f"HTTPSink 'endpoint' must be an http(s) URL with a host (got {_public_url(endpoint)!r})."
            raise ConfigurationError(msg)
        if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
            msg = (
                f"HTTPSink refuses plain http to {parts.hostname!r}: the API key and events would travel "
                "unencrypted. Use https://, or pass allow_insecure_http=True if the network is trusted."
            )
            raise ConfigurationError(msg)
        if api_key is not None:
            key = api_key.strip() if isinstance(api_key, str) else ""
            if not key or not key.isascii() or not key.isprintable() or " " in key:
                # The message never repeats the key: it may be a real one, pasted badly.
                msg = "HTTPSink 'api_key' must be None or a non-empty string of printable ASCII without spaces."
                raise ConfigurationError(msg)
            api_key = key
        for name, value in (("connect_timeout_s", connect_timeout_s), ("read_timeout_s", read_timeout_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                msg = f"HTTPSink '{name}' must be a number of seconds > 0 (got {value!r})."
                raise ConfigurationError(msg)
        path = parts.path.rstrip("/")
        if not path.endswith(INGEST_PATH):
            path += INGEST_PATH
        self.url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
        self._public = _public_url(self.url)
        self._sdk = json.dumps({"name": "fluxgate-python", "version": __version__}, separators=(",", ":"))
        self._api_key = api_key
        self._compress = compress
        self._httpx = _client_module()
        self._timeout = self._httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        self._client: Any = None
        self._pid = 0

    def __repr__(self) -> str:
        return f"HTTPSink({self._public!r})"

    def _http(self) -> Any:
        # A client's pooled connections belong to the process that opened
        # them: after a fork the child opens its own and leaves the parent's.
        if self._client is None or self._pid != os.getpid():
            headers = {"User-Agent": f"fluxgate-python/{__version__}"}
            if self._api_key is not None:
                headers["Authorization"] = f"Bearer {self._api_key}"
            self._client = self._httpx.Client(timeout=self._timeout, headers=headers, follow_redirects=False)
            self._pid = os.getpid()
        return self._client

    def _scrub(self, text: str) -> str:
        key = self._api_key
        return text.replace(key, "***") if key else text

    def write(self, batch: Sequence[CostEvent]) -> None:
        """POST ``batch``; return once the server accepted it.

        Raises:
            TransientSinkError: Network error, timeout, 408, 425, 429 or 5xx.
            SinkError: Any other non-2xx answer; the batch should be dropped.
            TypeError, ValueError: An event holds a value JSON has no form for.
        """
        if not batch:
            return
        # Each event is encoded alone (see ``_lines``): one that cannot be raises
        # TypeError or ValueError, and the flusher sets it aside.
        events = b",".join([encode(event_dict(event)) for event in batch])
        head = f'{{"schema_version":{SCHEMA_VERSION},"sdk":{self._sdk},"sent_at":{int(time.time() * 1000)},'
        body = head.encode() + b'"events":[' + events + b"]}"
        headers = {
            "Content-Type": "application/json",
            "Fluxgate-Schema-Version": str(SCHEMA_VERSION),
            "Idempotency-Key": hashlib.sha256("\n".join(e.tracking_id for e in batch).encode()).hexdigest()[:32],
        }
        if self._compress and len(body) >= GZIP_MIN_BYTES:
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        httpx = self._httpx
        try:
            response = self._http().post(self.url, content=body, headers=headers)
        except httpx.TransportError as exc:  # connect/read/write errors and timeouts
            msg = f"POST {self._public} failed: {type(exc).__name__}: {self._scrub(str(exc))}"
            raise TransientSinkError(msg) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        if status == 413 and len(batch) > 1:
            half = len(batch) // 2
            self.write(batch[:half])
            self.write(batch[half:])
            return
        detail = self._scrub(response.text[:200].strip())
        msg = f"POST {self._public} answered {status}" + (f": {detail}" if detail else "")
        if status in _RETRY_STATUSES or status >= 500:
            raise TransientSinkError(msg, retry_after_s=retry_after_s(response.headers.get("retry-after")))
        raise SinkError(msg)

    def close(self) -> None:
        """Close the connection pool (a later write opens a new one)."""
        client, self._client = self._client, None
        if client is not None and self._pid == os.getpid():
            client.close()
