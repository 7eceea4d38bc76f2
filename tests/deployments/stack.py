"""A real Prefect stack for tests: ``prefect server start`` on PostgreSQL, process workers.

Every process is started in its own session (process group) and stopped with the whole
group, workers before the server (a worker outliving its server retries for a long time).
Telemetry is off in each of them: nothing leaves localhost.

Code in this (the pytest) process talks to the stack only inside ``prefect_bound_to``, which
leaves no Prefect background service bound to the stack behind it (see there).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect._internal.concurrency.services import _QueueServiceBase
from prefect.concurrency.services import (
    ConcurrencySlotAcquisitionService,
    ConcurrencySlotAcquisitionWithLeaseService,
)
from prefect.concurrency.v1.services import (
    ConcurrencySlotAcquisitionService as V1ConcurrencySlotAcquisitionService,
)
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_URL, temporary_settings
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


# Prefect's background services: process-wide singletons (one registry,
# ``_QueueServiceBase._instances``), each holding API clients made for the API URL current when
# it started, but cached under keys without that URL: the events worker under its client type,
# the concurrency-slot services under the limit names (a task tagged ``gpu`` uses one). Once
# started against a server, later flow runs in the process reuse them, whatever PREFECT_API_URL
# says by then; the log worker's key has the URL, but it would still be left running.
PREFECT_SERVICES: tuple[type[_QueueServiceBase[Any]], ...] = (
    EventsWorker,
    APILogWorker,
    ConcurrencySlotAcquisitionService,
    ConcurrencySlotAcquisitionWithLeaseService,
    V1ConcurrencySlotAcquisitionService,
)


def prefect_services() -> list[_QueueServiceBase[Any]]:
    """The Prefect background services running in this process."""
    with _QueueServiceBase._instance_cache_lock:
        return list(_QueueServiceBase._instances.values())


def drain_prefect_services(timeout: float = 60.0) -> list[_QueueServiceBase[Any]]:
    """Stop Prefect's background services, each after sending what it holds (at most
    ``timeout`` s: a service whose server is gone may retry longer; it is warned about). A
    stopped service leaves the registry at once, so none is reused: the next flow run starts
    fresh ones for the API URL current then. Returns those still registered (none, unless
    another thread started one meanwhile)."""
    pending = set()
    for service in PREFECT_SERVICES:
        waited = service.drain_all(timeout=timeout, at_exit=False)  # no event loop: a tuple
        assert isinstance(waited, tuple)
        pending |= waited[1]
    left = prefect_services()
    if pending or left:
        warnings.warn(
            f"Prefect services not drained in {timeout} s: {len(pending)} pending, "
            f"{[type(s).__name__ for s in left]} still registered",
            RuntimeWarning,
            stacklevel=2,
        )
    return left


@contextmanager
def prefect_bound_to(api_url: str) -> Iterator[None]:
    """This process's Prefect on ``api_url`` for the block (flow runs, clients), and only there.

    Services started before the block (the flow tests' harness, say) are drained first, so the
    block's runs get their own; the block's are drained on the way out, while its server still
    runs, and the settings are restored: later flow runs in this process never reach a server
    that a test has stopped (their task runs then failed on the concurrency-slot service and
    the harness's teardown hung draining an events worker retrying a dead server).
    """
    drain_prefect_services()
    try:
        with temporary_settings({PREFECT_API_URL: api_url}):
            yield
    finally:
        left = drain_prefect_services()
    assert not left, f"Prefect services still bound to {api_url}: {left}"


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
