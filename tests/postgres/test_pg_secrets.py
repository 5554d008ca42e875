"""The database password never shows: not in reprs, errors, tracebacks or any log line."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest

import fluxgate
from fluxgate import RetryPolicy
from fluxgate._store.pg_batches import PostgresBatchStore
from fluxgate._store.pg_spend import PostgresSpendStore
from fluxgate._store.postgres import mask_url, parse_target
from fluxgate.sinks.postgres import PostgresSink
from fluxgate.testing import FakeAnthropicAPI

from .conftest import PASSWORD, PostgresServer, free_port, make_event

WRONG = "not-the-pw/9f8e7d"
SECRETS = (PASSWORD, quote(PASSWORD, safe=""), WRONG, quote(WRONG, safe=""))
QUICK = RetryPolicy(max_attempts=2, max_delay_s=5, backoff_multiplier_s=0.001, backoff_max_s=0.01)


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a password leaked into: {text}"


def chain(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and every exception it was raised from or during."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def assert_error_clean(action: Callable[[], object]) -> BaseException:
    """Run ``action``, which must raise; nothing about the error may hold a password."""
    with pytest.raises(Exception) as info:
        action()
    assert_clean("".join(traceback.format_exception(info.value)))
    for exc in chain(info.value):
        assert_clean(str(exc))
        assert_clean(repr(exc))
        assert_clean(repr(exc.args))
    return info.value


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record of every logger (psycopg's too), down to DEBUG."""
    caplog.set_level(logging.DEBUG)
    yield caplog
    for record in caplog.records:
        assert_clean(record.getMessage())
        if record.exc_info:
            assert_clean("".join(traceback.format_exception(*record.exc_info)))


class TestSecrets:
    def test_reprs_mask_the_password(self, pg_server: PostgresServer, pg_db: str) -> None:
        """Sinks, stores and their URLs show '***' where the password is."""
        url = pg_server.url(pg_db)
        objects = [PostgresSink(url), PostgresSpendStore(url), PostgresBatchStore(url), parse_target(url, owner="t")]
        for thing in objects:
            assert_clean(repr(thing))
            assert "***" in repr(thing)
        assert mask_url(url) == f"postgresql://fluxgate_app:***@127.0.0.1:{pg_server.port}/{pg_db}"

    def test_masking_covers_odd_spellings(self) -> None:
        """Query-string passwords, raw '@' in passwords and non-URLs are masked too."""
        assert mask_url("postgres://u@h/db?sslmode=require&password=p%40ss&sslpassword=k") == (
            "postgres://u@h/db?sslmode=require&password=***&sslpassword=***"
        )
        assert mask_url("postgresql://u:p@ss@h:5432/db") == "postgresql://u:***@h:5432/db"
        assert mask_url("host=h password=secret") == "***"
        assert mask_url("postgresql://h/db") == "postgresql://h/db"

    def test_bad_urls(self, all_logs: pytest.LogCaptureFixture) -> None:
        """Configuration errors about a URL show it masked."""
        for url in (
            f"postgresql://u:{quote(PASSWORD, safe='')}@h:notaport/db",
            f"postgresql://u:{quote(PASSWORD, safe='')}@h/db?sslpassword={quote(PASSWORD, safe='')}&bogus=1",
            f"postgresql://u@h/db?password={quote(PASSWORD, safe='')}&nonsense=1",
            f"host=h password={PASSWORD}",
        ):
            for make in (PostgresSink, PostgresSpendStore, PostgresBatchStore):
                error = assert_error_clean(lambda make=make, url=url: make(url))  # type: ignore[misc]
                assert isinstance(error, fluxgate.ConfigurationError)

    def test_unreachable_server(self, pg_server: PostgresServer, all_logs: pytest.LogCaptureFixture) -> None:
        """Connection-refused errors of the sink and both stores hold no password."""
        url = pg_server.url("postgres", port=free_port())
        assert_error_clean(lambda: PostgresSink(url).write([make_event()]))
        assert_error_clean(lambda: PostgresSpendStore(url).reserve([("k", 0, 1, 1)], 1, 0))
        assert_error_clean(lambda: PostgresBatchStore(url).claim("b", ["r"]))

    def test_wrong_password(self, pg_server: PostgresServer, pg_db: str, all_logs: pytest.LogCaptureFixture) -> None:
        """An authentication failure names the user, never the password that was tried."""
        url = pg_server.url(pg_db, password=WRONG)
        error = assert_error_clean(lambda: PostgresSink(url).write([make_event()]))
        assert "password authentication failed" in str(error)
        assert_error_clean(lambda: PostgresSpendStore(url).spent("k", 0, 1))

    def test_server_stopped(self, pg_server: PostgresServer, pg_db: str, all_logs: pytest.LogCaptureFixture) -> None:
        """Errors from a server going away under open connections hold no password."""
        url = pg_server.url(pg_db)
        sink, store = PostgresSink(url), PostgresSpendStore(url)
        sink.write([make_event()])
        store.spent("k", 0, 1)
        pg_server.stop("immediate")
        try:
            assert_error_clean(lambda: sink.write([make_event(1)]))
            assert_error_clean(lambda: store.spent("k", 0, 1))
        finally:
            pg_server.start()

    def test_permission_error(self, pg_server: PostgresServer, pg_db: str, all_logs: pytest.LogCaptureFixture) -> None:
        """A permanent error (no privilege) holds no password."""
        sink = PostgresSink(pg_server.url(pg_db))
        sink.write([make_event()])
        pg_server.execute(pg_db, "ALTER TABLE fluxgate_events OWNER TO postgres")
        assert_error_clean(lambda: sink.write([make_event(1)]))

    def test_flusher_logs(
        self, pg_server: PostgresServer, all_logs: pytest.LogCaptureFixture, swallowed: list[BaseException]
    ) -> None:
        """What the flusher logs about a failing PostgresSink holds no password."""
        fluxgate.init(sinks=[PostgresSink(pg_server.url("postgres", port=free_port()))], retry=QUICK)
        FakeAnthropicAPI().client().messages.create(
            model="claude-sonnet-4-6", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
        fluxgate.flush(timeout_s=30)
        fluxgate.shutdown(timeout_s=5)
        assert any("PostgresSink" in r.getMessage() for r in all_logs.records), "the failure was not logged"
        for exc in swallowed:
            assert_clean(repr(exc))
        swallowed.clear()
