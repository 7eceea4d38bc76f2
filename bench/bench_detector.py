"""Detector benchmark: the reference-equivalent path against ocrflow's default and fast, same pages.

Each path runs in its own process so whole-process time (imports, weight loading, ONNX
session start) and peak RSS are measured honestly. Prints seconds per page per stage and the
ratio. Not a test: numbers vary with the machine; read them, don't assert them.

    python bench/bench_detector.py [--pages N] [--repeat R] [--orders grouped,mixed]
                                   [--paths reference,default,fast,...] [--device cpu|cuda]
                                   [--pages-per-call K] [--overlap auto|on|off]

Two page orders, because the ONNX engine keeps warm memory while the page size stays the same:
``grouped`` runs each golden page ``repeat`` times in a row (the pages of one document share a
size: the common case), ``mixed`` cycles through the three sizes (every page a new size: the
worst case for that engine).

``fast`` is ``precision="fast"``: the path it picks on this machine (e.g. ``bf16/int8+crop``)
is printed beside its figures.

``--device cuda`` runs the same paths on the GPU, after one untimed warm-up batch (CUDA
context, cuDNN handles; whole-process time still counts it). There the reference is the
official code's computation under torch's defaults: contiguous fp32, batch 1, with TF32
convolutions (``reference-tf32``), next to ``reference`` with TF32 off (ocrflow's fp32 parity
mode). Try e.g. ``--paths reference-tf32,reference,default,torch-fp16,torch-fp16-b4 --repeat 8
--pages-per-call 8``: with several batches per call, CUDA post-processes one batch while the
next runs (``--overlap off`` to compare).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(os.environ.get("OCRFLOW_GOLDEN_DIR", REPO.parent / "shared" / "golden"))
IMAGES = ("page", "rotated", "small")

# name -> (description, detector overrides)
PATHS: dict[str, tuple[str, dict]] = {
    "reference": ("torch fp32, batch 1, no channels_last, reference per-component loop",
                  {"backend": "torch", "precision": "fp32"}),
    "default": ("ocrflow default: auto backend (onnxruntime on CPU), windowed post-processing",
                {}),
    "fast": ("precision 'fast': the fastest path whose boxes agree with fp32, picked per machine",
             {"precision": "fast"}),
    "fast-onnx": ("precision 'fast' on onnxruntime: fp32 CRAFT + blank skipping (+ the int8 "
                  "refiner with VNNI)",
                  {"precision": "fast", "backend": "onnxruntime"}),
    "torch-fp32": ("torch fp32 with windowed post-processing", {"backend": "torch"}),
    "torch-bf16": ("torch bf16 autocast + channels_last (no strict parity)",
                   {"backend": "torch", "precision": "bf16"}),
    "torch-fp16": ("torch fp16 autocast + channels_last (no strict parity)",
                   {"backend": "torch", "precision": "fp16"}),
    "torch-fp16-b4": ("torch fp16 autocast + channels_last, 4 pages per forward",
                      {"backend": "torch", "precision": "fp16", "batch_size": 4}),
    "reference-tf32": ("as reference, with torch's default TF32 convolutions (CUDA)",
                       {"backend": "torch", "precision": "fp32"}),
}  # fmt: skip


def load_pages(n: int, repeat: int, order: str) -> list:
    """``n`` golden pages, each seen ``repeat`` times, in the given order."""
    import cv2

    images = [cv2.imread(str(GOLDEN / f"{name}.png"), cv2.IMREAD_COLOR) for name in IMAGES]
    pages = [images[i % len(images)] for i in range(n)]
    if order == "grouped":
        return [page for page in pages for _ in range(repeat)]
    return [page for _ in range(repeat) for page in pages]


def run_path(
    name: str,
    n_pages: int,
    repeat: int,
    order: str = "mixed",
    device: str = "cpu",
    per_call: int = 0,
    overlap: str = "auto",
) -> dict:
    """Inside the child process: build the predictor, run the pages, report stage seconds."""
    t_start = time.perf_counter()
    from craft.zoo import craft_predictor

    overrides = PATHS[name][1]
    predictor = craft_predictor("default", device=device, **overrides)
    if name.startswith("reference"):
        _use_reference_postprocessing(predictor)
        if device != "cpu":
            _use_reference_engine(predictor, tf32=name == "reference-tf32")
        _use_reference_normalisation(predictor)
    pages = load_pages(n_pages, repeat, order)
    if overlap != "auto":
        predictor.overlap = overlap == "on"
    if name.startswith("reference"):
        predictor.overlap = False  # the reference runs its stages one after another
    per_call = per_call or predictor.params.batch_size
    chunks = [pages[i : i + per_call] for i in range(0, len(pages), per_call)]
    if device != "cpu":
        predictor(chunks[0])
    t_ready = time.perf_counter()
    stages = {"preprocess": 0.0, "forward": 0.0, "refine": 0.0, "postprocess": 0.0}
    regions = 0
    t0 = time.perf_counter()
    for chunk in chunks:
        for result in predictor(chunk):
            regions += len(result.regions)
            for k in stages:
                stages[k] += getattr(result.timings, k)
    elapsed = time.perf_counter() - t0
    count = n_pages * repeat
    return {
        "device": predictor.info.device,
        "path": name,
        "order": order,
        "backend": predictor.info.backend,
        "precision": predictor.info.precision,
        "pages": count,
        "regions": regions,
        "startup_s": t_ready - t_start,
        "s_per_page": elapsed / count,
        "stages_per_page": {k: v / count for k, v in stages.items()},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mb": _peak_gpu_mb(device),
    }


def _peak_gpu_mb(device: str) -> float | None:
    if device == "cpu":
        return None
    import torch

    return torch.cuda.max_memory_allocated(device) / 2**20


def _use_reference_normalisation(predictor) -> None:
    """The reference's imgproc.normalizeMeanVariance on the CPU, float32 NCHW to the engine."""
    from dataclasses import replace

    import numpy as np

    from craft.preprocess import IMAGENET_MEAN, IMAGENET_STD

    backend = predictor.backend

    def run_pixels(pixels, with_refiner):
        t0 = time.perf_counter()
        x = pixels.astype(np.float32)
        x -= IMAGENET_MEAN
        x /= IMAGENET_STD
        batch = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        t_norm = time.perf_counter() - t0
        return replace(backend.run(batch, with_refiner), preprocess_s=t_norm)

    backend.run_pixels = run_pixels


def _use_reference_engine(predictor, tf32: bool) -> None:
    """On CUDA: contiguous fp32 modules, TF32 as asked (the official code runs with it on)."""
    import torch

    from craft.torch_backend import TorchBackend

    old = predictor.backend
    contiguous = torch.contiguous_format
    predictor.backend = TorchBackend(
        old.craft.to(memory_format=contiguous), old.refiner.to(memory_format=contiguous),
        device=old.device, precision="fp32", channels_last=False, allow_tf32=tf32,
    )  # fmt: skip


def _use_reference_postprocessing(predictor) -> None:
    """Swap in the reference's whole-map loop so the path is reference-equivalent."""
    import craft.predictor as module
    from craft.reference import detect_quads_reference

    def reference_quads(textmap, linkmap, text_threshold, link_threshold, low_text):
        return detect_quads_reference(textmap, linkmap, text_threshold, link_threshold, low_text)

    module.detect_quads = reference_quads  # type: ignore[assignment]


def _run_child(name: str, args: argparse.Namespace, order: str) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", name, "--pages", str(args.pages),
         "--repeat", str(args.repeat), "--orders", order, "--device", args.device,
         "--pages-per-call", str(args.pages_per_call), "--overlap", args.overlap],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_s"] = time.perf_counter() - t0
    st = res["stages_per_page"]
    print(f"{name:11s} {PATHS[name][0]}")
    print(
        f"            {res['s_per_page']:.3f} s/page = pre {st['preprocess']:.3f} + fwd "
        f"{st['forward']:.3f} + refine {st['refine']:.3f} + post {st['postprocess']:.3f}; "
        f"whole process {res['process_s']:.1f} s for {res['pages']} pages (start-up "
        f"{res['startup_s']:.1f} s); peak RSS {res['peak_rss_mb']:.0f} MB; "
        f"{res['regions']} regions; {res['backend']} {res['precision']} on {res['device']}"
        + (f", peak GPU memory {res['peak_gpu_mb']:.0f} MB" if res["peak_gpu_mb"] else "")
    )
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--orders", default="grouped,mixed")
    ap.add_argument("--paths", default="reference,default,fast")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    ap.add_argument(
        "--pages-per-call",
        type=int,
        default=0,
        help="pages per predictor call (default: the path's batch size)",
    )
    ap.add_argument(
        "--overlap",
        choices=("auto", "on", "off"),
        default="auto",
        help="post-process one batch while the next runs (auto: on for CUDA)",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        res = run_path(
            args.child, args.pages, args.repeat, args.orders, args.device,
            args.pages_per_call, args.overlap,
        )  # fmt: skip
        print(json.dumps(res))
        return
    for order in args.orders.split(","):
        print(f"== {order} order: {args.pages} golden pages x {args.repeat} on {args.device}")
        results = [_run_child(name, args, order) for name in args.paths.split(",")]
        base = results[0]
        pairs = [(base, res) for res in results[1:]]
        by_name = {res["path"]: res for res in results}
        if base["path"] != "default" and "default" in by_name and "fast" in by_name:
            pairs.append((by_name["default"], by_name["fast"]))
        for base, res in pairs:
            st = res["stages_per_page"]
            post_share = 100 * st["postprocess"] / max(st["forward"], 1e-9)
            print(
                f"{res['path']} vs {base['path']} ({order}): "
                f"{base['s_per_page'] / res['s_per_page']:.2f}x pages/s, "
                f"{base['process_s'] / res['process_s']:.2f}x whole-process; "
                f"post-processing {post_share:.1f}% of forward"
            )


if __name__ == "__main__":
    main()
