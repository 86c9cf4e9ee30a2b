"""Shared fixtures: a real PostgreSQL server for the session and a fresh database per test.

Where the server comes from, in order:

1. ``CHARTSYNC_TEST_PG_DSN`` (a ``postgresql://`` URL).  CI sets it so that nothing is skipped:
   if that server cannot be reached the test FAILS, it is never skipped.
2. A throwaway cluster started from local PostgreSQL binaries (``initdb``/``pg_ctl`` on PATH
   or under ``/usr/lib/postgresql/*/bin``) in a temporary directory, on a free loopback port,
   stopped at the end of the session.  As root, initdb refuses to run, so the cluster is run
   as the ``postgres`` user through ``runuser``.
3. Otherwise the test is skipped.  Every PostgreSQL skip reason starts with ``postgres:`` —
   ``.ci/run`` fails the build on any such skip, so keep that prefix.

Tests that use ``pg_dsn`` or ``pg_server_dsn`` get the ``postgres`` marker automatically
(``pytest -m 'not postgres'`` deselects them).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

PG_DSN_ENV = "CHARTSYNC_TEST_PG_DSN"
SKIP_PREFIX = "postgres:"
PG_FIXTURES = frozenset({"pg_dsn", "pg_server_dsn"})
START_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 5.0
# Databases this file creates; anything else on the server is left alone.
TEST_DB_PREFIX = "chartsync_t_"


#: Warnings are errors (pyproject.toml).  A test whose warning is someone else's to fix
#: gets one narrow filter here, named with its cause; remove the entry once it is fixed.
KNOWN_WARNINGS: dict[str, str] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that needs PostgreSQL with ``postgres``; apply `KNOWN_WARNINGS`."""
    for item in items:
        if PG_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)
        if item.nodeid in KNOWN_WARNINGS:
            item.add_marker(pytest.mark.filterwarnings(KNOWN_WARNINGS[item.nodeid]))


# --- DSN handling ---------------------------------------------------------------------------


def with_database(dsn: str, database: str) -> str:
    """Return ``dsn`` (a ``postgresql://`` URL) pointing at ``database`` instead."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(
            f"{PG_DSN_ENV} must be a postgresql:// URL "
            "(example: postgresql://postgres@127.0.0.1:5432/test)"
        )
    return urlunsplit(parts._replace(path="/" + database))


async def _connect_admin(dsn: str) -> asyncpg.Connection:
    """Connect to ``dsn``; if its database does not exist yet, to the ``postgres`` database."""
    try:
        return await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)
    except asyncpg.InvalidCatalogNameError:
        return await asyncpg.connect(with_database(dsn, "postgres"), timeout=CONNECT_TIMEOUT_S)


async def _server_version(dsn: str) -> str:
    conn = await _connect_admin(dsn)
    try:
        return str(await conn.fetchval("select version()"))
    finally:
        await conn.close()


async def _create_database(server_dsn: str, name: str) -> None:
    conn = await _connect_admin(server_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(server_dsn: str, name: str) -> None:
    conn = await _connect_admin(server_dsn)
    try:
        # FORCE: a test that leaked a connection must not keep its database alive (PG >= 13).
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _wait_server(dsn: str, deadline: float) -> str | None:
    """Poll until ``dsn`` accepts a connection or ``deadline`` passes; return the last error."""
    last_error = "never tried"
    while True:
        try:
            asyncio.run(_server_version(dsn))
            return None
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            return last_error
        # A short pause between connection attempts, bounded by the deadline above.
        time.sleep(0.1)


# --- throwaway cluster ----------------------------------------------------------------------


def find_pg_bin() -> Path | None:
    """Directory holding both ``initdb`` and ``pg_ctl``: PATH first, then the newest Debian one."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl", path=str(Path(initdb).parent)):
        return Path(initdb).parent

    def major(path: str) -> int:
        name = Path(path).parent.name
        return int(name) if name.isdigit() else -1

    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major, reverse=True):
        if all(os.access(Path(bindir, tool), os.X_OK) for tool in ("initdb", "pg_ctl")):
            return Path(bindir)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ThrowawayCluster:
    """A PostgreSQL cluster in a temporary directory, run as the current user or ``postgres``."""

    def __init__(self, bindir: Path, run_as: str | None) -> None:
        self.bindir = bindir
        self.run_as = run_as
        self.root = Path(tempfile.mkdtemp(prefix="chartsync-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self.run_as is not None:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)

    def start(self) -> None:
        """initdb and start; raises ``RuntimeError`` with the tool's output on failure."""
        self.sockets.mkdir()
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            for path in (self.root, self.sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        done = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}{done.stderr}")
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        done = self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            str(int(START_TIMEOUT_S)),
            "start",
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"pg_ctl start failed:\n{done.stdout}{done.stderr}\n{self.log_tail()}"
            )

    def stop(self) -> None:
        """Stop the server (if it is running) and remove the directory; safe to call twice."""
        # The pid file, not pg_ctl's exit code: a start that timed out may still have a server.
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-2000:]
        return ""


def cluster_user() -> str | None:
    """Whom to run initdb as: ourselves (None), or ``postgres`` when we are root.

    Skips (with the ``postgres:`` prefix) when we are root and there is no ``postgres`` user.
    """
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip(
            f"{SKIP_PREFIX} running as root, initdb refuses root, and there is no "
            f"'postgres' user to run it as; set {PG_DSN_ENV} instead"
        )
    if shutil.which("runuser") is None:
        pytest.skip(
            f"{SKIP_PREFIX} running as root and 'runuser' is missing; set {PG_DSN_ENV} instead"
        )
    return "postgres"


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server_dsn() -> Iterator[str]:
    """DSN of a reachable PostgreSQL server (superuser) for the whole session; see module doc."""
    env_dsn = os.environ.get(PG_DSN_ENV)
    if env_dsn:
        error = _wait_server(env_dsn, time.monotonic() + CONNECT_TIMEOUT_S)
        if error is not None:
            pytest.fail(
                f"{PG_DSN_ENV} is set but PostgreSQL is unreachable there ({error}). "
                "Start the server (e.g. `pg_ctlcluster <version> main start`) or unset the "
                "variable to use a throwaway local cluster.",
                pytrace=False,
            )
        yield env_dsn
        return

    bindir = find_pg_bin()
    if bindir is None:
        pytest.skip(
            f"{SKIP_PREFIX} no {PG_DSN_ENV} and no local PostgreSQL binaries (initdb/pg_ctl) found"
        )
    cluster = ThrowawayCluster(bindir, cluster_user())
    try:
        try:
            cluster.start()
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            pytest.fail(
                f"could not start a throwaway PostgreSQL from {bindir}: {exc}", pytrace=False
            )
        error = _wait_server(cluster.dsn, time.monotonic() + START_TIMEOUT_S)
        if error is not None:
            pytest.fail(
                f"throwaway PostgreSQL on port {cluster.port} never accepted a "
                f"connection ({error})\n{cluster.log_tail()}",
                pytrace=False,
            )
        yield cluster.dsn
    finally:
        cluster.stop()


@contextlib.contextmanager
def fresh_database(server_dsn: str) -> Iterator[str]:
    """Create a uniquely named, empty database on ``server_dsn``; yield its DSN; drop it.

    Create and drop each run in their own short event loop (``asyncio.run``), so this works
    from sync code and from fixture setup of async tests alike — never from inside a running
    loop.
    """
    name = f"{TEST_DB_PREFIX}{uuid.uuid4().hex}"
    asyncio.run(_create_database(server_dsn, name))
    try:
        yield with_database(server_dsn, name)
    finally:
        asyncio.run(_drop_database(server_dsn, name))


async def database_exists(server_dsn: str, name: str) -> bool:
    """Whether ``name`` is a database on the server (for tests of these fixtures)."""
    conn = await _connect_admin(server_dsn)
    try:
        found = await conn.fetchval("select 1 from pg_database where datname = $1", name)
    finally:
        await conn.close()
    return found is not None


@pytest.fixture
def pg_dsn(pg_server_dsn: str) -> Iterator[str]:
    """DSN of a fresh, empty database, dropped after the test; for sync and async tests."""
    with fresh_database(pg_server_dsn) as dsn:
        yield dsn
