"""Our CRAFT is CRAFT: maps and boxes against the official code's outputs (fp32)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from craft.params import DetectorParams
from craft.postprocess import detect_quads
from craft.predictor import maps_to_regions
from craft.preprocess import prepare_batch
from craft.reference import detect_quads_reference
from craft.zoo import craft_predictor
from tests.craft.golden import CONFIGS, IMAGES, golden_json, golden_quads, match_quads

MAP_TOL = 2e-3  # golden maps are float16


@pytest.fixture(scope="module", params=["torch", "onnxruntime"])
def backend_maps(request: pytest.FixtureRequest, golden_dir: Path) -> tuple[str, dict]:
    """Score maps of every golden image from one backend, computed once per module."""
    predictor = craft_predictor(backend=request.param, device="cpu", precision="fp32")
    out = {}
    for name in IMAGES:
        image = cv2.imread(str(golden_dir / f"{name}.png"), cv2.IMREAD_COLOR)
        batch, metas = prepare_batch([image], 1280, 1.5)
        maps = predictor.backend.run(batch, with_refiner=True)
        out[name] = (image, metas[0], maps)
    return request.param, out


@pytest.mark.parametrize("image", IMAGES)
def test_preprocessing_matches_reference_sizes(golden_dir: Path, image: str) -> None:
    info = golden_json(golden_dir)["images"][image]
    bgr = cv2.imread(str(golden_dir / f"{image}.png"), cv2.IMREAD_COLOR)
    _, [meta] = prepare_batch([bgr], 1280, 1.5)
    assert (meta.height, meta.width) == (info["height"], info["width"])
    assert list(meta.padded_hw) == info["resized_hw"]
    assert meta.ratio == pytest.approx(info["ratio_w"], rel=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("image", IMAGES)
def test_score_maps_match_golden(
    backend_maps: tuple[str, dict], golden_dir: Path, image: str
) -> None:
    _, maps_by_image = backend_maps
    _, _, maps = maps_by_image[image]
    golden = np.load(golden_dir / f"{image}.maps.npz")
    for key, ours in (("score_text", maps.text[0]), ("score_link", maps.link[0]),
                      ("refined_link", maps.refined_link[0])):  # fmt: skip
        ref = golden[key].astype(np.float32)
        assert ours.shape == ref.shape, key
        assert float(np.abs(ours - ref).max()) <= MAP_TOL, key


@pytest.mark.slow
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("image", IMAGES)
def test_boxes_match_golden(
    backend_maps: tuple[str, dict], golden_dir: Path, image: str, config: str
) -> None:
    _, maps_by_image = backend_maps
    _, meta, maps = maps_by_image[image]
    params = DetectorParams(**CONFIGS[config], size_threshold=0)
    regions = maps_to_regions(maps, 0, meta, params)
    found = np.asarray([r.polygon for r in regions], dtype=np.float32).reshape(-1, 4, 2)
    expected = golden_quads(golden_dir, image, config)
    assert len(found) == len(expected)
    ious = match_quads(found, expected)
    assert min(ious) >= 0.95, sorted(ious)[:5]


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("image", IMAGES)
def test_fast_postprocess_equals_reference_loop(golden_dir: Path, image: str, config: str) -> None:
    """The per-window post-processing gives the reference's boxes exactly, in the same order."""
    maps = np.load(golden_dir / f"{image}.maps.npz")
    c = CONFIGS[config]
    text = maps["score_text"].astype(np.float32)
    link = maps["refined_link" if c["with_refiner"] else "score_link"].astype(np.float32)
    args = (c["score_threshold"], c["link_threshold"], c["text_threshold"])
    fast = detect_quads(text, link, *args)
    ref = detect_quads_reference(text, link, *args)
    np.testing.assert_array_equal(fast.quads, ref.quads)
    np.testing.assert_allclose(fast.scores, ref.scores, rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_predictor_end_to_end_matches_golden(golden_dir: Path, backend: str) -> None:
    """The public API (BGR page in, regions out) reproduces the line-level reference boxes."""
    bgr = cv2.imread(str(golden_dir / "small.png"), cv2.IMREAD_COLOR)
    predictor = craft_predictor("lines", backend=backend, device="cpu")
    [result] = predictor([bgr])
    found = np.asarray([r.polygon for r in result.regions], dtype=np.float32).reshape(-1, 4, 2)
    expected = golden_quads(golden_dir, "small", "craft_default_refiner")
    assert len(found) == len(expected)
    assert min(match_quads(found, expected)) >= 0.95
    assert (result.width, result.height) == (860, 390)
    assert result.timings.forward > 0 and result.timings.refine > 0
