"""CUDA paths: fp32 parity, fp16/bf16 autocast, fast (bf16), pinned batches (skip without GPU)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from craft import DetectorParams, craft_predictor
from craft.agreement import Agreement, box_agreement
from craft.predictor import default_post_processes, maps_to_regions
from craft.preprocess import normalise, stack_pages
from tests.craft.golden import IMAGES, golden_quads, match_quads

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_auto_device_picks_cuda_and_torch() -> None:
    predictor = craft_predictor("default")
    assert predictor.info.device.startswith("cuda") and predictor.info.backend == "torch"


def test_fp32_maps_match_golden_on_cuda(golden_dir: Path) -> None:
    predictor = craft_predictor("default", device="cuda", precision="fp32")
    image = cv2.imread(str(golden_dir / "page.png"), cv2.IMREAD_COLOR)
    pixels, _ = stack_pages([image], 1280, 1.5)
    maps = predictor.backend.run_pixels(pixels, with_refiner=True)  # normalised on the GPU
    golden = np.load(golden_dir / "page.maps.npz")
    assert np.abs(maps.text[0] - golden["score_text"].astype(np.float32)).max() <= 2e-3
    assert np.abs(maps.refined_link[0] - golden["refined_link"].astype(np.float32)).max() <= 2e-3


def test_gpu_normalisation_is_bit_exact() -> None:
    predictor = craft_predictor("default", device="cuda")
    pixels = np.random.default_rng(0).integers(0, 256, (2, 96, 64, 3), np.uint8)
    on_gpu = predictor.backend.device_input(pixels)  # type: ignore[attr-defined]
    assert on_gpu.is_cuda and on_gpu.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_array_equal(on_gpu.cpu().numpy(), normalise(pixels))


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_boxes_stay_close(golden_dir: Path, precision: str) -> None:
    image = cv2.imread(str(golden_dir / "page.png"), cv2.IMREAD_COLOR)
    predictor = craft_predictor("words", device="cuda", precision=precision)
    [result] = predictor([image])
    found = np.asarray([r.polygon for r in result.regions], np.float32).reshape(-1, 4, 2)
    expected = golden_quads(golden_dir, "page", "craft_default")
    ious = match_quads(found, expected)
    assert abs(len(found) - len(expected)) <= 0.05 * len(expected)
    assert np.mean(np.asarray(ious) >= 0.9) >= 0.95


def test_overlap_is_the_cuda_default_and_changes_no_result(golden_dir: Path) -> None:
    """On CUDA pages are post-processed in worker processes by default (threads would stay
    near one core under the GIL); inline gives the same regions."""
    pages = [cv2.imread(str(golden_dir / f"{n}.png"), cv2.IMREAD_COLOR) for n in ("small", "page")]
    predictor = craft_predictor("default", device="cuda")
    assert predictor.overlap and predictor.post_processes == default_post_processes()
    overlapped = predictor(pages * 2)
    predictor.overlap = False
    assert predictor.post_processes == 0
    sequential = predictor(pages * 2)
    assert [r.regions for r in overlapped] == [r.regions for r in sequential]


def test_batches_equal_single_pages_on_cuda(golden_dir: Path) -> None:
    image = cv2.imread(str(golden_dir / "small.png"), cv2.IMREAD_COLOR)
    single = craft_predictor("default", device="cuda")([image])[0]
    batched = craft_predictor("default", device="cuda", batch_size=4)([image] * 4)
    for result in batched:
        assert len(result.regions) == len(single.regions)
        for a, b in zip(result.regions, single.regions, strict=True):
            assert np.allclose(a.polygon, b.polygon, atol=1.0)


def test_fast_is_bf16_and_agrees_with_fp32_on_cuda(golden_dir: Path) -> None:
    from ingest import IngestOptions, Page, iter_pages, open_document

    pages = [np.asarray(cv2.imread(str(golden_dir / f"{n}.png"), cv2.IMREAD_COLOR)) for n in IMAGES]
    options = IngestOptions(dpi=150)
    pdf = Path(__file__).resolve().parents[2] / "samples" / "natnotes.pdf"
    for page in iter_pages(open_document(pdf, options), options):
        assert isinstance(page, Page), page
        pages.append(page.image)
    fp32 = craft_predictor("default", device="cuda", precision="fp32")
    fast = craft_predictor("default", device="cuda", precision="fast")
    assert (fast.info.backend, fast.info.precision, fast.blank_skip) == ("torch", "bf16", False)
    totals = {"words": Agreement(0, 0, 0), "default": Agreement(0, 0, 0)}
    for image in pages:
        ref_maps, [meta] = fp32.score_maps([image])
        fast_maps, _ = fast.score_maps([image])
        for preset in totals:
            params = DetectorParams.preset(preset)  # type: ignore[arg-type]
            ref = [r.polygon for r in maps_to_regions(ref_maps, 0, meta, params)]
            cand = [r.polygon for r in maps_to_regions(fast_maps, 0, meta, params)]
            totals[preset] += box_agreement(ref, cand, iou=0.9)
    for preset, total in totals.items():
        assert total.reference_recall >= 0.98, (preset, total)
        assert total.candidate_recall >= 0.98, (preset, total)
