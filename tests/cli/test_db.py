"""``ocrflow db`` commands on both backends, and their one-line errors."""

from __future__ import annotations

from typer.testing import CliRunner

from cli.db import db_app

runner = CliRunner()


def test_upgrade_current_check_downgrade(database_url: str) -> None:
    args = ["--database-url", database_url]
    result = runner.invoke(db_app, ["current", *args])  # SQLite: no file yet, and none made
    assert result.exit_code == 2 and (
        "run `ocrflow db upgrade`" in result.output or "no database at" in result.output
    )

    result = runner.invoke(db_app, ["upgrade", *args])
    assert result.exit_code == 0, result.output
    result = runner.invoke(db_app, ["current", *args])
    assert result.exit_code == 0 and "(head, up to date)" in result.output
    result = runner.invoke(db_app, ["check", *args])
    assert result.exit_code == 0, result.output

    result = runner.invoke(db_app, ["downgrade", "base", *args])
    assert result.exit_code == 0, result.output
    result = runner.invoke(db_app, ["check", *args])  # no schema: nothing to check
    assert result.exit_code == 2 and "run `ocrflow db upgrade`" in result.output


def test_errors_are_one_line_without_traceback() -> None:
    result = runner.invoke(
        db_app, ["upgrade"], env={"OCRFLOW_DATABASE_URL": "postgresql://u:pw@127.0.0.1:1/x"}
    )
    assert result.exit_code == 2
    assert result.output.startswith("error: cannot reach postgresql+psycopg://u:***@127.0.0.1:1/x")
    assert "Traceback" not in result.output and ":pw@" not in result.output

    result = runner.invoke(db_app, ["current", "--database-url", "oracle://x"])
    assert result.exit_code == 2 and "unsupported database URL" in result.output
