"""The ``fluxgate`` console script: version, usage and dispatch to every command (issues 15 and 16)."""

from __future__ import annotations

import pytest

import fluxgate
from fluxgate._cli.main import main

from .events import fluxgate_cli

COMMANDS = ("report", "tail", "prices", "reconcile", "doctor", "demo")


class TestVersion:
    """--version prints fluxgate's version."""

    @pytest.mark.parametrize("flag", ["--version", "-V"])
    def test_in_process(self, flag: str, capsys: pytest.CaptureFixture[str]) -> None:
        """It prints "fluxgate X.Y.Z" and succeeds."""
        assert main([flag]) == 0
        assert capsys.readouterr().out == f"fluxgate {fluxgate.__version__}\n"

    @pytest.mark.slow
    def test_console_script(self) -> None:
        """The real process prints the same."""
        done = fluxgate_cli("--version")
        assert (done.returncode, done.stdout.strip()) == (0, f"fluxgate {fluxgate.__version__}")


class TestUsage:
    """Usage lists every command; an unknown one is a usage error."""

    def test_help_lists_commands(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--help names every command and --version."""
        assert main(["--help"]) == 0
        out = capsys.readouterr().out
        assert "--version" in out
        for command in COMMANDS:
            assert f"\n  {command} " in out

    def test_no_command(self, capsys: pytest.CaptureFixture[str]) -> None:
        """No command prints the usage and exits 2."""
        assert main([]) == 2
        assert "commands:" in capsys.readouterr().out

    def test_unknown_command(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown command says so on stderr and exits 2."""
        assert main(["frobnicate"]) == 2
        assert "unknown command 'frobnicate'" in capsys.readouterr().err

    @pytest.mark.parametrize("command", COMMANDS)
    def test_every_command_has_help(self, command: str, capsys: pytest.CaptureFixture[str]) -> None:
        """Each command is reached through the dispatcher and answers --help."""
        assert main([command, "--help"]) == 0
        assert f"fluxgate {command}" in capsys.readouterr().out


class TestReconcileDispatch:
    """`fluxgate reconcile` reaches the reconcile command."""

    def test_without_admin_key(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        """Without an admin key it fails as reconcile does: one line, status 2."""
        monkeypatch.delenv("ANTHROPIC_ADMIN_KEY", raising=False)
        monkeypatch.delenv("ANTHROPIC_ADMIN_API_KEY", raising=False)
        assert main(["reconcile"]) == 2
        assert capsys.readouterr().err.startswith("fluxgate reconcile: no admin key")
