"""Score detector settings on the dev set (``bench/devset.py``): P / R / H-mean.

Regions are matched one-to-one to the ground truth at IoU >= 0.5 (rotated quads, greedy by
IoU), at two levels (words, lines) and against two boxes (the text layer's font boxes and the
ink boxes). A detection left unmatched that lies mostly (> 50 % of its area) on a don't-care
region is not counted. Counts are summed over pages before P / R / H are computed.

The network runs once per image: its score maps are cached (``--maps-cache``), so every
setting is scored on the same maps and only post-processing runs per setting.

    python bench/bench_accuracy.py [--configs words,lines,default,...] [--subset upright]
                                   [--json out.json]

Not a test: read the numbers (docs/accuracy.md has them with the machine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from devset import VARIANT_PAGES, default_dir  # noqa: E402

from craft.backends import InferenceBackend, ScoreMaps  # noqa: E402
from craft.params import DetectorParams, Preset  # noqa: E402
from craft.predictor import CraftPredictor, ModelInfo  # noqa: E402

IOU = 0.5
# name -> (preset, overrides, level it is meant for). The reference settings switch the
# accuracy options off explicitly, so they stay the reference's whatever the presets hold.
REFERENCE = {"split_lines": False, "tight_boxes": False, "detect_orientation": False}
CONFIGS: dict[str, tuple[Preset, dict[str, Any], str]] = {
    # the reference's paths: the "before" table
    "words-ref": ("words", REFERENCE, "words"),
    "lines-ref": ("lines", REFERENCE, "lines"),
    "card-lines-ref": ("default", REFERENCE, "lines"),
    "card-words-ref": ("default", {**REFERENCE, "with_refiner": False}, "words"),
    # the presets as they are now: the "after" table
    "default": ("default", {}, "lines"),
    "words": ("words", {}, "words"),
    "lines": ("lines", {}, "lines"),
    # one option at a time on the card
    "card-lines-split": ("default", {**REFERENCE, "split_lines": True}, "lines"),
    "card-lines-tight": ("default", {**REFERENCE, "tight_boxes": True}, "lines"),
    "card-lines-split-tight": (
        "default", {**REFERENCE, "split_lines": True, "tight_boxes": True}, "lines"
    ),
    "card-words-tight": ("default", {**REFERENCE, "with_refiner": False, "tight_boxes": True},
                         "words"),
    "lines-split-tight": ("lines", {**REFERENCE, "split_lines": True, "tight_boxes": True},
                          "lines"),
}  # fmt: skip


class CachedBackend:
    """An engine whose maps are cached on disk by the input pixels (always with the refiner)."""

    def __init__(self, inner: InferenceBackend, root: Path) -> None:
        self.inner = inner
        self.root = root
        self.name, self.device, self.precision = inner.name, inner.device, inner.precision
        root.mkdir(parents=True, exist_ok=True)
        self.forward_s = 0.0

    def run(self, batch: np.ndarray, with_refiner: bool) -> ScoreMaps:
        """Not cached: the predictor only calls ``run_pixels``."""
        return self.inner.run(batch, with_refiner)

    def run_pixels(self, pixels: np.ndarray, with_refiner: bool) -> ScoreMaps:
        """The cached maps of these pixels, computed on a miss."""
        key = hashlib.sha1(pixels.tobytes() + str(pixels.shape).encode()).hexdigest()
        path = self.root / f"{key}.npz"
        if path.exists():
            z = np.load(path)
            return ScoreMaps(z["text"], z["link"], z["refined"], 0.0, 0.0)
        t0 = time.perf_counter()
        maps = self.inner.run_pixels(pixels, with_refiner=True)
        self.forward_s += time.perf_counter() - t0
        assert maps.refined_link is not None
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, text=maps.text, link=maps.link, refined=maps.refined_link)
        tmp.replace(path)  # atomic: a concurrent run never reads half a file
        return maps


def _hull(quad: np.ndarray) -> np.ndarray:
    return cv2.convexHull(quad.astype(np.float32)).reshape(-1, 2)


def iou_pairs(dets: np.ndarray, gts: np.ndarray) -> list[tuple[float, int, int]]:
    """(IoU, det, gt) for every pair at IoU >= ``IOU`` (rotated quads)."""
    if len(dets) == 0 or len(gts) == 0:
        return []
    dmin, dmax = dets.min(axis=1), dets.max(axis=1)
    gmin, gmax = gts.min(axis=1), gts.max(axis=1)
    overlap = (
        (dmin[:, None, 0] < gmax[None, :, 0])
        & (gmin[None, :, 0] < dmax[:, None, 0])
        & (dmin[:, None, 1] < gmax[None, :, 1])
        & (gmin[None, :, 1] < dmax[:, None, 1])
    )
    dh = [_hull(q) for q in dets]
    gh = [_hull(q) for q in gts]
    da = [cv2.contourArea(h) for h in dh]
    ga = [cv2.contourArea(h) for h in gh]
    out = []
    for i, j in zip(*np.nonzero(overlap), strict=True):
        inter, _ = cv2.intersectConvexConvex(dh[i], gh[j])
        iou = inter / max(da[i] + ga[j] - inter, 1e-9)
        if iou >= IOU:
            out.append((float(iou), int(i), int(j)))
    return out


def dc_fraction(dets: np.ndarray, dcs: np.ndarray) -> np.ndarray:
    """Per detection: the largest share of its area on one don't-care region."""
    out = np.zeros(len(dets))
    if len(dets) == 0 or len(dcs) == 0:
        return out
    gh = [_hull(q) for q in dcs]
    gmin, gmax = dcs.min(axis=1), dcs.max(axis=1)
    for i, q in enumerate(dets):
        h = _hull(q)
        area = max(cv2.contourArea(h), 1e-9)
        qmin, qmax = q.min(axis=0), q.max(axis=0)
        near = np.flatnonzero(
            (qmin[0] < gmax[:, 0]) & (gmin[:, 0] < qmax[0])
            & (qmin[1] < gmax[:, 1]) & (gmin[:, 1] < qmax[1])
        )  # fmt: skip
        for j in near:
            inter, _ = cv2.intersectConvexConvex(h, gh[j])
            out[i] = max(out[i], inter / area)
    return out


@dataclass
class Counts:
    """Matches, counted detections and counted ground truth, summed over pages."""

    tp: int = 0
    det: int = 0
    gt: int = 0

    def add(self, other: Counts) -> None:
        """Sum in place."""
        self.tp, self.det, self.gt = self.tp + other.tp, self.det + other.det, self.gt + other.gt

    def prh(self) -> tuple[float, float, float]:
        """Precision, recall, H-mean."""
        p = self.tp / self.det if self.det else 0.0
        r = self.tp / self.gt if self.gt else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def score_page(dets: np.ndarray, truth: list[dict], box: str) -> Counts:
    """One page at one level against one kind of box."""
    care = np.array(
        [b[box] for b in truth if not b["dont_care"] and b[box] is not None], dtype=np.float64
    ).reshape(-1, 4, 2)
    dcs = np.array(
        [b["font"] for b in truth if b["dont_care"] or b[box] is None], dtype=np.float64
    ).reshape(-1, 4, 2)
    used_d: set[int] = set()
    used_g: set[int] = set()
    for _, i, j in sorted(iou_pairs(dets, care), reverse=True):
        if i not in used_d and j not in used_g:
            used_d.add(i)
            used_g.add(j)
    unmatched = np.array([i for i in range(len(dets)) if i not in used_d], dtype=int)
    ignored = int((dc_fraction(dets[unmatched], dcs) > 0.5).sum()) if len(unmatched) else 0
    return Counts(len(used_d), len(dets) - ignored, len(care))


@dataclass
class Result:
    """A setting's counts per (subset, level, box)."""

    counts: dict[tuple[str, str, str], Counts] = field(default_factory=dict)
    post_s: float = 0.0
    pages: int = 0
    wrong_turns: list[str] = field(default_factory=list)  # pages whose orientation was missed

    def add(self, subset: str, level: str, box: str, c: Counts) -> None:
        """Sum a page's counts into a subset."""
        self.counts.setdefault((subset, level, box), Counts()).add(c)


def subsets_of(entry: dict) -> list[str]:
    """The subsets an image belongs to; ``upright10``: the pages that have variants, upright."""
    if entry["kind"] == "upright":
        return ["upright", "upright10"] if entry["page"] in VARIANT_PAGES else ["upright"]
    return [entry["kind"], "variants"]


def evaluate(
    predictor: CraftPredictor, index: list[dict], root: Path, levels: tuple[str, ...]
) -> Result:
    """Run one setting over the dev set images and count matches."""
    res = Result()
    for entry in index:
        image = np.asarray(cv2.imread(str(root / f"{entry['id']}.png"), cv2.IMREAD_COLOR))
        truth = json.loads((root / f"{entry['id']}.json").read_text())
        t0 = time.perf_counter()
        [page] = predictor([image])
        res.post_s += time.perf_counter() - t0
        res.pages += 1
        expected = {"rot90": 90, "rot180": 180, "rot270": 270}.get(entry["kind"], 0)
        if predictor.params.detect_orientation and page.orientation != expected:
            res.wrong_turns.append(f"{entry['id']}: {page.orientation}")
        dets = np.array([r.polygon for r in page.regions], dtype=np.float64).reshape(-1, 4, 2)
        for level in levels:
            for box in ("font", "ink"):
                c = score_page(dets, truth[level], box)
                for subset in subsets_of(entry):
                    res.add(subset, level, box, c)
    return res


def engine() -> InferenceBackend:
    """The CPU fp32 engine the product uses (ONNX Runtime)."""
    from craft.zoo import craft_predictor

    return craft_predictor("words", device="cpu", backend="onnxruntime", precision="fp32").backend


def main() -> None:
    """Score the chosen settings and print one table per level."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devset", type=Path, default=default_dir())
    parser.add_argument("--maps-cache", type=Path, default=None)
    parser.add_argument("--configs", default="words-ref,lines-ref,card-lines-ref,card-words-ref,"
                        "default,words")  # fmt: skip
    parser.add_argument("--subset", default="all", help="'upright', a variant kind, or 'all'")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not (args.devset / "index.json").exists():
        from devset import build

        build(args.devset)
    index = json.loads((args.devset / "index.json").read_text())
    if args.subset != "all":
        index = [e for e in index if e["kind"] == args.subset]
    backend = CachedBackend(engine(), args.maps_cache or args.devset.parent / "devset-maps")
    info = ModelInfo("craft_mlt_25k", "", "craft_refiner_CTW1500", "", "cached", "cpu", "fp32")
    report: dict[str, Any] = {}
    for name in args.configs.split(","):
        preset, overrides, level = CONFIGS[name]
        params = DetectorParams.preset(preset, **overrides)
        predictor = CraftPredictor(backend, params, info)
        res = evaluate(predictor, index, args.devset, ("words", "lines"))
        report[name] = {
            "level": level,
            "post_s_per_page": res.post_s / max(res.pages, 1),
            "wrong_turns": res.wrong_turns,
            "scores": {
                "/".join(k): dict(zip(("p", "r", "h"), c.prh(), strict=True))
                | {"tp": c.tp, "det": c.det, "gt": c.gt}
                for k, c in sorted(res.counts.items())
            },
        }
        print_result(name, level, res)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


def print_result(name: str, level: str, res: Result) -> None:
    """One line per subset: P/R/H at the setting's level against font and ink boxes."""
    order = ("upright", "upright10", "variants")
    subsets = sorted(
        {k[0] for k in res.counts},
        key=lambda s: (s not in order, order.index(s) if s in order else 0, s),
    )
    print(f"\n{name} ({level}; {res.post_s / max(res.pages, 1):.2f} s/page without the network)")
    print(f"{'subset':10} {'font P':>7} {'R':>6} {'H':>6}   {'ink P':>6} {'R':>6} {'H':>6}"
          f"   {'other level font H':>18} {'ink H':>6}")  # fmt: skip
    other = "lines" if level == "words" else "words"
    if res.wrong_turns:
        print(f"orientation missed on {len(res.wrong_turns)} pages: {', '.join(res.wrong_turns)}")
    for s in subsets:
        f = res.counts[(s, level, "font")].prh()
        i = res.counts[(s, level, "ink")].prh()
        of = res.counts[(s, other, "font")].prh()[2]
        oi = res.counts[(s, other, "ink")].prh()[2]
        print(f"{s:10} {f[0]:7.3f} {f[1]:6.3f} {f[2]:6.3f}   {i[0]:6.3f} {i[1]:6.3f} {i[2]:6.3f}"
              f"   {of:18.3f} {oi:6.3f}")  # fmt: skip
    sys.stdout.flush()


__all__ = ["CONFIGS", "CachedBackend", "Counts", "evaluate", "score_page"]

if __name__ == "__main__":
    main()
