"""Loading the reference outputs and comparing quads with them."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

# config name -> (preset overrides as ocrflow names, which link map the reference used)
CONFIGS: dict[str, dict[str, Any]] = {
    "craft_default": {"score_threshold": 0.7, "text_threshold": 0.4, "link_threshold": 0.4,
                      "with_refiner": False},
    "seed_card": {"score_threshold": 0.5, "text_threshold": 0.2, "link_threshold": 0.4,
                  "with_refiner": False},
    "seed_card_refiner": {"score_threshold": 0.5, "text_threshold": 0.2, "link_threshold": 0.4,
                          "with_refiner": True},
    "craft_default_refiner": {"score_threshold": 0.7, "text_threshold": 0.4,
                              "link_threshold": 0.4, "with_refiner": True},
}  # fmt: skip
IMAGES = ("page", "rotated", "small")


@cache
def golden_json(golden_dir: Path) -> dict[str, Any]:
    return json.loads((golden_dir / "golden.json").read_text())


MAP_KEYS = ("score_text", "score_link", "refined_link")


def map_deviations(
    golden_dir: Path, image: str, text: np.ndarray, link: np.ndarray, refined: np.ndarray
) -> list[float]:
    """Max-abs deviation of (text, link, refined link) maps from golden, cropped to its size."""
    golden = np.load(golden_dir / f"{image}.maps.npz")
    h, w = golden["score_text"].shape
    ours = (text, link, refined)
    return [
        float(np.abs(m[:h, :w] - golden[key].astype(np.float32)).max())
        for m, key in zip(ours, MAP_KEYS, strict=True)
    ]


def golden_quads(golden_dir: Path, image: str, config: str) -> np.ndarray:
    quads = golden_json(golden_dir)["images"][image]["boxes"][config]["quads"]
    return np.asarray(quads, dtype=np.float32).reshape(-1, 4, 2)


def quad_iou(a: np.ndarray, b: np.ndarray) -> float:
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    inter, _ = cv2.intersectConvexConvex(a32, b32)
    union = cv2.contourArea(a32) + cv2.contourArea(b32) - inter
    return float(inter / union) if union > 0 else 0.0


def match_quads(found: np.ndarray, expected: np.ndarray) -> list[float]:
    """Best IoU of each expected quad with a distinct found quad (greedy, highest first)."""
    pairs = sorted(
        ((quad_iou(f, e), i, j) for j, e in enumerate(expected) for i, f in enumerate(found)
         if np.abs(f.mean(0) - e.mean(0)).max() < 50),
        reverse=True,
    )  # fmt: skip
    used_f: set[int] = set()
    best: dict[int, float] = {}
    for iou, i, j in pairs:
        if i in used_f or j in best:
            continue
        used_f.add(i)
        best[j] = iou
    return [best.get(j, 0.0) for j in range(len(expected))]
