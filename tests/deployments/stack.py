"""A real Prefect stack for tests: ``prefect server start`` on PostgreSQL, process workers.

Every process is started in its own session (process group) and stopped with the whole
group, workers before the server (a worker outliving its server retries for a long time).
Telemetry is off in each of them: nothing leaves localhost.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parents[2]
PREFECT = [sys.executable, "-c", "import sys; from prefect.cli import app; sys.exit(app())"]
QUIET = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "INFO",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def pg_database(admin_url: str, name: str) -> Iterator[str]:
    """A PostgreSQL database for the test, dropped afterwards; yields its URL."""
    with psycopg.connect(_libpq(admin_url), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(admin_url), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def stop(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class Stack:
    """A running server and its workers, with their logs under ``home``."""

    home: Path
    api_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    server: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def _spawn(self, args: list[str], log: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        out = (self.home / log).open("wb")
        return subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole
        )

    def start_server(self, database_url: str, timeout: float = 180.0) -> str:
        port = free_port()
        env = {
            **os.environ,
            **QUIET,
            "PREFECT_HOME": str(self.home / "server-home"),
            "PREFECT_API_DATABASE_CONNECTION_URL": make_url(database_url)
            .set(drivername="postgresql+asyncpg")
            .render_as_string(hide_password=False),
        }
        env.pop("PREFECT_API_URL", None)
        self.server = self._spawn(
            [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            "server.log",
            env,
        )
        self.api_url = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"prefect server exited: {self.log('server.log')[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"prefect server not healthy after {timeout} s")
        self.env = {
            **os.environ,
            **QUIET,
            "PREFECT_API_URL": self.api_url,
            "PREFECT_HOME": str(self.home / "client-home"),
        }
        return self.api_url

    def start_worker(self, pool: str, name: str, extra_env: dict[str, str]) -> None:
        env = {
            **self.env,
            **extra_env,
            "PREFECT_HOME": str(self.home / f"{name}-home"),
            "PREFECT_WORKER_QUERY_SECONDS": "2",
        }
        args = [*PREFECT, "worker", "start", "--pool", pool, "--limit", "1", "--name", name]
        self.workers.append(self._spawn(args, f"{name}.log", env))

    def log(self, name: str) -> str:
        path = self.home / name
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        """Workers first, then the server."""
        for worker in self.workers:
            stop(worker)
        if self.server is not None:
            stop(self.server)
