"""``ocrflow run`` and ``ocrflow query`` as a user calls them, on both database backends."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli.app import app
from db import migrate
from db.migrate import open_results_database
from tests.db_fixtures import result_rows
from tests.faults.support import DETECTOR_FLAGS, OCRFLOW, prefect_env
from tests.flows.documents import make_inbox

pytestmark = pytest.mark.usefixtures("prefect_harness")
runner = CliRunner()


def test_run_then_query(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCRFLOW_DATABASE_URL", raising=False)
    migrate.upgrade(database_url)
    files = make_inbox(tmp_path / "inbox")
    out = tmp_path / "out"
    ok = runner.invoke(
        app,
        ["run", str(files["png"]), "--database-url", database_url, "--output-dir", str(out),
         "--preset", "words", "--no-overlays"],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "receipt.png" in ok.output

    partial = runner.invoke(
        app,
        ["run", str(tmp_path / "inbox"), "--database-url", database_url, "--output-dir", str(out)],
    )
    assert partial.exit_code == 1, partial.output
    assert "broken.png" in partial.output

    result = runner.invoke(
        app,
        ["query", "SELECT count(*) AS n FROM documents WHERE status = 'failed'",
         "--database-url", database_url],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["n", "1"]  # csv: stdout is not a terminal

    refused = runner.invoke(app, ["query", "DELETE FROM regions", "--database-url", database_url])
    assert refused.exit_code == 2  # nothing done
    assert "read-only" in refused.output.lower() or "readonly" in refused.output.lower()
    count = runner.invoke(
        app, ["query", "SELECT count(*) AS n FROM regions", "--database-url", database_url]
    )
    assert count.output.splitlines()[0] == "n" and int(count.output.splitlines()[1]) > 0


def test_nothing_readable_is_exit_code_2(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("not a document")
    result = runner.invoke(
        app,
        ["run", str(tmp_path / "a.txt"), "--database-url", f"sqlite:///{tmp_path / 'x.db'}",
         "--output-dir", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 2, result.output


def test_run_here_and_on_a_server_store_the_same_rows(prefect_api_url: str, tmp_path: Path) -> None:
    """Without PREFECT_API_URL the pipeline runs in the CLI's process, no server started; with
    it the flow runs on the server: the same documents, pages and regions either way."""
    inbox = tmp_path / "inbox"
    make_inbox(inbox)
    rows = []
    for name, api_url in (("here", None), ("server", prefect_api_url)):
        url = f"sqlite:///{tmp_path / name}.db"
        env = prefect_env(api_url)
        if api_url is None:
            env.pop("PREFECT_API_URL", None)
        done = subprocess.run(
            [str(OCRFLOW), "run", str(inbox), "--database-url", url, "-o", str(tmp_path / name),
             *DETECTOR_FLAGS],
            env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 1, done  # broken.png
        assert ("flow run: " in done.stderr) == (api_url is not None), done.stderr
        assert "temporary" not in done.stderr
        engine = open_results_database(url)
        try:
            rows.append(result_rows(engine))
            with engine.connect() as conn:
                flow_runs = conn.execute(text("SELECT flow_run_id FROM runs")).scalars().all()
            assert [r is not None for r in flow_runs] == [api_url is not None]
        finally:
            engine.dispose()
    assert rows[0] == rows[1]
    assert len(rows[0]["regions"]) > 0
