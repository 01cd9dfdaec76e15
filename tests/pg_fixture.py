"""A real, throw-away PostgreSQL server for the tests (Debian's ``postgresql`` package).

``pg_server`` (session scope) runs ``initdb`` + ``pg_ctl start`` in a temp folder, listening
on 127.0.0.1 on a free port with its socket in that folder; as root the binaries run as the
``postgres`` user (initdb refuses root). ``pg_url`` (function scope) creates a fresh empty
database per test and drops it afterwards. Skips with a clear reason only when the
binaries are absent. ``MSM_TEST_PG_URL`` points the tests at an existing server instead.

Use from a test module::

    from pg_fixture import pg_server, pg_url  # noqa: F401  (pytest fixtures)
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import Iterator

import pytest

from needs import need


@dataclass
class PgServer:
    host: str
    port: int
    user: str = "postgres"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"


def _bindir() -> str | None:
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
                   if p.split("/")[4].isdigit() else 0)
    if cands:
        return os.path.dirname(cands[-1])
    found = shutil.which("initdb")
    return os.path.dirname(found) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_pg(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    ext = os.environ.get("MSM_TEST_PG_URL")
    if ext:  # e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres
        from sqlalchemy.engine import make_url
        u = make_url(ext)
        yield PgServer(u.host or "127.0.0.1", u.port or 5432, u.username or "postgres")
        return
    bindir = _bindir()
    need(bindir is not None, "PostgreSQL server binaries not installed: run .ci/system-deps.sh")
    need(os.geteuid() != 0 or shutil.which("runuser") is not None,
         "running as root without runuser: cannot start PostgreSQL as the postgres user")
    root = tempfile.mkdtemp(prefix="msm-pg-")
    data, sock, logf = os.path.join(root, "data"), os.path.join(root, "sock"), os.path.join(root, "pg.log")
    os.makedirs(sock)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(sock, "postgres", "postgres")
    os.chmod(root, 0o700)
    subprocess.run(_as_pg([f"{bindir}/initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                           "--no-sync", "--no-instructions"]),
                   check=True, capture_output=True, timeout=120)
    port = _free_port()
    opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off -c synchronous_commit=off "
            f"-c full_page_writes=off -c max_connections=60 -c shared_buffers=32MB")
    r = subprocess.run(_as_pg([f"{bindir}/pg_ctl", "-D", data, "-o", opts, "-l", logf, "-w", "-t", "60", "start"]),
                       capture_output=True, text=True, timeout=90)
    if r.returncode != 0:
        log = open(logf).read() if os.path.exists(logf) else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {r.stderr}\n{log[-2000:]}")
    try:
        yield PgServer("127.0.0.1", port)
    finally:
        subprocess.run(_as_pg([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "-t", "30", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def _admin(server: PgServer, sql: str) -> None:
    import psycopg
    deadline = time.time() + 20
    while True:
        try:
            with psycopg.connect(host=server.host, port=server.port, user=server.user, dbname="postgres",
                                 autocommit=True, connect_timeout=5) as conn:
                conn.execute(sql)
            return
        except psycopg.OperationalError:
            if time.time() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    name = f"msm_{uuid.uuid4().hex[:10]}"
    _admin(pg_server, f'CREATE DATABASE "{name}"')
    try:
        yield pg_server.url(name)
    finally:
        _admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
