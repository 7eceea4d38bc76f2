"""Box agreement between two detections of the same page: how a faster numeric path is judged.

A low-precision or cropped path does not reproduce fp32's maps bit for bit, so it is judged by
its boxes instead: each box of one side is paired with at most one box of the other (greedy,
highest IoU first), and a pair counts when its IoU reaches the threshold. Recall both ways
catches both lost boxes and invented ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike

__all__ = ["Agreement", "box_agreement", "quad_iou"]


@dataclass(frozen=True, slots=True)
class Agreement:
    """Counts of a one-to-one matching of ``reference`` boxes with ``candidate`` boxes."""

    reference: int
    candidate: int
    matched: int

    @property
    def reference_recall(self) -> float:
        """Share of reference boxes matched by a candidate box (1.0 when there are none)."""
        return self.matched / self.reference if self.reference else 1.0

    @property
    def candidate_recall(self) -> float:
        """Share of candidate boxes matched by a reference box (1.0 when there are none)."""
        return self.matched / self.candidate if self.candidate else 1.0

    def __add__(self, other: Agreement) -> Agreement:
        """Pool the counts of several pages."""
        return Agreement(
            self.reference + other.reference,
            self.candidate + other.candidate,
            self.matched + other.matched,
        )


def quad_iou(a: ArrayLike, b: ArrayLike) -> float:
    """IoU of two convex quadrilaterals (4 x 2 points, any rotation)."""
    a32 = np.ascontiguousarray(a, dtype=np.float32).reshape(4, 2)
    b32 = np.ascontiguousarray(b, dtype=np.float32).reshape(4, 2)
    inter, _ = cv2.intersectConvexConvex(a32, b32)
    union = abs(cv2.contourArea(a32)) + abs(cv2.contourArea(b32)) - inter
    return float(inter / union) if union > 0 else 0.0


def _as_quads(boxes: ArrayLike) -> np.ndarray:
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4, 2)


def box_agreement(
    reference: ArrayLike,
    candidate: ArrayLike,
    iou: float = 0.9,
) -> Agreement:
    """Match boxes one to one (greedy by IoU, highest first) and count pairs at ``iou`` or more.

    Boxes are 4-point polygons (rotated or axis-aligned), e.g. ``Region.polygon``. Only pairs
    whose axis-aligned bounds overlap are scored, so a page of a thousand boxes stays cheap.
    """
    ref, cand = _as_quads(reference), _as_quads(candidate)
    if len(ref) == 0 or len(cand) == 0:
        return Agreement(len(ref), len(cand), 0)
    rlo, rhi = ref.min(1), ref.max(1)
    clo, chi = cand.min(1), cand.max(1)
    overlap = (
        (rlo[:, None, 0] < chi[None, :, 0])
        & (clo[None, :, 0] < rhi[:, None, 0])
        & (rlo[:, None, 1] < chi[None, :, 1])
        & (clo[None, :, 1] < rhi[:, None, 1])
    )
    pairs = []
    for i, j in zip(*np.nonzero(overlap), strict=True):
        value = quad_iou(ref[i], cand[j])
        if value >= iou:
            pairs.append((value, int(i), int(j)))
    pairs.sort(reverse=True)
    used_ref: set[int] = set()
    used_cand: set[int] = set()
    for _, i, j in pairs:
        if i not in used_ref and j not in used_cand:
            used_ref.add(i)
            used_cand.add(j)
    return Agreement(len(ref), len(cand), len(used_ref))
