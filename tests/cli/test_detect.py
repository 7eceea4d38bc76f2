"""``ocrflow detect``: flags, JSON records, overlays and exit codes, on real files."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from cli.app import app
from cli.options import detector_options
from tests.craft.pages import text_page

runner = CliRunner()


@pytest.fixture(scope="module")
def page_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("detect") / "memo.png"
    cv2.imwrite(str(path), text_page(["Quarterly report 2026", "alpha beta gamma"]))
    return path


def test_json_records_and_overlay(page_png: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = runner.invoke(
        app, ["detect", str(page_png), "--json", str(out), "--output-dir", str(tmp_path / "ov")]
    )
    assert result.exit_code == 0, result.output
    [record] = json.loads(out.read_text())
    assert record["source"] == str(page_png) and record["page"] == 1
    assert (record["width"], record["height"]) == (640, 400)
    assert set(record["timings"]) == {"preprocess", "forward", "refine", "postprocess"}
    assert len(record["regions"]) == 2
    region = record["regions"][0]
    assert set(region) == {"polygon", "center", "size", "angle", "score"}
    assert len(region["polygon"]) == 4
    overlay = cv2.imread(str(tmp_path / "ov" / "memo-p1.overlay.png"))
    green = (overlay[..., 1] == 255) & (overlay[..., 0] == 0) & (overlay[..., 2] == 0)
    assert green.sum() > 500


def test_preset_words_and_explicit_flags_override_it(page_png: Path) -> None:
    words = runner.invoke(app, ["detect", str(page_png), "--preset", "words", "--json", "-"])
    assert words.exit_code == 0, words.output
    records = json.loads(words.stdout[words.stdout.index("[") :])
    assert len(records[0]["regions"]) == 6  # "Quarterly report 2026" + "alpha beta gamma"
    lines = runner.invoke(
        app, ["detect", str(page_png), "--preset", "words", "--with-refiner", "--json", "-"]
    )
    records = json.loads(lines.stdout[lines.stdout.index("[") :])
    assert len(records[0]["regions"]) == 2


def test_flags_map_to_visual_nlp_names() -> None:
    p = detector_options(
        "words", score_threshold=0.6, text_threshold=0.3, link_threshold=0.5, size_threshold=-1,
        width=960, with_refiner=True, backend="torch", precision="bf16", device="cpu", batch_size=4,
    ).resolve()  # fmt: skip
    assert p.craft_thresholds() == {"text_threshold": 0.6, "low_text": 0.3, "link_threshold": 0.5}
    assert (p.size_threshold, p.width, p.with_refiner) == (-1, 960, True)
    assert (p.backend, p.precision, p.device, p.batch_size) == ("torch", "bf16", "cpu", 4)


def test_invalid_flag_value_is_a_usage_error(page_png: Path) -> None:
    result = runner.invoke(app, ["detect", str(page_png), "--score-threshold", "1.5"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["detect", str(page_png), "--preset", "paragraphs"])
    said = " ".join(result.output.replace("│", " ").split())  # rich's box, unwrapped
    assert result.exit_code == 2 and "'paragraphs' is not one of 'default'" in said


def test_partial_failure_exit_code(page_png: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    result = runner.invoke(app, ["detect", str(page_png), str(broken)])
    assert result.exit_code == 1
    assert "broken.png" in result.output


def test_nothing_readable_exit_code(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    result = runner.invoke(app, ["detect", str(tmp_path / "notes.txt")])
    assert result.exit_code == 2


def test_pdf_pages_are_detected(tmp_path: Path) -> None:
    from PIL import Image

    pages = [Image.fromarray(np.ascontiguousarray(text_page([f"Page {i} heading"])[..., ::-1]))
             for i in (1, 2)]  # fmt: skip
    pdf = tmp_path / "two.pdf"
    pages[0].save(pdf, save_all=True, append_images=pages[1:], resolution=100)
    out = tmp_path / "two.json"
    result = runner.invoke(app, ["detect", str(pdf), "--json", str(out), "--dpi", "100"])
    assert result.exit_code == 0, result.output
    records = json.loads(out.read_text())
    assert [r["page"] for r in records] == [1, 2]
    assert all(len(r["regions"]) == 1 for r in records)
