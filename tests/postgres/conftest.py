"""A real PostgreSQL server for these tests, started in a temporary directory.

The session fixture runs ``initdb`` and ``pg_ctl`` from Debian's
``postgresql`` package (``.ci/run`` installs it) on a free port of
127.0.0.1, as an unprivileged user when the tests run as root (PostgreSQL
refuses to run as root). TCP connections need a password (SCRAM), so the
tests connect the way users do: with a ``postgresql://user:password@...``
URL. Every test gets a database of its own. The tests skip, saying why,
only when no PostgreSQL server binaries can be found.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from fluxgate import AiEventUser, CostEvent, Status

REPO = Path(__file__).resolve().parents[2]
USER = "fluxgate_app"
#: A role that may not create tables: only what docs/scaling.md grants.
LIMITED = "fluxgate_limited"
#: Has a slash, so the URL must percent-encode it: both spellings must stay secret.
PASSWORD = f"s3cret/{secrets.token_hex(8)}"
_SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin")
_databases = itertools.count(1)


def find_bindir() -> Path | None:
    """The newest directory holding ``initdb`` and ``pg_ctl``, or None."""
    candidates: list[Path] = []
    for pattern in _SEARCH:
        found = sorted(Path("/").glob(pattern.lstrip("/")), key=lambda p: _version(p.parent.name), reverse=True)
        candidates.extend(found)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    return None


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def free_port() -> int:
    """A port of 127.0.0.1 nobody listens on (closed again at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class PostgresServer:
    """One PostgreSQL cluster in ``root``, stopped and started at will.

    Args:
        bindir: Where ``initdb`` and ``pg_ctl`` are.
        root: An empty directory; the cluster, its socket and its log go in it.
    """

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sock"
        self.log = root / "server.log"
        self.port = free_port()
        self._as: Sequence[str] = ()
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(root, nobody.pw_uid, nobody.pw_gid)
            runuser = shutil.which("runuser")
            self._as = (runuser, "-u", "nobody", "--") if runuser else ("su", "nobody", "-s", "/bin/sh", "-c")

    def _run(self, *args: str) -> None:
        command: list[str] = list(args)
        if self._as and self._as[0] == "su":
            command = [*self._as, " ".join(quote_shell(a) for a in args)]
        elif self._as:
            command = [*self._as, *args]
        done = subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            msg = f"{args[0]} failed ({done.returncode}): {done.stdout}{done.stderr}\n{tail}"
            raise RuntimeError(msg)

    def init(self) -> None:
        """Create the cluster: local socket trusted, TCP only with a password."""
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
            "--encoding=UTF8",
            "--no-locale",
        )
        self._run("mkdir", "-p", str(self.sockets))
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.sockets}'",
            # No fsync (the OS keeps the data), but commits do reach the WAL:
            # an "immediate" stop, which the outage tests use, keeps them.
            "fsync": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "32MB",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate`` is a crash, as far as clients can tell)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def admin(self, dbname: str = "postgres") -> Any:
        """A superuser connection over the private socket (autocommit)."""
        import psycopg

        return psycopg.connect(host=str(self.sockets), port=self.port, user="postgres", dbname=dbname, autocommit=True)

    def setup_roles(self) -> None:
        with self.admin() as conn:
            conn.execute(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")
            conn.execute(f"CREATE ROLE {LIMITED} LOGIN PASSWORD '{PASSWORD}'")

    def create_database(self) -> str:
        """A new empty database owned by the application role; its name."""
        name = f"fg_test_{next(_databases)}"
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {name} OWNER {USER}")
        return name

    def url(self, dbname: str, *, password: str = PASSWORD, port: int | None = None, user: str = USER) -> str:
        """How a user would spell the database: a URL with the password in it."""
        return f"postgresql://{user}:{quote(password, safe='')}@127.0.0.1:{port or self.port}/{dbname}"

    def execute(self, dbname: str, *statements: str) -> None:
        """Run ``statements`` as superuser in ``dbname``."""
        with self.admin(dbname) as conn:
            for statement in statements:
                conn.execute(statement)

    def query(self, dbname: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` run as superuser in ``dbname``."""
        with self.admin(dbname) as conn:
            return list(conn.execute(sql, params).fetchall())


def quote_shell(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session, removed at the end."""
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'fluxgate[postgres]'")
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(
            "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on PATH: "
            "install Debian's postgresql package, as .ci/run does"
        )
    root = Path(tempfile.mkdtemp(prefix="fluxgate-pg-"))
    server = PostgresServer(bindir, root)
    try:
        server.init()
        server.start()
        server.setup_roles()
        yield server
    finally:
        if server.running:
            with contextlib.suppress(RuntimeError):
                server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_db(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh database for one test; the server is running again when the test ends."""
    if not pg_server.running:
        pg_server.start()
    yield pg_server.create_database()
    if not pg_server.running:
        pg_server.start()


@pytest.fixture
def pg_url(pg_server: PostgresServer, pg_db: str) -> str:
    """The fresh database's URL, password included."""
    return pg_server.url(pg_db)


def make_event(n: int = 0, **overrides: Any) -> CostEvent:
    """An event whose cost has twelve decimals and differs with ``n``."""
    fields: dict[str, Any] = {
        "tracking_id": f"evt-{n}",
        "created_at": 1_790_000_000_000 + n,
        "status": Status.SUCCESS,
        "cost_usd": Decimal("0.000123456789") + Decimal(n) / Decimal(10**12),
        "cost_status": "priced",
        "cost_breakdown": {"input": Decimal("0.0001"), "output": Decimal("0.000023456789")},
        "price_version": "test",
        "model": "claude-sonnet-4-6",
        "input_tokens": 10 + n,
        "output_tokens": 20,
        "feature": "f",
        "user": AiEventUser("u1", name="Ada", monthly_revenue=49.0),
        "user_id": "u1",
        "metadata": {"k": [1, 2], "run": str(uuid.UUID(int=n))},
        "latency_ms": 12.5,
    }
    fields.update(overrides)
    return CostEvent(**fields)


def spawn(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``python -c script args...`` with the repository importable, pipes on stdin and stdout."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    environment.pop("ANTHROPIC_API_KEY", None)
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
        text=True,
    )


def run_together(procs: Sequence[subprocess.Popen[str]], *, timeout_s: float = 120) -> list[str]:
    """Release processes that each print ``ready`` and wait for a line, at once; their outputs.

    The pipe is the barrier: no process starts its work before all are ready.
    """
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            _, err = proc.communicate(timeout=timeout_s)
            pytest.fail(f"worker did not start: {line}{err}")
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout_s)
        assert proc.returncode == 0, err
        outputs.append(out)
    return outputs
