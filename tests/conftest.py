"""Session-wide test settings: keep Prefect offline and quiet before anything imports it."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="ocrflow-prefect-home-"))
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
GOLDEN_DIR = Path(os.environ.get("OCRFLOW_GOLDEN_DIR", REPO_ROOT.parent / "shared" / "golden"))

# Skips that are legitimate on a machine without a GPU; any other skip fails the run, so CI
# cannot go green while silently not testing something (set OCRFLOW_ALLOW_SKIPS=1 to relax).
_ALLOWED_SKIP_MARKERS = ("gpu",)
_unexpected_skips: list[str] = []


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect server and database for the whole session (~15 s to start).

    One for every test folder that runs flows in-process (tests/flows, tests/cli).
    """
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def prefect_api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real Prefect server for every CLI process of the session (saves ~15 s per process)."""
    from tests.faults.support import start_prefect_server

    home = tmp_path_factory.mktemp("prefect-home")
    with start_prefect_server(Path(home)) as url:
        yield url


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    """The reference CRAFT outputs (``shared/golden`` beside the repository)."""
    if not (GOLDEN_DIR / "golden.json").is_file():
        pytest.skip(f"golden outputs not found in {GOLDEN_DIR} (set OCRFLOW_GOLDEN_DIR)")
    return GOLDEN_DIR


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not any(m in report.keywords for m in _ALLOWED_SKIP_MARKERS):
        _unexpected_skips.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _unexpected_skips and os.environ.get("OCRFLOW_ALLOW_SKIPS") != "1":
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _unexpected_skips and os.environ.get("OCRFLOW_ALLOW_SKIPS") != "1":
        terminalreporter.section("unexpected skips (these fail the run)", red=True)
        for nodeid in _unexpected_skips:
            terminalreporter.line(nodeid)
