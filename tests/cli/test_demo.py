"""``ocrflow demo``, the README's main command, end to end on the bundled samples."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


def test_demo_runs_the_flow_and_prints_results(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--output-dir", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    overlays = sorted((tmp_path / "demo" / "overlays").rglob("*.png"))
    assert len(overlays) == 7  # 6 PDF pages and the photo
    assert "natnotes.pdf" in result.output and "memo.jpg" in result.output
    assert "application/pdf" in result.output  # the example query's result table
    assert "image/jpeg" in result.output
    assert "citation" in result.output.lower()  # the search found recognised text
