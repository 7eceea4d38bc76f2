"""Experiment: which parts of CRAFT + LinkRefiner can run int8 and keep fp32's boxes.

Not part of the product: this reproduces the int8 sensitivity table in docs/performance.md.
ONNX Runtime static QDQ quantisation (per-channel int8 weights, uint8 activations, the
recipe ORT recommends for VNNI CPUs), calibrated once per calibration method on pages that
are not scored (``--calibration``), then quantised again for each variant with some nodes
kept in fp32. Each variant is scored like ``bench/exp_fast.py``: box agreement with ORT fp32
at IoU >= 0.9 on the golden pages and every page of the bundled PDF at 150 dpi, for the
``words`` and ``default`` presets, plus forward + refine seconds over those pages.

    python bench/exp_int8_mixed.py [--methods minmax,percentile] [--variants all,...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exp_fast import agreement_text, boxes, pages

from craft.int8_refiner import CalibrationFeeds
from craft.onnx_backend import OnnxBackend
from craft.preprocess import prepare_batch
from craft.zoo import ensure_onnx, resolve_weights

CALIBRATION_WIDTH = 800  # calibration keeps every activation: a 1280 px page needs ~10 GB

# Conv nodes of the exported CRAFT graph, by the part of the network they belong to.
BACKBONE = {
    "conv1": ["/basenet/slice1/slice1.0/Conv", "/basenet/slice1/slice1.3/Conv"],
    "conv2": ["/basenet/slice1/slice1.7/Conv", "/basenet/slice1/slice1.10/Conv"],
    "conv3": [
        "/basenet/slice2/slice2.14/Conv",
        "/basenet/slice2/slice2.17/Conv",
        "/basenet/slice3/slice3.20/Conv",
    ],
    "conv4": [
        "/basenet/slice3/slice3.24/Conv",
        "/basenet/slice3/slice3.27/Conv",
        "/basenet/slice4/slice4.30/Conv",
    ],
    "conv5": [
        "/basenet/slice4/slice4.34/Conv",
        "/basenet/slice4/slice4.37/Conv",
        "/basenet/slice5/slice5.1/Conv",
        "/basenet/slice5/slice5.2/Conv",
    ],
}
DECODER = {
    "up1": ["/upconv1/conv/conv.0/Conv", "/upconv1/conv/conv.3/Conv"],
    "up2": ["/upconv2/conv/conv.0/Conv", "/upconv2/conv/conv.3/Conv"],
    "up3": ["/upconv3/conv/conv.0/Conv", "/upconv3/conv/conv.3/Conv"],
    "up4": ["/upconv4/conv/conv.0/Conv", "/upconv4/conv/conv.3/Conv"],
    "cls": [f"/conv_cls/conv_cls.{i}/Conv" for i in (0, 2, 4, 6, 8)],
}
GROUPS = BACKBONE | DECODER


def variants() -> dict[str, tuple[list[str], bool]]:
    """Variant name -> (CRAFT groups quantised, refiner quantised)."""
    everything = list(GROUPS)
    out: dict[str, tuple[list[str], bool]] = {
        "all": (everything, True),
        "craft": (everything, False),
        "backbone": (list(BACKBONE), False),
        "conv1-4": (["conv1", "conv2", "conv3", "conv4"], False),
        "conv2-5": (["conv2", "conv3", "conv4", "conv5"], False),
        "conv1-3": (["conv1", "conv2", "conv3"], False),
        "refiner": ([], True),
    }
    for group in GROUPS:  # one group alone: that group's own cost in agreement
        out[f"only-{group}"] = ([group], False)
    return out


def calibration_feeds(craft: Path, which: str) -> dict[str, list[dict[str, np.ndarray]]]:
    import cv2
    import onnxruntime as ort

    from ingest import IngestOptions, Page, iter_pages, open_document

    root = Path(__file__).resolve().parents[1]
    images: list[np.ndarray] = []
    if which == "natnotes":  # the earlier recipe: the PDF's first four pages at 100 dpi
        options = IngestOptions(dpi=100)
        document = open_document(root / "samples" / "natnotes.pdf", options)
        images = [p.image for p in iter_pages(document, options) if isinstance(p, Page)][:4]
    else:  # pages that are not scored: the bundled memo and the scan crops of bench/scans.py
        images = [np.asarray(cv2.imread(str(root / "samples" / "memo.jpg"), cv2.IMREAD_COLOR))]
        from scans import make_scans

        with tempfile.TemporaryDirectory() as tmp:
            for path in make_scans(Path(tmp), 6):
                images.append(np.asarray(cv2.imread(str(path), cv2.IMREAD_COLOR)))
    # One shape for all (padded like a batch): the histogram calibrators need equal shapes.
    stacked = prepare_batch(images, CALIBRATION_WIDTH, 1.5)[0]
    batches = [stacked[i : i + 1] for i in range(len(images))]
    session = ort.InferenceSession(str(craft), providers=["CPUExecutionProvider"])
    refiner = []
    for batch in batches:
        y, feature = session.run(None, {"image": batch})
        refiner.append({"y": y, "feature": feature})
    return {"craft": [{"image": b} for b in batches], "refiner": refiner}


def quantise(
    src: Path,
    dest: Path,
    feeds: list[dict[str, np.ndarray]],
    cache: Path,
    method: str,
    exclude: list[str],
) -> Path:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    calib = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }[method]
    extra = {"CalibPercentile": 99.999} if method == "percentile" else {}
    quantize_static(
        str(src), str(dest), CalibrationFeeds(feeds), quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        calibrate_method=calib, nodes_to_exclude=exclude, extra_options=extra,
        calibration_cache_path=cache,
    )  # fmt: skip
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="minmax")
    ap.add_argument("--calibration", default="scans", choices=("scans", "natnotes"))
    ap.add_argument("--variants", default=",".join(variants()))
    args = ap.parse_args()
    from onnxruntime.quantization.shape_inference import quant_pre_process

    craft, refiner = ensure_onnx(
        resolve_weights("craft_mlt_25k"), resolve_weights("craft_refiner_CTW1500")
    )
    images = pages()
    reference, seconds, _ = boxes(OnnxBackend(craft, refiner), images, None)
    print(f"fp32 (onnxruntime): {seconds:.1f} s forward + refine for {len(images)} pages")
    feeds = calibration_feeds(craft, args.calibration)
    table = variants()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pre = {}
        for name, src in (("craft", craft), ("refiner", refiner)):
            pre[name] = folder / f"{name}.pre.onnx"
            quant_pre_process(str(src), str(pre[name]), skip_symbolic_shape=True)
        for method in args.methods.split(","):
            refiner8 = quantise(
                pre["refiner"], folder / f"refiner.{method}.onnx", feeds["refiner"],
                folder / f"refiner.{method}.json", method, [],
            )  # fmt: skip
            for name in args.variants.split(","):
                groups, with_refiner8 = table[name]
                exclude = [n for g, nodes in GROUPS.items() if g not in groups for n in nodes]
                t = time.perf_counter()
                craft8 = craft
                if groups:
                    craft8 = quantise(
                        pre["craft"], folder / f"craft.{method}.{name}.onnx", feeds["craft"],
                        folder / f"craft.{method}.json", method, exclude,
                    )  # fmt: skip
                quantised_s = time.perf_counter() - t
                engine = OnnxBackend(craft8, refiner8 if with_refiner8 else refiner)
                found, seconds, _ = boxes(engine, images, None)
                line = f"{method:10s} {name:12s} {seconds:6.1f} s (quantised {quantised_s:.0f} s)"
                print(line + agreement_text(reference, found), flush=True)


if __name__ == "__main__":
    main()
