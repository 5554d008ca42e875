"""The HTML report: self-contained, escaped, and drawn by a real browser."""

from __future__ import annotations

import io
import os
import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from fluxgate import AiEventUser, CostEvent, Status
from fluxgate._cli.report import main
from fluxgate._report.charts import BAD, PALETTE
from fluxgate._report.html import render
from fluxgate._report.summary import Overview, overview
from fluxgate.sinks import SQLiteSink

HOUR = 3_600_000
DAY = 24 * HOUR
NOW = int(datetime(2026, 11, 20, 12, tzinfo=timezone.utc).timestamp() * 1000)
HOSTILE_FEATURE = "<script>alert('feature')</script>"
HOSTILE_USER = '"><img src=x onerror=alert(1)>'


def event(n: int, *, cost: str | None, at: int, **fields: object) -> CostEvent:
    return CostEvent(
        tracking_id=f"h-{n}",
        created_at=at,
        status=fields.pop("status", Status.SUCCESS),  # type: ignore[arg-type]
        cost_usd=None if cost is None else Decimal(cost),
        cost_status="unpriced_model" if cost is None else "priced",
        model=fields.pop("model", "claude-sonnet-4-6"),  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )


def busy_events() -> list[CostEvent]:
    """Two weeks of calls over four features and three paying users, with caching, waste and one unpriced model."""
    users = [
        AiEventUser("acme", name="Acme", monthly_revenue=5.0),
        AiEventUser("globex", monthly_revenue=500.0),
        AiEventUser(HOSTILE_USER, monthly_revenue=500.0),
    ]
    features = ["summarize", "chat", "search", HOSTILE_FEATURE]
    statuses = [Status.SUCCESS] * 6 + [Status.MAX_TOKENS, Status.ERROR, Status.CONTENT_FILTER]
    out = []
    n = 0
    for day in range(14):
        for i, feature in enumerate(features):
            for j, user in enumerate(users):
                n += 1
                out.append(
                    event(
                        n,
                        cost=str(Decimal("0.05") * (i + 1) * (j + 1) + Decimal(day) / 100),
                        at=NOW - day * DAY - (i * 3 + j) * HOUR,
                        status=statuses[n % len(statuses)],
                        feature=feature,
                        user=user,
                        user_id=user.id,
                        input_tokens=1000 * (i + 1),
                        output_tokens=200,
                        cache_read_input_tokens=4000 if j == 0 else 0,
                        cache_creation_input_tokens=1000 if day == 0 else 0,
                        latency_ms=100.0 + 10 * n,
                    )
                )
    out.append(event(n + 1, cost=None, at=NOW - HOUR, model="<b>homegrown</b>", feature="chat"))
    return out


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "events.db"
    sink = SQLiteSink(path)
    sink.write(busy_events())
    sink.close()
    return path


@pytest.fixture
def view(store: Path) -> Overview:
    return overview(store, now_ms=NOW, threshold=Decimal("0.2"))


class TestRender:
    """The page holds every chart and table, escapes what it shows, and loads nothing."""

    def test_every_chart(self, view: Overview) -> None:
        """Daily, users, models, cache and waste each get an SVG chart."""
        page = render(view)
        for section in ("daily", "users", "models", "cache", "waste", "groups", "economics"):
            assert f'id="{section}"' in page
        assert page.count("<svg") == 5
        assert page.count("<rect") > 14 * 4
        assert "Daily cost by feature" in page

    def test_exact_figures(self, view: Overview) -> None:
        """Cards and tables show the report's exact totals."""
        page = render(view)
        assert f"{view.report.totals.calls:,}" in page
        assert "1 call of unknown cost" in page
        summarize = next(r for r in view.report.rows if r.key == ("summarize",))
        assert f"<td>{summarize.calls:,}</td>" in page

    def test_escapes_untrusted_names(self, view: Overview) -> None:
        """Feature names, user ids and model ids from the store cannot inject markup."""
        page = render(view)
        assert "<script" not in page
        assert "<img" not in page
        assert "<b>homegrown" not in page
        assert "&lt;script&gt;alert(&#x27;feature&#x27;)&lt;/script&gt;" in page
        assert "&quot;&gt;&lt;img src=x" in page

    def test_self_contained(self, view: Overview) -> None:
        """No URL, script or import: the page works offline, and its CSP forbids loading anything."""
        page = render(view)
        assert not re.search(r"https?://|<script|@import|url\(|<link(?![^>]*data:)", page)
        assert "default-src 'none'" in page

    def test_alert_colour(self, view: Overview) -> None:
        """Users over the margin alert are drawn in the alert colour, and only they."""
        page = render(view)
        alerts = [u.user_id for u in view.economics.alerts]
        assert alerts == ["acme"]
        assert page.count(f'fill="{BAD}"') == 1

    def test_empty_charts(self, tmp_path: Path) -> None:
        """With only an unpriced call, charts say there is nothing to draw instead of failing."""
        sink = SQLiteSink(tmp_path / "one.db")
        sink.write([event(1, cost=None, at=NOW, model="mystery")])
        sink.close()
        page = render(overview(tmp_path / "one.db", now_ms=NOW))
        assert "No priced calls in this range" in page
        assert "No prompt caching in this range" in page
        assert "No user with a monthly_revenue" in page

    def test_without_chart_views(self, view: Overview) -> None:
        """An overview made without charts still renders."""
        page = render(attrs.evolve(view, daily=None, by_model=None))
        assert page.count("<svg") == 3


class TestHTMLCommand:
    """fluxgate report --html writes the page."""

    def test_writes_file(self, store: Path, tmp_path: Path) -> None:
        """The page is written and its path printed."""
        target = tmp_path / "report.html"
        out = io.StringIO()
        assert main(["--db", str(store), "--html", str(target), "--margin-alert", "0.2"], out=out, now_ms=NOW) == 0
        assert out.getvalue().startswith(f"wrote {target} (")
        assert target.read_text(encoding="utf-8").count("<svg") == 5

    def test_empty_store(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An empty store writes nothing and says why."""
        SQLiteSink(tmp_path / "empty.db").write([])
        target = tmp_path / "report.html"
        assert main(["--db", str(tmp_path / "empty.db"), "--html", str(target)], now_ms=NOW) == 1
        assert not target.exists()
        assert "no events in" in capsys.readouterr().err

    def test_unwritable_target(self, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A target in a missing directory is one line on stderr."""
        target = tmp_path / "missing" / "report.html"
        assert main(["--db", str(store), "--html", str(target)], now_ms=NOW) == 1
        err = capsys.readouterr().err
        assert "No such file or directory" in err
        assert "Traceback" not in err


# --- a real browser ------------------------------------------------------------------------


def chromium_path() -> str:
    """The Chromium binary; skips locally and fails in CI when there is none."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    reason = "headless Chromium is not installed (Debian: apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def open_in_chromium(page: Path, work: Path) -> tuple[str, str, bytes]:
    """Load ``page`` at 1366x900; returns its DOM, Chromium's log and a PNG screenshot."""
    shot = work / "shot.png"
    done = subprocess.run(
        [
            chromium_path(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-color-profile=srgb",
            "--force-device-scale-factor=1",
            f"--user-data-dir={work / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1366,900",
            f"--screenshot={shot}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr, shot.read_bytes()


def console_messages(log: str) -> list[str]:
    """The page's console output in Chromium's log: any of it means something went wrong."""
    return [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def decode_png(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Width, height and RGB pixels of an 8-bit, non-interlaced RGB or RGBA PNG (stdlib only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + size]
        pos += 12 + size
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, interlace) == (8, 0)
            channels = {2: 3, 6: 4}[colour]
        elif kind == b"IDAT":
            chunks += body
    raw = zlib.decompress(chunks)
    stride = width * channels
    prev = bytearray(stride)
    pixels: list[tuple[int, ...]] = []
    for y in range(height):
        start = y * (stride + 1)
        method, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):  # undo the PNG row filter (None, Sub, Up, Average, Paeth)
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            if method == 1:
                line[i] = (line[i] + a) & 255
            elif method == 2:
                line[i] = (line[i] + b) & 255
            elif method == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif method == 4:
                c = prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        pixels.extend(tuple(line[x : x + 3]) for x in range(0, stride, channels))
        prev = line
    return width, height, pixels


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


@pytest.mark.slow
class TestInChromium:
    """The page opens in headless Chromium without console messages, and its charts are on screen."""

    def test_charts_on_screen(self, view: Overview, tmp_path: Path) -> None:
        """The DOM holds the charts, nothing was logged, and the screenshot shows the chart colours."""
        page = tmp_path / "report.html"
        page.write_text(render(view), encoding="utf-8")
        dom, log, png = open_in_chromium(page, tmp_path)
        assert console_messages(log) == []
        assert dom.count("<svg") == 5
        assert "<rect" in dom
        width, height, pixels = decode_png(png)
        assert (width, height) == (1366, 900)
        counts = Counter(pixels)
        assert len(counts) > 100, "the screenshot is (nearly) blank"
        assert counts[(255, 255, 255)] < len(pixels) * 0.9
        for colour in (*PALETTE[:4], BAD):  # four features in the daily chart, and the alert bar
            assert counts[rgb(colour)] > 150, f"{colour} is not on screen"

    def test_console_check_catches_errors(self, tmp_path: Path) -> None:
        """The console check sees a script error, so its silence above means something."""
        page = tmp_path / "broken.html"
        page.write_text("<!doctype html><p>x</p><script>throw new Error('boom')</script>", encoding="utf-8")
        _, log, png = open_in_chromium(page, tmp_path)
        assert any("Uncaught Error: boom" in line for line in console_messages(log))
        assert len(Counter(decode_png(png)[2])) < 100  # a nearly blank page reads as blank
