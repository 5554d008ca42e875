"""pytest plugin for scripts/sdk-compat: run anthropic's own tests with and without fluxgate.

Loaded with ``-p sdk_compat_plugin`` (scripts/ on PYTHONPATH) in both runs:

- ``--sdk-compat-out=FILE`` writes every test's outcome to FILE as JSON
  (``{nodeid: {"outcome": ..., "message": ...}}``). Under pytest-xdist only the
  controller writes; the workers' reports reach it through the same hook.
- ``--sdk-compat-fluxgate`` calls ``fluxgate.init(sinks=[MemorySink()])`` before
  each test's setup (so its fixtures run instrumented too) and
  ``fluxgate.shutdown()`` + ``fluxgate.uninstrument()`` after its teardown.

``python scripts/sdk_compat_plugin.py PLAIN.json FLUXGATE.json`` compares two
such files, prints the tests whose outcomes differ and exits 1 if any do.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

_results: dict[str, dict[str, Any]] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sdk-compat")
    group.addoption("--sdk-compat-out", default=None, help="write per-test outcomes to this JSON file")
    group.addoption(
        "--sdk-compat-fluxgate",
        action="store_true",
        default=False,
        help="initialise fluxgate before every test and shut it down after",
    )


# --- fluxgate around every test ---------------------------------------------


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    if item.config.getoption("sdk_compat_fluxgate"):
        import fluxgate
        import fluxgate.testing

        fluxgate.init(sinks=[fluxgate.testing.MemorySink()])
    yield


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    yield
    if item.config.getoption("sdk_compat_fluxgate"):
        import fluxgate

        fluxgate.shutdown()
        fluxgate.uninstrument()


# --- outcome collection -------------------------------------------------------


def _message(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple):  # a skip: (path, lineno, reason)
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    text = str(longrepr).strip().splitlines()
    return text[-1] if text else ""


def _record(nodeid: str, outcome: str, message: str) -> None:
    _results[nodeid] = {"outcome": outcome, "message": message[:2000]}


_durations: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    nodeid = report.nodeid
    _durations[nodeid] = _durations.get(nodeid, 0.0) + report.duration
    wasxfail = hasattr(report, "wasxfail")
    if report.when == "setup":
        if report.failed:
            _record(nodeid, "error", "setup: " + _message(report))
        elif report.skipped:
            _record(
                nodeid, "xfailed" if wasxfail else "skipped", _message(report) or str(getattr(report, "wasxfail", ""))
            )
    elif report.when == "call":
        if wasxfail:
            outcome = "xfailed" if report.skipped else "xpassed"
            _record(nodeid, outcome, str(report.wasxfail) if report.skipped else "")
        elif report.failed:
            _record(nodeid, "failed", _message(report))
        elif report.skipped:
            _record(nodeid, "skipped", _message(report))
        else:
            _record(nodeid, "passed", "")
    elif report.when == "teardown" and report.failed:
        previous = _results.get(nodeid, {"outcome": "passed", "message": ""})
        message = "teardown: " + _message(report)
        if previous["message"]:
            message = previous["message"] + " || " + message
        _record(nodeid, previous["outcome"] + "+teardown-error", message)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _record(report.nodeid or "<collection>", "collect-error", _message(report))


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = session.config.getoption("sdk_compat_out")
    if out and not hasattr(session.config, "workerinput"):  # xdist workers report to the controller
        for nodeid, result in _results.items():
            result["seconds"] = round(_durations.get(nodeid, 0.0), 3)  # setup + call + teardown
        Path(out).write_text(json.dumps(_results, indent=1, sort_keys=True))


# --- comparison ----------------------------------------------------------------


def _short(message: str, width: int = 300) -> str:
    line = " ".join(message.split())
    return line if len(line) <= width else line[: width - 3] + "..."


def compare(plain_path: str, fluxgate_path: str) -> int:
    plain: dict[str, Any] = json.loads(Path(plain_path).read_text())
    with_fg: dict[str, Any] = json.loads(Path(fluxgate_path).read_text())
    missing = {"outcome": "absent", "message": ""}
    differ = []
    for nodeid in sorted(plain.keys() | with_fg.keys()):
        a, b = plain.get(nodeid, missing), with_fg.get(nodeid, missing)
        if a["outcome"] != b["outcome"]:
            differ.append((nodeid, a, b))
    for nodeid, a, b in differ:
        print(f"DIFFERS {nodeid}")
        print(f"    plain:    {a['outcome']}" + (f"  {_short(a['message'])}" if a["message"] else ""))
        print(f"    fluxgate: {b['outcome']}" + (f"  {_short(b['message'])}" if b["message"] else ""))
    counts: dict[str, int] = {}
    for result in plain.values():
        counts[result["outcome"]] = counts.get(result["outcome"], 0) + 1
    breakdown = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    print(f"sdk-compat: {len(plain.keys() | with_fg.keys())} tests, {len(differ)} differ (plain run: {breakdown})")
    return 1 if differ else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: sdk_compat_plugin.py PLAIN.json FLUXGATE.json")
    sys.exit(compare(sys.argv[1], sys.argv[2]))
