"""Every ``examples/npm_*.py`` runs offline, exits 0, says what it should and leaves no file behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anthropic
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
HAS_COMPLETIONS = hasattr(anthropic.Anthropic(api_key="x"), "completions")

#: What each example must print (offline, against the fake API).
EXPECTED: dict[str, tuple[str, ...]] = {
    "npm_01_setup.py": ("tracked client: <TrackedClient Anthropic", "status=SUCCESS", "recorded: feature=setup-check"),
    "npm_02_non_streaming.py": ("status=SUCCESS", "feature=summarization user=user-123", "model=claude-sonnet-4-6"),
    "npm_03_streaming.py": ("stream: status=SUCCESS", "feature=streaming-chat"),
    "npm_04_rich_user.py": (
        "feature=premium-chat user=user-42",
        "monthly_revenue=$49.00 conversation=thread-9c1",
        "of the user's monthly revenue",
    ),
    "npm_05_with_tracking.py": (
        "reply: status=SUCCESS",
        "thinking_reply: status=SUCCESS",
        "feature=chat user=user-123 step=follow-up",
        "feature=chat user=user-123 step=reasoning",
        "session context after both calls: step=None",
    ),
    "npm_06_error_handling.py": (
        "caught OverloadedError (HTTP 529)" if hasattr(anthropic, "OverloadedError") else "(HTTP 529)",
        "error: status=ERROR",
        "error_message='Overloaded'",
        "feature=code-review",
    ),
    "npm_07_without_context.py": ("health check: status=SUCCESS", "feature=None model=claude-haiku-4-5"),
    "npm_08_legacy_completions.py": (
        ("Hello! How can I help you today?", "feature=legacy-completion")
        if HAS_COMPLETIONS
        else ("skipped:", "has no legacy Text Completions API")
    ),
    "npm_09_extended_thinking.py": (
        "content blocks: ['thinking', 'text']",
        "feature=reasoning-agent model=claude-opus-4-5",
        "in=58 out=1843",
        "reasoning_tokens=inside output_tokens",
    ),
}


def run_example(name: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run one example the way ``make examples`` does, offline, in an empty directory and home."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "FLUXGATE_"))}
    env.update(
        PYTHONPATH=str(ROOT), HOME=str(home), FLUXGATE_DB=str(tmp_path / "events.db"), PYTHONDONTWRITEBYTECODE="1"
    )
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestExamples:
    def test_one_per_documentation_section(self) -> None:
        """There is exactly one example per section of the npm package's documentation."""
        assert sorted(p.name for p in EXAMPLES.glob("npm_*.py")) == sorted(EXPECTED)

    @pytest.mark.slow
    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_runs_offline(self, name: str, tmp_path: Path) -> None:
        """The example exits 0, prints its key lines and writes no file."""
        done = run_example(name, tmp_path)
        assert done.returncode == 0, f"{name} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
        for line in EXPECTED[name]:
            assert line in done.stdout, f"{name} did not print {line!r}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
        assert left == [], f"{name} left files behind: {left}"
