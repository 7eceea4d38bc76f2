"""Experiment: the int8 LinkRefiner's calibration pages, width and fp32 nodes, against fp32.

Not part of the product: this reproduces the int8 LinkRefiner table in docs/performance.md.
CRAFT runs once in fp32 (ONNX Runtime) on the golden pages and every page of the bundled PDF
at 150 dpi; each variant of ``craft.int8_refiner``'s recipe is quantised and run on those
maps, and its ``default``-preset boxes are matched with the fp32 refiner's at IoU >= 0.9.

    python bench/exp_int8_refiner.py [--widths 640,960] [--sets samples,scans]
                                     [--fp32 none,heads,1x1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exp_fast import pages
from scans import make_scans

from craft.agreement import Agreement, box_agreement
from craft.backends import ScoreMaps
from craft.int8_refiner import quantise_refiner
from craft.onnx_backend import OnnxRefiner, ort_session
from craft.params import DetectorParams
from craft.predictor import maps_to_regions
from craft.preprocess import normalise, stack_pages
from craft.zoo import calibration_pages, ensure_onnx, resolve_weights

SUM = ("/Add", "/Add_1", "/Add_2")
FP32_CHOICES = {
    "none": (),
    "heads": (*(f"/aspp{i}/aspp{i}.6/Conv" for i in range(1, 5)), *SUM),
    "1x1": (*(f"/aspp{i}/aspp{i}.{j}/Conv" for i in range(1, 5) for j in (3, 6)), *SUM),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", default="640,960")
    ap.add_argument("--sets", default="samples,scans")
    ap.add_argument("--fp32", default="none,heads,1x1")
    args = ap.parse_args()
    craft_onnx, refiner_onnx = ensure_onnx(
        resolve_weights("craft_mlt_25k"), resolve_weights("craft_refiner_CTW1500")
    )
    craft, refiner = ort_session(craft_onnx), ort_session(refiner_onnx)
    params = DetectorParams.preset("default")
    scored = []
    for image in pages():
        pixels, [meta] = stack_pages([image], 1280, 1.5)
        y, feature = craft.run(None, {"image": normalise(pixels)})
        refined = refiner.run(None, {"y": y, "feature": feature})[0][..., 0]
        maps = ScoreMaps(y[..., 0], y[..., 1], refined, 0.0, 0.0)
        scored.append(
            (y, feature, meta, [r.polygon for r in maps_to_regions(maps, 0, meta, params)])
        )
    tmp = Path(tempfile.mkdtemp())
    scans = [np.asarray(cv2.imread(str(p), cv2.IMREAD_COLOR)) for p in make_scans(tmp / "s", 8)]
    sets = {"samples": calibration_pages(), "scans": scans}
    for width in (int(w) for w in args.widths.split(",")):
        for fp32 in args.fp32.split(","):
            for name in args.sets.split(","):
                t = time.perf_counter()
                dest = tmp / f"refiner-{width}-{fp32}-{name}.onnx"
                nodes = FP32_CHOICES[fp32]
                quantise_refiner(craft_onnx, refiner_onnx, dest, sets[name], width, nodes)
                quantised_s = time.perf_counter() - t
                int8 = OnnxRefiner(dest)
                y, feature = scored[0][0], scored[0][1]
                int8(y, feature)
                t = time.perf_counter()
                int8(y, feature)
                refine_s = time.perf_counter() - t
                total = Agreement(0, 0, 0)
                for y, feature, meta, reference in scored:
                    maps = ScoreMaps(y[..., 0], y[..., 1], int8(y, feature), 0.0, 0.0)
                    found = [r.polygon for r in maps_to_regions(maps, 0, meta, params)]
                    total += box_agreement(reference, found, iou=0.9)
                print(
                    f"fp32 {fp32:5s} width {width} {name:8s} ({len(sets[name])} pages, "
                    f"quantised in {quantised_s:.0f} s): default {total.reference_recall:.2%} / "
                    f"{total.candidate_recall:.2%} of {total.reference}; refine of the first "
                    f"page {refine_s:.2f} s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
