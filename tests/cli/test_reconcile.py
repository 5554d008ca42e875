"""Issue 16's wiring: the fake API's Admin reports, `fluxgate reconcile` on them, and the HTML report's section."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import fluxgate
from fluxgate._cli.main import main as cli_main
from fluxgate._cli.report import main as report_main
from fluxgate._reconcile import AnsweredCall
from fluxgate._reconcile import main as reconcile_main
from fluxgate.testing import FakeAnthropicAPI
from fluxgate.testing._fake_wire import http_library
from tests.helpers import HELLO, create, stream_events
from tests.report.test_html import console_messages, open_in_chromium

from .events import event, fill

ADMIN_KEY = "sk-ant-admin01-test-wiring"
HEADERS = {"x-api-key": ADMIN_KEY, "anthropic-version": "2023-06-01"}


@pytest.fixture
def tracked(tmp_path: Path) -> Iterator[tuple[FakeAnthropicAPI, Path]]:
    """fluxgate recording to a real store, and a fake whose reports also bill $0.50 nobody tracked."""
    db = tmp_path / "events.db"
    untracked = AnsweredCall(
        at_ms=time.time_ns() // 1_000_000,
        model="claude-sonnet-4-6",
        input_tokens=1000,
        cost_usd=Decimal("0.5"),
    )
    fake = FakeAnthropicAPI(untracked_usage=[untracked])
    fluxgate.init(db_path=db)
    yield fake, db
    fluxgate.shutdown(timeout_s=5)


def make_calls(fake: FakeAnthropicAPI) -> None:
    """Two plain calls, a streamed one, a failed one and a token count."""
    client = fake.client()
    create(client)
    create(client, model="claude-haiku-4-5")
    fake.reply_sse("".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in stream_events(output_tokens=77)))
    for _ in create(client, stream=True):
        pass
    fake.reply_error(529, "overloaded_error", "Overloaded")
    with pytest.raises(Exception, match="Overloaded"):
        create(client)
    client.messages.count_tokens(model="claude-sonnet-4-6", messages=HELLO)
    assert fluxgate.flush(timeout_s=10)


def reconcile(url: str, db: Path, *args: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    environ = {"ANTHROPIC_ADMIN_KEY": ADMIN_KEY, "ANTHROPIC_BASE_URL": url}
    status = reconcile_main(["--db", str(db), "--format", "json", "--by", "model", *args], out=out, environ=environ)
    return status, json.loads(out.getvalue())


class TestFakeAdminReports:
    """FakeAnthropicAPI answers the Admin API's usage and cost reports from the calls it answered."""

    def test_answered_calls(self, tracked: tuple[FakeAnthropicAPI, Path]) -> None:
        """Successful Messages calls, streamed or not, are billed; failures and token counts are not."""
        fake, _ = tracked
        make_calls(fake)
        assert [(c.model, c.output_tokens) for c in fake.answered_calls][-1] == ("claude-sonnet-4-6", 77)
        assert len(fake.answered_calls) == 3
        assert all(c.cost_usd is not None and c.cost_usd > 0 for c in fake.answered_calls)

    def test_through_the_transport(self, tracked: tuple[FakeAnthropicAPI, Path]) -> None:
        """The fake's own transport serves the cost report: answered calls plus the untracked usage, in cents."""
        fake, _ = tracked
        make_calls(fake)
        http = http_library().Client(transport=fake.transport(), base_url="https://api.anthropic.com")
        day = fake.answered_calls[0].at_ms // 86_400_000 * 86_400
        start = datetime.fromtimestamp(day, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        reply = http.get("/v1/organizations/cost_report", params={"starting_at": start, "limit": 1}, headers=HEADERS)
        assert reply.status_code == 200
        billed = sum(Decimal(r["amount"]) for b in reply.json()["data"] for r in b["results"]) / 100
        expected = sum((c.cost_usd or Decimal(0) for c in fake.answered_calls), Decimal("0.5"))
        assert billed == expected
        refused = http.get("/v1/organizations/cost_report", params={"starting_at": start}, headers={})
        assert refused.status_code == 401
        assert fake.requests[-1].path == "/v1/organizations/cost_report"

    def test_reconcile_against_the_fake(self, tracked: tuple[FakeAnthropicAPI, Path]) -> None:
        """`fluxgate reconcile` finds every tracked dollar billed, and exactly the untracked $0.50 on top."""
        fake, db = tracked
        make_calls(fake)
        fluxgate.shutdown(timeout_s=5)
        with fake.serve_admin() as url:
            status, data = reconcile(url, db)
        assert status == 0
        total = data["total"]
        tracked_usd, reported = Decimal(total["tracked_cost_usd"]), Decimal(total["reported_cost_usd"])
        assert tracked_usd == sum((c.cost_usd or Decimal(0) for c in fake.answered_calls), Decimal(0))
        assert reported - tracked_usd == Decimal("0.5")
        haiku = next(row for row in data["rows"] if row["model"] == "claude-haiku-4-5")
        assert Decimal(haiku["coverage"]) == 1

    def test_min_coverage_through_the_dispatcher(
        self, tracked: tuple[FakeAnthropicAPI, Path], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`fluxgate reconcile --min-coverage` exits 1 below the floor, as a CI job would use it."""
        fake, db = tracked
        make_calls(fake)
        fluxgate.shutdown(timeout_s=5)
        with fake.serve_admin() as url:
            monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", ADMIN_KEY)
            monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
            assert cli_main(["reconcile", "--db", str(db), "--min-coverage", "0.001", "--format", "csv"]) == 0
            assert cli_main(["reconcile", "--db", str(db), "--min-coverage", "0.999"]) == 1


class TestHTMLSection:
    """`fluxgate report --html` shows "Tracked vs billed" when a saved result is beside the store."""

    @pytest.fixture
    def saved(self, tracked: tuple[FakeAnthropicAPI, Path]) -> Path:
        fake, db = tracked
        make_calls(fake)
        fluxgate.shutdown(timeout_s=5)
        with fake.serve_admin() as url:
            assert reconcile(url, db, "--save")[0] == 0
        assert Path(f"{db}.reconcile.json").exists()
        return db

    def html(self, db: Path, page: Path) -> str:
        out = io.StringIO()
        assert report_main(["--db", str(db), "--html", str(page)], out=out) == 0
        return out.getvalue()

    def test_section_added(self, saved: Path, tmp_path: Path) -> None:
        """The page gets the section, and the command says so."""
        page = tmp_path / "report.html"
        said = self.html(saved, page)
        assert said.rstrip().endswith(", with tracked vs billed)")
        text = page.read_text(encoding="utf-8")
        assert '<section class="panel" id="reconcile"><h2>Tracked vs billed</h2>' in text
        assert text.index('id="economics"') < text.index('id="reconcile"')

    def test_no_saved_result(self, tmp_path: Path) -> None:
        """Without a saved result there is no section."""
        db = fill(tmp_path / "e.db", [event()])
        page = tmp_path / "report.html"
        assert "with tracked vs billed" not in self.html(db, page)
        assert 'id="reconcile"' not in page.read_text(encoding="utf-8")

    def test_unreadable_saved_result(self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        """A saved result that cannot be read is left out (and logged); the report is still written."""
        db = fill(tmp_path / "e.db", [event()])
        Path(f"{db}.reconcile.json").write_text("{not json")
        page = tmp_path / "report.html"
        self.html(db, page)
        assert 'id="reconcile"' not in page.read_text(encoding="utf-8")
        assert "ignoring the saved reconcile result" in caplog.text

    @pytest.mark.slow
    def test_in_chromium(self, saved: Path, tmp_path: Path) -> None:
        """The page with the section opens in headless Chromium without a console message."""
        page = tmp_path / "report.html"
        self.html(saved, page)
        dom, log, _ = open_in_chromium(page, tmp_path)
        assert console_messages(log) == []
        assert 'id="reconcile"' in dom
        assert "of billed spend tracked" in dom
