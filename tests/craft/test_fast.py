"""``precision="fast"``: which path each machine gets, blank skipping, and agreement with fp32.

The agreement test is the acceptance: for every path ``fast`` can pick on the machine running
the suite, at least 98% of fp32's boxes are matched one to one by a fast box at IoU >= 0.9,
and 98% the other way, over the golden pages and every page of the bundled PDF at 150 dpi,
for the ``words`` and ``default`` presets.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from craft import CraftPredictor, DetectorParams, craft_predictor
from craft.agreement import Agreement, box_agreement
from craft.backends import cpu_flags
from craft.blank import HALO, MAX_SHARE, Window, content_window, paste, worth_cropping
from craft.fast import choose_fast_path, fast_path
from craft.orientation import page_orientation
from craft.predictor import maps_to_regions
from craft.preprocess import stack_pages
from craft.tighten import tighten_regions
from tests.craft.golden import IMAGES
from tests.craft.pages import text_page

SAMPLE_PDF = Path(__file__).resolve().parents[2] / "samples" / "natnotes.pdf"
ZEN4 = frozenset({"avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni"})
EMERALD_RAPIDS = frozenset({"avx2", "avx512f", "amx_bf16", "amx_int8", "amx_tile"})
ZEN3 = frozenset({"avx2", "fma"})


# --- which path ------------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [ZEN4, EMERALD_RAPIDS])
def test_bf16_and_vnni_cpus_get_bf16_an_int8_refiner_and_blank_skipping(
    flags: frozenset[str],
) -> None:
    for backend in ("auto", "torch"):
        path = choose_fast_path("cpu", backend, flags)
        assert (path.backend, path.precision, path.blank_skip) == ("torch", "bf16", True)
        assert path.int8_refiner and not path.fallback
        assert path.label == "bf16/int8+crop"


def test_vnni_without_bf16_gets_an_int8_refiner_on_fp32() -> None:
    cascade_lake = frozenset({"avx2", "avx512f", "avx512_vnni"})
    path = choose_fast_path("cpu", "auto", cascade_lake)
    assert (path.backend, path.precision, path.label) == (
        "onnxruntime",
        "fp32",
        "fp32/int8+crop",
    )
    assert path.int8_refiner and not path.fallback
    assert "no bf16 instructions" in path.note


@pytest.mark.parametrize("flags", [ZEN3, None, frozenset({"fp", "asimd", "bf16"})])
def test_other_cpus_fall_back_to_fp32_with_blank_skipping(flags: frozenset[str] | None) -> None:
    path = choose_fast_path("cpu", "auto", flags)
    assert (path.backend, path.precision, path.blank_skip) == ("onnxruntime", "fp32", True)
    assert path.label == "fp32+crop" and path.fallback and not path.int8_refiner
    assert "falls back to fp32" in path.note
    # Never the emulated path, whatever backend is asked for.
    assert choose_fast_path("cpu", "torch", flags).precision == "fp32"


def test_onnxruntime_asked_for_on_a_bf16_cpu_gets_fp32_and_the_int8_refiner() -> None:
    path = choose_fast_path("cpu", "onnxruntime", ZEN4)
    assert (path.backend, path.precision, path.label) == (
        "onnxruntime",
        "fp32",
        "fp32/int8+crop",
    )
    assert "no bf16 kernels" in path.note


def test_cuda_gets_bf16_on_torch() -> None:
    path = choose_fast_path("cuda:0", "auto", None)
    assert (path.backend, path.precision, path.blank_skip, path.label) == (
        "torch",
        "bf16",
        False,
        "bf16",
    )
    with pytest.raises(ValueError, match="runs on torch"):
        choose_fast_path("cuda", "onnxruntime", None)


def test_the_choice_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    fast_path.cache_clear()
    with caplog.at_level(logging.INFO, logger="craft.fast"):
        first = fast_path("cpu", "auto")
        assert fast_path("cpu", "auto") is first
    records = [r for r in caplog.records if r.name == "craft.fast"]
    assert len(records) == 1
    assert first.label in records[0].getMessage()
    assert records[0].levelno == (logging.WARNING if first.fallback else logging.INFO)


def test_predictor_records_the_concrete_choice() -> None:
    predictor = craft_predictor("words", device="cpu", precision="fast")
    expected = choose_fast_path("cpu", "auto", cpu_flags())
    assert predictor.info.precision == expected.label
    assert predictor.info.backend == expected.backend
    assert predictor.backend.precision == expected.precision
    assert predictor.blank_skip
    assert predictor._upright_twin().blank_skip  # a turned page's second pass skips blanks too
    assert predictor.params.precision == "fast"  # the request stays what the user asked
    fp32 = craft_predictor("words", device="cpu")
    assert fp32.info.precision == "fp32" and not fp32.blank_skip


# --- blank skipping --------------------------------------------------------------------------


def padded(page: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    pixels, [meta] = stack_pages([page], 1280, 1.5)
    return pixels[0], meta.resized_hw


def test_one_colour_pages_have_no_window() -> None:
    for colour in (255, 0, 200):
        pixels, hw = padded(np.full((300, 400, 3), colour, np.uint8))
        assert content_window(pixels, hw) is None


def test_window_holds_the_content_and_its_halo_on_the_32_grid() -> None:
    page = np.full((2000, 1500, 3), 255, np.uint8)
    page[900:960, 700:900] = 0  # one dark block in the middle
    pixels, (th, tw) = padded(page)
    window = content_window(pixels, (th, tw))
    assert window is not None
    scale = 1280 / 2000
    y0, y1, x0, x1 = (int(v * scale) for v in (900, 960, 700, 900))
    assert window.y0 <= y0 - HALO and window.y1 >= y1 + HALO
    assert window.x0 <= x0 - HALO and window.x1 >= x1 + HALO
    assert window.y1 - window.y0 < y1 - y0 + 2 * HALO + 64  # no more than the grid adds
    for v in (window.y0, window.y1, window.x0, window.x1):
        assert v % 32 == 0


def test_window_stops_at_the_padded_input() -> None:
    page = np.full((400, 600, 3), 255, np.uint8)
    page[5:20, 5:590] = 0
    pixels, hw = padded(page)
    window = content_window(pixels, hw)
    assert window is not None
    assert (window.y0, window.x0, window.x1) == (0, 0, pixels.shape[1])
    assert window.y1 < pixels.shape[0]


def test_faint_noise_is_not_content() -> None:
    page = np.full((400, 600, 3), 240, np.uint8)
    page += np.random.default_rng(0).integers(0, 10, page.shape, dtype=np.uint8)
    page[200:220, 250:350] = 20
    pixels, hw = padded(page)
    window = content_window(pixels, hw)
    assert window is not None and window.area < pixels.shape[0] * pixels.shape[1]


def test_paste_places_the_window_maps_at_half_resolution() -> None:
    maps = np.ones((1, 32, 48), np.float32)
    out = paste(maps, Window(64, 128, 32, 128), (256, 320))
    assert out.shape == (1, 128, 160)
    assert out.sum() == maps.sum() and out[0, 32:64, 16:64].min() == 1.0
    assert paste(None, None, (64, 96)).shape == (1, 32, 48)


def test_only_windows_that_save_enough_are_cropped() -> None:
    full = (1280, 960)
    assert worth_cropping(Window(0, 640, 0, 960), full)  # half the page
    assert worth_cropping(Window(0, 1024, 0, 960), full)  # exactly MAX_SHARE
    assert not worth_cropping(Window(0, 1088, 0, 960), full)  # 85%: a new shape for little
    assert not worth_cropping(Window(0, 1280, 0, 960), full)
    assert MAX_SHARE < 1


def test_blank_pages_skip_the_network() -> None:
    predictor = craft_predictor("default", device="cpu", precision="fast")
    [result] = predictor([np.full((300, 400, 3), 255, np.uint8)])
    assert result.regions == () and result.timings.forward == 0.0


def test_blank_skipping_finds_the_same_lines_on_a_page_with_margins() -> None:
    page = np.full((1400, 1000, 3), 255, np.uint8)
    page[500:700, 200:840] = text_page(["Invoice number 12345", "Total amount due"], (200, 640))
    fp32 = craft_predictor("default", device="cpu")
    cropped = CraftPredictor(fp32.backend, fp32.params, fp32.info, blank_skip=True)
    [full], [crop] = fp32([page]), cropped([page])
    assert len(full.regions) == 2
    quads = [[r.polygon for r in res.regions] for res in (full, crop)]
    assert box_agreement(quads[0], quads[1], iou=0.9) == Agreement(2, 2, 2)


# --- agreement with fp32 (the acceptance) ----------------------------------------------------


def _pages(golden_dir: Path) -> dict[str, np.ndarray]:
    from ingest import IngestOptions, Page, iter_pages, open_document

    pages: dict[str, np.ndarray] = {}
    for name in IMAGES:
        pages[name] = np.asarray(cv2.imread(str(golden_dir / f"{name}.png"), cv2.IMREAD_COLOR))
    options = IngestOptions(dpi=150)
    for page in iter_pages(open_document(SAMPLE_PDF, options), options):
        assert isinstance(page, Page), page
        pages[f"natnotes-{page.page_number}"] = page.image
    assert len(pages) == len(IMAGES) + 6
    return pages


def _boxes(predictor: CraftPredictor, pages: dict[str, np.ndarray]) -> dict[str, list]:
    """Boxes per (preset, page) from one pass with the refiner per page, through each preset's
    whole post-processing (what ``predict`` does after the maps)."""
    out: dict[str, list] = {"words": [], "default": []}
    for page in pages.values():
        maps, [meta] = predictor.score_maps([page])
        for preset in out:
            params = DetectorParams.preset(preset)  # type: ignore[arg-type]
            regions = maps_to_regions(maps, 0, meta, params)
            if params.detect_orientation:  # upright pages: no second, upright pass
                assert page_orientation(page, regions) == 0
            if params.tight_boxes:
                regions = tighten_regions(page, regions)
            out[preset].append([r.polygon for r in regions])
    return out


@pytest.fixture(scope="module")
def fp32_boxes(golden_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, list]]:
    pages = _pages(golden_dir)
    return pages, _boxes(craft_predictor("default", device="cpu"), pages)


def _machine_paths() -> list[str]:
    flags = cpu_flags()
    labels = {choose_fast_path("cpu", b, flags).label: b for b in ("onnxruntime", "auto")}
    return [f"{backend}:{label}" for label, backend in labels.items()]


@pytest.mark.parametrize("path", _machine_paths())
def test_every_fast_path_of_this_machine_agrees_with_fp32(fp32_boxes, path: str) -> None:
    backend, label = path.split(":")
    pages, reference = fp32_boxes
    predictor = craft_predictor("default", device="cpu", precision="fast", backend=backend)
    assert predictor.info.precision == label
    fast = _boxes(predictor, pages)
    for preset in ("words", "default"):
        total = Agreement(0, 0, 0)
        for ref, cand in zip(reference[preset], fast[preset], strict=True):
            total += box_agreement(ref, cand, iou=0.9)
        assert total.reference > (300 if preset == "default" else 2000)
        assert total.reference_recall >= 0.98, (label, preset, total)
        assert total.candidate_recall >= 0.98, (label, preset, total)
