"""Experiment: ONNX Runtime int8 (static, QDQ) CRAFT + LinkRefiner against the fp32 default.

Not part of the product: this reproduces the "int8" measurement in docs/performance.md.
Both graphs are quantised with ORT's own tooling (per-channel int8 weights, uint8
activations, min/max calibration on four pages of the bundled real PDF, not on the golden
images it is scored on), once with full-range and once with 7-bit (``reduce_range``)
weights, which avoids the u8 x s8 saturation of CPUs without VNNI. For each golden image it
prints the best of two forward + refine times, the maps' deviation from golden and, per golden
configuration, boxes found / expected and the share of golden boxes matched at IoU >= 0.95.

    python bench/exp_int8.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_detector import GOLDEN

from craft.int8_refiner import CalibrationFeeds
from craft.onnx_backend import OnnxBackend
from craft.params import DetectorParams
from craft.predictor import maps_to_regions
from craft.preprocess import prepare_batch
from craft.zoo import ensure_onnx, resolve_weights
from ingest import IngestOptions, iter_pages, open_document
from tests.craft.golden import CONFIGS, IMAGES, golden_quads, map_deviations, match_quads

CALIBRATION_WIDTH = 800  # calibration keeps every activation: a 1280 px page needs ~10 GB


def quantise(craft: Path, refiner: Path, folder: Path, reduce_range: bool) -> tuple[Path, Path]:
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    options = IngestOptions(dpi=100)
    document = open_document(GOLDEN / "natnotes.pdf", options)
    pages = [p.image for p in iter_pages(document, options) if hasattr(p, "image")][:4]
    images = [prepare_batch([p], CALIBRATION_WIDTH, 1.5)[0] for p in pages]
    session = ort.InferenceSession(str(craft), providers=["CPUExecutionProvider"])
    refiner_feeds = []
    for batch in images:
        y, feature = session.run(None, {"image": batch})
        refiner_feeds.append({"y": y, "feature": feature})
    feeds: dict[str, list[dict[str, Any]]] = {
        "craft": [{"image": b} for b in images],
        "refiner": refiner_feeds,
    }
    out = []
    for name, src in (("craft", craft), ("refiner", refiner)):
        pre = folder / f"{name}.pre.onnx"
        dest = folder / f"{name}.int8{'-rr' if reduce_range else ''}.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre), str(dest), CalibrationFeeds(feeds[name]), quant_format=QuantFormat.QDQ,
            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax, reduce_range=reduce_range,
        )  # fmt: skip
        out.append(dest)
    return out[0], out[1]


def score(label: str, engine: OnnxBackend) -> None:
    for image in IMAGES:
        bgr = cv2.imread(str(GOLDEN / f"{image}.png"))
        batch, metas = prepare_batch([bgr], 1280, 1.5)
        times = []
        for _ in range(2):
            maps = engine.run(batch, True)
            times.append(maps.forward_s + maps.refine_s)
        dev = map_deviations(GOLDEN, image, maps.text[0], maps.link[0], maps.refined_link[0])
        line = f"{label:8s} {image:8s} {min(times):5.2f} s; dev " + "/".join(
            f"{d:.1e}" for d in dev
        )
        for config, overrides in CONFIGS.items():
            params = DetectorParams(**overrides, size_threshold=0)
            regions = maps_to_regions(maps, 0, metas[0], params)
            found = np.asarray([r.polygon for r in regions], np.float32).reshape(-1, 4, 2)
            expected = golden_quads(GOLDEN, image, config)
            matched = np.asarray(match_quads(found, expected)) >= 0.95
            line += f"; {config} {len(found)}/{len(expected)} {matched.mean():.0%}"
        print(line, flush=True)


def main() -> None:
    craft, refiner = ensure_onnx(
        resolve_weights("craft_mlt_25k"), resolve_weights("craft_refiner_CTW1500")
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        variants = {"fp32": (craft, refiner)}
        for reduce_range in (False, True):
            t = time.perf_counter()
            pair = quantise(craft, refiner, folder, reduce_range)
            label = "int8-rr" if reduce_range else "int8"
            print(f"{label}: quantised in {time.perf_counter() - t:.0f} s", flush=True)
            variants[label] = pair
        print("variant  image    fwd+refine; max dev text/link/refined; per config: "
              "boxes found/golden, golden boxes matched at IoU >= 0.95")  # fmt: skip
        for label, (c, r) in variants.items():
            score(label, OnnxBackend(c, r))


if __name__ == "__main__":
    main()
