"""Reports, tail and doctor on PostgreSQL give what they give on SQLite, and never show the password (issue 14).

The same events go through the real ``SQLiteSink`` into a file and through
the real ``PostgresSink`` into a database of a real server; then the real
command line runs on each and the outputs are compared byte for byte (the
JSON's ``store`` aside, which names the store).
"""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
from collections.abc import Callable
from contextlib import redirect_stderr
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from fluxgate import AiEventUser, CostEvent, Status
from fluxgate._cli.doctor import main as doctor_main
from fluxgate._cli.main import main as cli_main
from fluxgate._cli.report import main as report_main
from fluxgate._cli.tail import tail_main
from fluxgate._reconcile.store import StoreError, read_tracked
from fluxgate._report import Follower, NoStoreError, ReportError, open_reader, overview
from fluxgate._store import mask_url
from fluxgate.report import query
from fluxgate.sinks import PostgresSink, SQLiteSink

from .conftest import LIMITED, PASSWORD, REPO, PostgresServer, free_port

DAY = 86_400_000
NOW = 1_790_000_000_000 + 40 * DAY
SECRETS = (PASSWORD, quote(PASSWORD, safe=""))
MODELS = ("claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-6", "claude-made-up-1")
FEATURES = ("chat", "summarize", None, "=HYPERLINK(1)", "naïve ☃ \x1b[2J")
USERS = (
    AiEventUser("u-rich", name="Ada", monthly_revenue=49.0),
    AiEventUser("u-cheap", name="Bo", monthly_revenue=0.0),
    AiEventUser("u-odd", monthly_revenue=19.99),
    AiEventUser("u-none", name="Cy"),
    None,
)
STATUSES = (Status.SUCCESS,) * 6 + (Status.ERROR, Status.MAX_TOKENS, Status.CONTENT_FILTER, Status.BLOCKED)


def varied(count: int = 160, *, seed: int = 14, first: int = 0) -> list[CostEvent]:
    """Events that touch every figure: prices with 12 decimals, unpriced models, aborts, caches, batches, days."""
    rng = random.Random(seed)
    out = []
    for n in range(first, first + count):
        model = rng.choice(MODELS)
        unpriced = model == "claude-made-up-1"
        user = rng.choice(USERS)
        streamed = rng.random() < 0.4
        write = rng.choice((0, 0, 1200, 4096))
        out.append(
            CostEvent(
                tracking_id=f"rep-{seed}-{n:05}",
                # Several events share a millisecond, and they span some 30 days.
                created_at=NOW - rng.randrange(30) * DAY - rng.randrange(5) * 1000,
                status=rng.choice(STATUSES),
                cost_usd=None if unpriced else Decimal(rng.randrange(1, 10**11)).scaleb(-12),
                cost_status="unpriced_model"
                if unpriced
                else rng.choice(("priced", "priced", "priced", "estimated_usage", "partial")),
                cost_breakdown={} if unpriced else {"input": Decimal("0.000001")},
                price_version="test",
                model=model,
                streamed=streamed,
                aborted=streamed and rng.random() < 0.3,
                input_tokens=rng.randrange(10, 5000),
                output_tokens=rng.randrange(0, 3000),
                reasoning_tokens=rng.choice((None, 0, 250)),
                cache_read_input_tokens=rng.choice((0, 0, 2048, 90_000)),
                cache_creation_input_tokens=write,
                cache_creation_1h_input_tokens=rng.choice((None, write // 2)),
                latency_ms=None if rng.random() < 0.1 else rng.randrange(100, 90_000) / 8,
                feature=rng.choice(FEATURES),
                step=rng.choice(("plan", "draft", None)),
                session_id=rng.choice(("s1", "s2", None)),
                conversation_id=rng.choice(("c1", None)),
                user=user,
                user_id=None if user is None else user.id,
                usage_service_tier=rng.choice(("standard", "batch", None)),
                batch_id=rng.choice((None, None, "msgbatch_1")),
                metadata={"n": n},
            )
        )
    return out


def write_both(path: Path, url: str, events: list[CostEvent]) -> None:
    """The events through the real SQLite sink and the real PostgreSQL sink."""
    sqlite = SQLiteSink(path)
    postgres = PostgresSink(url)
    try:
        sqlite.write(events)
        postgres.write(events)
    finally:
        sqlite.close()
        postgres.close()


def growing() -> list[CostEvent]:
    """A user whose revenue changed: the report takes the latest call that carried one (99), not a later bare one."""
    return [
        CostEvent(
            tracking_id=f"grow-{n}",
            created_at=NOW - days * DAY,
            status=Status.SUCCESS,
            cost_usd=Decimal("1.5"),
            cost_status="priced",
            model="claude-opus-4-6",
            feature="chat",
            user=AiEventUser("u-grow", name=name, monthly_revenue=revenue),
            user_id="u-grow",
        )
        for n, (days, name, revenue) in enumerate(((20, "Old", 10.0), (10, "New", 99.0), (1, "Bare", None)))
    ]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, pg_server: PostgresServer) -> tuple[str, str]:
    """A SQLite file and a PostgreSQL database holding the same varied events, for every test that only reads."""
    if not pg_server.running:  # an outage test of another module may have stopped it
        pg_server.start()
    path = tmp_path_factory.mktemp("stores") / "events.db"
    url = pg_server.url(pg_server.create_database())
    write_both(path, url, [*varied(157), *growing()])
    return str(path), url


def run_report(db: str, *args: str) -> tuple[int, str, str]:
    """``fluxgate report --db DB ARGS`` in-process at a fixed now; the status, stdout and stderr."""
    out = io.StringIO()
    err = io.StringIO()
    with redirect_stderr(err):
        status = report_main(["--db", db, *args], out=out, now_ms=NOW)
    return status, out.getvalue(), err.getvalue()


def assert_secret_free(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


GROUPINGS = ("feature", "user", "model", "day", "status", "step", "session,conversation", "day,feature", "model,user")


class TestSameFigures:
    """Every report reads the same figures from PostgreSQL as from SQLite."""

    @pytest.mark.parametrize("by", GROUPINGS)
    def test_json(self, stores: tuple[str, str], by: str) -> None:
        """--format json, grouped every way: identical but for the store's name, which is masked."""
        path, url = stores
        outputs = []
        for db in (path, url):
            status, out, err = run_report(db, "--by", by, "--format", "json", "--margin-alert", "20%")
            assert status == 0, err
            outputs.append(json.loads(out))
        on_sqlite, on_postgres = outputs
        assert on_sqlite.pop("store") == path
        assert on_postgres.pop("store") == mask_url(url)
        assert on_postgres == on_sqlite
        assert on_sqlite["totals"]["calls"] == 160
        [grow] = [u for u in on_postgres["economics"]["users"] if u["user_id"] == "u-grow"]
        assert (grow["name"], grow["monthly_revenue"], grow["spend_usd"]) == ("New", "99", "4.5")

    @pytest.mark.parametrize("by", GROUPINGS)
    def test_csv(self, stores: tuple[str, str], by: str) -> None:
        """--format csv, grouped every way: byte for byte the same."""
        path, url = stores
        sqlite, postgres = (run_report(db, "--by", by, "--format", "csv") for db in (path, url))
        assert sqlite[0] == postgres[0] == 0
        assert postgres[1] == sqlite[1]
        assert len(sqlite[1].splitlines()) > 2

    @pytest.mark.parametrize(
        "flags",
        [
            ("--since", "7d"),
            ("--since", "20d", "--until", "5d", "--sort", "p95", "--top", "2"),
            ("--feature", "chat", "--feature", "summarize", "--user", "u-rich"),
            ("--status", "error,max_tokens", "--model", "claude-opus-4-6", "--sort", "errors"),
            ("--sort", "tokens", "--by", "model"),
        ],
    )
    def test_filters_and_sorts(self, stores: tuple[str, str], flags: tuple[str, ...]) -> None:
        """Filters, sorts and --top select the same rows in the same order."""
        path, url = stores
        sqlite, postgres = (run_report(db, *flags, "--format", "csv") for db in (path, url))
        assert postgres == sqlite

    def test_table(self, stores: tuple[str, str]) -> None:
        """The terminal table is the same, the store named with its password masked."""
        path, url = stores
        sqlite, postgres = (run_report(db, "--by", "feature,model") for db in (path, url))
        assert postgres[0] == sqlite[0] == 0
        assert postgres[1].replace(mask_url(url), "STORE") == sqlite[1].replace(path, "STORE")
        assert_secret_free(postgres[1], postgres[2])

    def test_totals_are_the_exact_decimal_sum(self, pg_url: str, tmp_path: Path) -> None:
        """Sums past a 64-bit pico-dollar total stay exact on both: SQLite splits them, PostgreSQL sums numeric."""
        big = [
            CostEvent(
                tracking_id=f"big-{n}",
                created_at=NOW - n,
                status=Status.SUCCESS,
                cost_usd=Decimal("4000000.000000000001"),
                cost_status="priced",
                model="claude-opus-4-6",
                feature="whale",
                latency_ms=float(n),
            )
            for n in range(4)
        ]
        events = [*big, *varied(40)]
        path = tmp_path / "big.db"
        write_both(path, pg_url, events)
        expected = sum((e.cost_usd for e in events if e.cost_usd is not None), Decimal(0))
        for db in (str(path), pg_url):
            rows = query(by="feature", db=db)
            assert rows.totals.cost_usd == expected
            assert rows[0].feature == "whale"
            assert rows[0].cost_usd == Decimal("16000000.000000000004")
            assert rows.totals.calls == 44

    def test_query_rows(self, stores: tuple[str, str]) -> None:
        """fluxgate.report.query(db=URL) returns the rows query(db=PATH) does."""
        path, url = stores
        assert query(by=["day", "model"], db=url) == query(by=["day", "model"], db=path)
        since = datetime.fromtimestamp((NOW - 10 * DAY) / 1000, tz=timezone.utc)
        on_sqlite = query(by="user", db=path, where={"status": "success"}, since=since)
        on_postgres = query(by="user", db=url, where={"status": "success"}, since=since)
        assert list(on_postgres) == list(on_sqlite)
        assert on_postgres.totals == on_sqlite.totals
        assert 0 < on_sqlite.totals.calls < 160

    def test_fluxgate_db_names_the_database(
        self, stores: tuple[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """$FLUXGATE_DB set to a URL selects PostgreSQL for `fluxgate report` and for query()."""
        path, url = stores
        monkeypatch.setenv("FLUXGATE_DB", url)
        assert cli_main(["report", "--by", "model", "--format", "csv"]) == 0
        on_postgres = capsys.readouterr().out
        assert on_postgres == run_report(path, "--by", "model", "--format", "csv")[1]
        assert query(by="model") == query(by="model", db=path)

    def test_overview_in_parallel(self, stores: tuple[str, str]) -> None:
        """overview() runs its parts side by side on the shared connections, with the same results."""
        path, url = stores
        on_sqlite = overview(path, now_ms=NOW, workers=4)
        on_postgres = overview(url, now_ms=NOW, workers=4)
        assert on_postgres.store == mask_url(url)
        assert [
            getattr(on_postgres, part) for part in ("report", "daily", "by_model", "waste", "cache", "economics")
        ] == [getattr(on_sqlite, part) for part in ("report", "daily", "by_model", "waste", "cache", "economics")]


class TestHtml:
    """--html draws the same page from PostgreSQL."""

    def test_page(self, stores: tuple[str, str], tmp_path: Path) -> None:
        """The page holds the same figures and names the database with its password masked."""
        path, url = stores
        pages = []
        for name, db in (("sqlite.html", path), ("postgres.html", url)):
            status, out, err = run_report(db, "--html", str(tmp_path / name), "--since", "60d")
            assert status == 0, err
            assert out.startswith(f"wrote {tmp_path / name} (160 calls, $")
            pages.append((tmp_path / name).read_text(encoding="utf-8"))
        on_sqlite, on_postgres = pages
        assert on_postgres.startswith("<!doctype html>")
        assert mask_url(url) in on_postgres
        assert_secret_free(on_postgres)
        assert on_postgres.replace(mask_url(url), "STORE") == on_sqlite.replace(path, "STORE")


def tail(db: str, *args: str, **kwargs: Any) -> tuple[int, list[str], str]:
    """``fluxgate tail`` in-process; the status, the lines after the header, and stderr."""
    out = io.StringIO()
    err = io.StringIO()
    kwargs.setdefault("stop", lambda: True)
    with redirect_stderr(err):
        status = tail_main(["--db", db, *args], out=out, now_ms=NOW, **kwargs)
    lines = out.getvalue().splitlines()
    return status, lines[1:] if lines and lines[0].startswith("time (UTC)") else lines, err.getvalue()


def ordered(count: int, *, start: int, prefix: str = "t") -> list[CostEvent]:
    """Events one millisecond apart, from ``start`` on, in the order they are listed."""
    return [
        CostEvent(
            tracking_id=f"{prefix}-{n:04}",
            created_at=start + n,
            status=Status.SUCCESS,
            cost_usd=Decimal("0.0123"),
            cost_status="priced",
            model="claude-sonnet-4-6",
            feature=f"f{n:02}",
            input_tokens=n,
            latency_ms=100.0 + n,
        )
        for n in range(count)
    ]


def features(lines: list[str]) -> list[str]:
    return [line.split()[4] for line in lines]  # date, time, status, model, feature


class TestTail:
    """`fluxgate tail` shows and follows PostgreSQL as it does SQLite."""

    @pytest.mark.parametrize(
        "args",
        [(), ("-n", "3"), ("-n", "0"), ("-n", "50"), ("--since", "40d"), ("--format", "json", "-n", "4")],
    )
    def test_last_events_alike(self, tmp_path: Path, pg_url: str, args: tuple[str, ...]) -> None:
        """The last events already stored print the same lines on both (written in created_at order)."""
        path = tmp_path / "ordered.db"
        write_both(path, pg_url, ordered(30, start=NOW - 1000))
        on_sqlite = tail(str(path), *args)
        on_postgres = tail(pg_url, *args)
        assert on_postgres == on_sqlite
        assert on_sqlite[0] == 0
        assert on_sqlite[1] or args == ("-n", "0")

    def test_follows_new_events(self, pg_url: str) -> None:
        """Events written while it follows are printed as they arrive, a late one included, each once."""
        sink = PostgresSink(pg_url)
        sink.write(ordered(5, start=NOW))
        sleep = writes(
            sink,
            ordered(2, start=NOW + 10, prefix="new"),
            # Flushed late by another host: older than the newest shown, still shown once.
            ordered(1, start=NOW + 7, prefix="late"),
            ordered(1, start=NOW + 20, prefix="newer"),
        )
        status, lines, err = tail(pg_url, "-n", "2", "--limit", "6", "--format", "json", stop=never, sleep=sleep)
        sink.close()
        assert status == 0, err
        shown = [json.loads(line)["tracking_id"] for line in lines]
        assert shown == ["t-0003", "t-0004", "new-0000", "new-0001", "late-0000", "newer-0000"]

    def test_follower_ids(self, pg_url: str) -> None:
        """The follower returns each new event once, in arrival order, the late one after those it trails."""
        sink = PostgresSink(pg_url)
        sink.write(ordered(3, start=NOW))
        reader = open_reader(pg_url)
        try:
            follower = Follower(reader)
            assert follower.poll() == []
            sink.write(ordered(2, start=NOW + 5, prefix="a"))
            sink.write(ordered(1, start=NOW + 1, prefix="late"))  # behind the mark: found by the look back
            assert [e.tracking_id for e in follower.poll()] == ["late-0000", "a-0000", "a-0001"]
            assert follower.poll() == []
            sink.write(ordered(3, start=NOW + 5, prefix="b"))  # the same milliseconds as ones shown
            assert [e.tracking_id for e in follower.poll(limit=2)] == ["b-0000", "b-0001"]
            assert [e.tracking_id for e in follower.poll()] == ["b-0002"]
            assert follower.poll() == []
        finally:
            reader.close()
            sink.close()

    def test_waits_for_the_table(self, pg_url: str) -> None:
        """A database without the events table is waited for, named with its password masked."""
        sink = PostgresSink(pg_url)
        sleep = writes(sink, [], ordered(2, start=NOW))  # the table appears on the second wait
        status, lines, err = tail(pg_url, "--limit", "2", stop=never, sleep=sleep)
        sink.close()
        assert status == 0, err
        assert f"waiting for a store at {mask_url(pg_url)!r}" in err
        assert features(lines) == ["f00", "f01"]
        assert_secret_free(err, *lines)


def never() -> bool:
    return False


def writes(sink: PostgresSink, *batches: list[CostEvent], polls: int = 50) -> Callable[[float], None]:
    """A ``sleep`` for tail that writes the next batch each time tail waits, as applications would.

    Once the batches are written, a tail still waiting after ``polls`` more
    waits has missed something: the test fails rather than hang.
    """
    pending = list(batches)
    idle = iter(range(polls))

    def sleep(_: float) -> None:
        if pending:
            batch = pending.pop(0)
            if batch:
                sink.write(batch)
        elif next(idle, None) is None:
            pytest.fail("tail kept waiting after every batch was written")

    return sleep


class TestSecrets:
    """A URL's password shows nowhere: not in output, not in errors, and errors are one clear line."""

    def test_wrong_password(self, pg_server: PostgresServer, pg_db: str) -> None:
        """A refused login is one line naming the masked URL; exit 1, no traceback."""
        PostgresSink(pg_server.url(pg_db)).write(ordered(1, start=NOW))
        url = pg_server.url(pg_db, password="wr0ng/" + PASSWORD)
        status, out, err = run_report(url, "--format", "json")
        assert status == 1
        assert out == ""
        assert mask_url(url) in err
        assert "password authentication failed" in err
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        assert_secret_free(out, err)
        assert "wr0ng" not in err

    def test_unreachable(self, pg_server: PostgresServer, pg_db: str) -> None:
        """A server that does not answer is a clear error naming the masked URL."""
        url = pg_server.url(pg_db, port=free_port())
        status, _, err = run_report(url)
        assert status == 1
        assert err.startswith(f"fluxgate report: reading the store failed on {mask_url(url)}")
        assert_secret_free(err)
        status, _, err = tail(url)
        assert status == 1
        assert mask_url(url) in err
        assert_secret_free(err)

    def test_no_table_yet(self, pg_url: str) -> None:
        """A database without fluxgate's table says so: no store there yet."""
        status, _, err = run_report(pg_url)
        assert status == 1
        assert f"no fluxgate store in {mask_url(pg_url)}" in err
        with pytest.raises(NoStoreError, match="fluxgate_events"):
            open_reader(pg_url)

    def test_query_error_masks(self, pg_server: PostgresServer, pg_db: str) -> None:
        """query() raises ReportError with the URL masked and nothing chained that could hold the password."""
        url = pg_server.url(pg_db, password="nope")
        with pytest.raises(ReportError) as caught:
            query(db=url)
        assert mask_url(url) in str(caught.value)
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__
        assert "nope" not in str(caught.value)

    def test_not_a_url(self) -> None:
        """A malformed URL is refused with the password masked."""
        url = f"postgresql://app:{quote(PASSWORD, safe='')}@127.0.0.1:notaport/db"
        status, _, err = run_report(url)
        assert status == 1
        assert "numeric port" in err
        assert_secret_free(err)

    def test_read_only(self, stores: tuple[str, str]) -> None:
        """A report's sessions are read-only: it could not change the store even by mistake."""
        _, url = stores
        reader = open_reader(url)
        try:
            with pytest.raises(ReportError, match="read-only transaction"):
                reader.rows("DELETE FROM fluxgate_events", ())
            assert reader.rows("SELECT COUNT(*) FROM fluxgate_events", ()) == [(160,)]
        finally:
            reader.close()

    def test_subprocess(self, pg_server: PostgresServer, pg_db: str) -> None:
        """The real console script, with the URL in $FLUXGATE_DB: figures out, the password nowhere."""
        url = pg_server.url(pg_db)
        PostgresSink(url).write(ordered(3, start=NOW))
        env = {"PYTHONPATH": str(REPO), "FLUXGATE_DB": url}
        done = subprocess.run(
            [sys.executable, "-m", "fluxgate", "report", "--format", "json", "--until", "2030-01-01"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        assert data["store"] == mask_url(url)
        assert data["totals"]["cost_usd"] == "0.0369"
        assert_secret_free(done.stdout, done.stderr)
        wrong = {**env, "FLUXGATE_DB": pg_server.url(pg_db, password="bad")}
        done = subprocess.run(
            [sys.executable, "-m", "fluxgate", "report"],
            env=wrong,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert "bad@" not in done.stderr


class TestReconcile:
    """The tracked side of `fluxgate reconcile` sums PostgreSQL as it sums SQLite."""

    def test_same_tracked_side(self, tmp_path: Path, pg_url: str) -> None:
        """Per day, model and tier: the same calls, tokens, exact cost and web-search part, other platforms apart."""
        searches = [
            CostEvent(
                tracking_id=f"web-{n}",
                created_at=NOW - n * DAY,
                status=Status.SUCCESS,
                cost_usd=Decimal("0.020000000001"),
                cost_status="priced",
                cost_breakdown={"input": Decimal("0.000000000001"), "web_search": Decimal("0.02")},
                model="claude-sonnet-4-6",
                web_search_requests=2,
                platform="bedrock" if n == 3 else "anthropic",
            )
            for n in range(5)
        ]
        path = tmp_path / "events.db"
        write_both(path, pg_url, [*varied(120), *searches])
        first = datetime.fromtimestamp((NOW - 31 * DAY) / 1000, tz=timezone.utc).date()
        on_sqlite = read_tracked(path, since=first, until=date(2030, 1, 1))
        on_postgres = read_tracked(pg_url, since=first, until=date(2030, 1, 1))
        assert on_postgres == on_sqlite
        assert sum(g.web_search_pusd for g in on_sqlite.groups) == 4 * 2 * 10**10
        assert [p.name for p in on_sqlite.other_platforms] == ["bedrock"]

    def test_errors_mask_the_password(self, pg_server: PostgresServer, pg_db: str) -> None:
        """A refused login, or no table yet, is a StoreError naming the URL masked."""
        for url in (pg_server.url(pg_db, password="nope"), pg_server.url(pg_db)):
            with pytest.raises(StoreError) as caught:
                read_tracked(url, since=date(2026, 1, 1), until=date(2026, 2, 1))
            assert mask_url(url) in str(caught.value)
            assert_secret_free(str(caught.value))
            assert "nope" not in str(caught.value)

    def test_cli_reconciles_a_postgres_store(self, pg_url: str) -> None:
        """`fluxgate reconcile --db URL` reads the tracked side from PostgreSQL; the password shows nowhere."""
        import json

        from fluxgate._reconcile import AnsweredCall, serve_admin_api
        from fluxgate._reconcile import main as reconcile_main

        events = [e for e in ordered(6, start=NOW) if e.cost_usd is not None]
        PostgresSink(pg_url).write(events)
        out, err = io.StringIO(), io.StringIO()
        with serve_admin_api([AnsweredCall.from_event(e) for e in events]) as base_url:
            environ = {"ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-test", "ANTHROPIC_BASE_URL": base_url}
            status = reconcile_main(
                ["--db", pg_url, "--since", "3d", "--format", "json"], out=out, err=err, environ=environ, now_ms=NOW
            )
        assert status == 0, err.getvalue()
        total = json.loads(out.getvalue())["total"]
        assert total["tracked_cost_usd"] == total["reported_cost_usd"]
        assert mask_url(pg_url) in out.getvalue()
        assert_secret_free(out.getvalue(), err.getvalue())

    def test_save_needs_a_path_for_a_database(self, pg_url: str) -> None:
        """--save with no path refuses a database store instead of making a file named after its URL."""
        from fluxgate._reconcile import main as reconcile_main

        err = io.StringIO()
        environ = {"ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-test", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
        status = reconcile_main(["--db", pg_url, "--save"], out=io.StringIO(), err=err, environ=environ)
        assert status == 2
        assert "--save PATH" in err.getvalue()
        assert_secret_free(err.getvalue())


class TestDoctor:
    """`fluxgate doctor --db URL` checks the PostgreSQL store and leaves it as it was."""

    def doctor(self, *argv: str, environ: dict[str, str] | None = None) -> tuple[int, str]:
        out = io.StringIO()
        status = doctor_main(list(argv), out=out, environ=environ or {})
        return status, out.getvalue()

    def test_healthy(self, pg_server: PostgresServer, pg_db: str) -> None:
        """It counts the events, writes a test event, rolls it back and exits 0."""
        url = pg_server.url(pg_db)
        PostgresSink(url).write(ordered(3, start=NOW))
        status, out = self.doctor("--db", url)
        assert status == 0, out
        assert f"store: {mask_url(url)} (PostgreSQL, from --db)" in out
        assert "events: 3, the last at" in out
        assert "writable: yes (a test event was written, read back and rolled back)" in out
        assert_secret_free(out)
        assert pg_server.query(pg_db, "SELECT COUNT(*) FROM fluxgate_events") == [(3,)]

    def test_no_table_yet(self, pg_server: PostgresServer, pg_db: str) -> None:
        """An empty database is usable when the role may create the table; doctor creates nothing."""
        url = pg_server.url(pg_db)
        status, out = self.doctor(environ={"FLUXGATE_DB": url})
        assert status == 0, out
        assert "(PostgreSQL, from $FLUXGATE_DB)" in out
        assert "events: none yet" in out
        assert pg_server.query(pg_db, "SELECT to_regclass('fluxgate_events') IS NULL") == [(True,)]

    def test_role_that_cannot_create_the_table(self, pg_server: PostgresServer, pg_db: str) -> None:
        """A role the sink could not create its table with is found out now, not at the first write."""
        url = pg_server.url(pg_db, user=LIMITED)
        status, out = self.doctor("--db", url)
        assert status == 1
        assert "events: none yet" in out
        assert "writable: NO: a test write failed on" in out
        assert "permission denied" in out
        assert_secret_free(out)

    def test_wrong_password(self, pg_server: PostgresServer, pg_db: str) -> None:
        """A refused login is a problem, shown with the URL masked; exit 1."""
        url = pg_server.url(pg_db, password=PASSWORD + "x")
        status, out = self.doctor("--db", url)
        assert status == 1
        assert "unusable: reading the store failed on" in out
        assert "password authentication failed" in out
        assert_secret_free(out)
