"""Experiment: box agreement with fp32 of each lever ``precision="fast"`` was built from.

Reproduces the agreement table in docs/performance.md: on the golden pages and every page of
the bundled PDF at 150 dpi, for the ``words`` and ``default`` presets, the share of fp32's
boxes matched one to one by the variant's at IoU >= 0.9 and the share the other way, plus the
variant's forward + refine seconds over all pages. Variants: bf16 (torch autocast), blank
skipping at several halos (fp32 and bf16), the int8 LinkRefiner of ``craft.int8_refiner``
alone and with each of those (``int8ref``), and all of CRAFT in ORT static int8 (``--int8``:
quantised here with ``bench/exp_int8.py``'s recipe, full-range weights, since VNNI CPUs do not
saturate; about a minute per variant; ``bench/exp_int8_mixed.py`` quantises parts of it).

    python bench/exp_fast.py [--halos 64,128] [--int8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_detector import GOLDEN, IMAGES

from craft.agreement import Agreement, box_agreement
from craft.backends import InferenceBackend
from craft.blank import content_window, paste
from craft.onnx_backend import OnnxBackend
from craft.params import DetectorParams
from craft.predictor import maps_to_regions
from craft.preprocess import stack_pages
from craft.zoo import _engine, ensure_int8_refiner, ensure_onnx, resolve_weights
from ingest import IngestOptions, Page, iter_pages, open_document

PDF = Path(__file__).resolve().parents[1] / "samples" / "natnotes.pdf"
PRESETS = ("words", "default")


def pages() -> list[np.ndarray]:
    out = [np.asarray(cv2.imread(str(GOLDEN / f"{n}.png"), cv2.IMREAD_COLOR)) for n in IMAGES]
    options = IngestOptions(dpi=150)
    for page in iter_pages(open_document(PDF, options), options):
        assert isinstance(page, Page), page
        out.append(page.image)
    return out


def boxes(engine: InferenceBackend, images: list[np.ndarray], halo: int | None) -> tuple:
    """Per preset, per page: boxes; and forward + refine seconds over all pages."""
    out: dict[str, list] = {p: [] for p in PRESETS}
    seconds = 0.0
    area = []
    for image in images:
        pixels, metas = stack_pages([image], 1280, 1.5)
        window = content_window(pixels[0], metas[0].resized_hw, halo) if halo else None
        if window is None:
            maps = engine.run_pixels(pixels, True)
            text, link, refined = maps.text, maps.link, maps.refined_link
        else:
            area.append(window.area / (pixels.shape[1] * pixels.shape[2]))
            crop = pixels[:, window.y0 : window.y1, window.x0 : window.x1]
            maps = engine.run_pixels(np.ascontiguousarray(crop), True)
            hw = pixels.shape[1:3]
            text, link = paste(maps.text, window, hw), paste(maps.link, window, hw)
            refined = paste(maps.refined_link, window, hw)
        seconds += maps.forward_s + maps.refine_s
        full = type(maps)(text, link, refined, 0.0, 0.0)
        for preset in PRESETS:
            params = DetectorParams.preset(preset)  # type: ignore[arg-type]
            out[preset].append([r.polygon for r in maps_to_regions(full, 0, metas[0], params)])
    return out, seconds, area


def agreement_text(reference: dict[str, list], found: dict[str, list]) -> str:
    """Per preset, the share of fp32's boxes matched at IoU >= 0.9 and the share the other way."""
    text = ""
    for preset in PRESETS:
        total = Agreement(0, 0, 0)
        for ref, cand in zip(reference[preset], found[preset], strict=True):
            total += box_agreement(ref, cand, iou=0.9)
        text += (
            f"; {preset}: {total.reference_recall:.2%} of {total.reference} fp32 boxes, "
            f"{total.candidate_recall:.2%} of {total.candidate}"
        )
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--halos", default="64,128")
    ap.add_argument("--int8", action="store_true")
    args = ap.parse_args()
    craft_w, refiner_w = resolve_weights("craft_mlt_25k"), resolve_weights("craft_refiner_CTW1500")
    craft, refiner = ensure_onnx(craft_w, refiner_w)
    images = pages()
    fp32 = OnnxBackend(craft, refiner)
    bf16 = _engine("torch", "cpu", "bf16", craft_w, refiner_w)
    int8ref = ensure_int8_refiner(craft_w, refiner_w)
    fp32_int8ref = OnnxBackend(craft, int8ref)
    bf16_int8ref = _engine("torch", "cpu", "bf16", craft_w, refiner_w, True)
    reference, seconds, _ = boxes(fp32, images, None)
    print(f"fp32 (onnxruntime): {seconds:.1f} s forward + refine for {len(images)} pages")
    variants: list[tuple[str, InferenceBackend, int | None]] = [
        ("bf16", bf16, None),
        ("fp32+int8ref", fp32_int8ref, None),
        ("bf16+int8ref", bf16_int8ref, None),
    ]
    for halo in (int(h) for h in args.halos.split(",")):
        variants += [(f"fp32+crop{halo}", fp32, halo), (f"bf16+crop{halo}", bf16, halo)]
        variants += [(f"fp32+int8ref+crop{halo}", fp32_int8ref, halo)]
        variants += [(f"bf16+int8ref+crop{halo}", bf16_int8ref, halo)]
    tmp = tempfile.TemporaryDirectory()
    if args.int8:
        from exp_int8 import quantise

        c8, r8 = quantise(craft, refiner, Path(tmp.name), reduce_range=False)
        variants.append(("int8", OnnxBackend(c8, r8), None))
    for label, engine, variant_halo in variants:
        found, seconds, area = boxes(engine, images, variant_halo)
        line = f"{label:22s} {seconds:6.1f} s"
        if area:
            line += f"; window {min(area):.2f}-{max(area):.2f} of the page"
        line += agreement_text(reference, found)
        print(line, flush=True)
    tmp.cleanup()


if __name__ == "__main__":
    main()
