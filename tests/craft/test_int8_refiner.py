"""The int8 LinkRefiner of ``precision="fast"``: where it is cached, how it is run, its maps.

Its boxes are judged with the rest of the fast path in ``test_fast.py``; here, the pieces:
the cached graph, the ONNX Runtime refiner another engine calls, and the torch engine that
calls it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from craft.int8_refiner import int8_refiner_path, quantise_refiner
from craft.onnx_backend import OnnxBackend, OnnxRefiner
from craft.preprocess import prepare_batch
from craft.weights_store import resolve_weights
from craft.zoo import CRAFT_WEIGHTS, REFINER_WEIGHTS, ensure_int8_refiner, ensure_onnx


@pytest.fixture(scope="module")
def graphs() -> tuple[Path, Path, Path]:
    """fp32 CRAFT, fp32 refiner and int8 refiner graphs (quantised once per machine)."""
    craft_w, refiner_w = resolve_weights(CRAFT_WEIGHTS), resolve_weights(REFINER_WEIGHTS)
    craft, refiner = ensure_onnx(craft_w, refiner_w)
    return craft, refiner, ensure_int8_refiner(craft_w, refiner_w)


def test_the_int8_graph_is_cached_beside_the_fp32_one(graphs: tuple[Path, Path, Path]) -> None:
    _, refiner, int8 = graphs
    assert int8 == int8_refiner_path(refiner) and int8.parent == refiner.parent
    assert int8.is_file() and int8.stat().st_size < refiner.stat().st_size / 2
    assert (
        ensure_int8_refiner(resolve_weights(CRAFT_WEIGHTS), resolve_weights(REFINER_WEIGHTS))
        == int8
    )


def test_quantising_needs_calibration_pages(
    tmp_path: Path, graphs: tuple[Path, Path, Path]
) -> None:
    craft, refiner, _ = graphs
    with pytest.raises(ValueError, match="calibration page"):
        quantise_refiner(craft, refiner, tmp_path / "r.onnx", [])


def test_int8_refined_links_stay_close_to_fp32(
    golden_dir: Path, graphs: tuple[Path, Path, Path]
) -> None:
    """On every CPU: ``fast`` runs the int8 refiner only with VNNI, but the graph is built
    (``make setup``) and checked wherever the suite runs; it held on an AVX2-only Zen 3 too,
    and a skip here left the AVX2 CI red."""
    craft, refiner, int8 = graphs
    page = np.asarray(cv2.imread(str(golden_dir / "small.png"), cv2.IMREAD_COLOR))
    batch, _ = prepare_batch([page], 1280, 1.5)
    fp32 = OnnxBackend(craft, refiner).run(batch, True)
    quantised = OnnxBackend(craft, int8).run(batch, True)
    assert fp32.refined_link is not None and quantised.refined_link is not None
    np.testing.assert_array_equal(fp32.text, quantised.text)  # CRAFT itself stays fp32
    diff = np.abs(fp32.refined_link - quantised.refined_link)
    assert diff.mean() < 0.01 and diff.max() < 0.3, (diff.mean(), diff.max())
    # Thresholded as post-processing does (link_threshold 0.4), nearly every pixel agrees.
    assert ((fp32.refined_link > 0.4) != (quantised.refined_link > 0.4)).mean() < 0.002


def test_the_torch_engine_can_run_the_refiner_in_onnxruntime(
    golden_dir: Path, graphs: tuple[Path, Path, Path]
) -> None:
    from craft.torch_backend import TorchBackend
    from craft.zoo import load_craft, load_refiner

    _, refiner, _ = graphs
    craft_w, refiner_w = resolve_weights(CRAFT_WEIGHTS), resolve_weights(REFINER_WEIGHTS)
    page = np.asarray(cv2.imread(str(golden_dir / "small.png"), cv2.IMREAD_COLOR))
    batch, _ = prepare_batch([page], 1280, 1.5)
    external = TorchBackend(load_craft(craft_w), None, external_refiner=OnnxRefiner(refiner))
    assert external.refiner is None
    inside = TorchBackend(load_craft(craft_w), load_refiner(refiner_w))
    a, b = external.run(batch, True), inside.run(batch, True)
    assert a.refined_link is not None and b.refined_link is not None
    assert a.refined_link.shape == b.refined_link.shape == a.text.shape
    np.testing.assert_allclose(a.refined_link, b.refined_link, atol=1e-3)
    assert a.refine_s > 0
    assert external.run(batch, False).refined_link is None
    with pytest.raises(ValueError, match="without the LinkRefiner"):
        TorchBackend(load_craft(craft_w), None).run(batch, True)
