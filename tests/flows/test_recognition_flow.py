"""Recognition switched on in the flow: known words at known places are found by search."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from cli.app import app
from db import migrate
from tests.craft.pages import text_page

pytestmark = pytest.mark.usefixtures("prefect_harness")
runner = CliRunner()


def test_recognised_words_are_found_by_search(database_url: str, tmp_path: Path) -> None:
    migrate.upgrade(database_url)
    page = text_page(["Shipment arrived Tuesday", "Invoice paid in full"], size=(200, 640))
    image = tmp_path / "note.png"
    cv2.imwrite(str(image), page)
    result = runner.invoke(
        app,
        ["run", str(image), "--database-url", database_url, "--output-dir", str(tmp_path / "out"),
         "--recognize", "--no-overlays"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    found = runner.invoke(
        app, ["search", "invoice paid", "--database-url", database_url, "--format", "table"]
    )
    assert found.exit_code == 0, found.output
    assert "note.png" in found.output and "Invoice paid in full" in found.output
    # The match is the second line, drawn at y = 110 (baseline) on the page.
    row = next(line for line in found.output.splitlines() if "Invoice" in line)
    y_min = float(row.split("│")[3].split(",")[1])
    assert 70 < y_min < 110

    missing = runner.invoke(app, ["search", "refund", "--database-url", database_url])
    assert missing.exit_code == 1
