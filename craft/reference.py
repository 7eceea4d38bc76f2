"""A reference-equivalent implementation of CRAFT's box extraction, kept for parity and speed.

It performs the same whole-map operations per component as the official ``getDetBoxes_core``
(full-size masks and canvas for every component). It exists so the tests can prove the fast
path in ``craft.postprocess`` gives identical boxes, and so ``bench/`` can time the
reference-equivalent path honestly. Do not use it in production.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from craft.postprocess import MapBoxes, order_quad

__all__ = ["detect_quads_reference"]


def detect_quads_reference(
    textmap: np.ndarray,
    linkmap: np.ndarray,
    text_threshold: float,
    link_threshold: float,
    low_text: float,
) -> MapBoxes:
    """Boxes as the reference computes them, one full-map pass per component."""
    img_h, img_w = textmap.shape
    _, text_score = cv2.threshold(textmap, low_text, 1, 0)
    _, link_score = cv2.threshold(linkmap, link_threshold, 1, 0)
    comb = np.clip(text_score + link_score, 0, 1)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(comb.astype(np.uint8), connectivity=4)
    quads, scores = [], []
    for k in range(1, n):
        size = stats[k, cv2.CC_STAT_AREA]
        if size < 10:
            continue
        if np.max(textmap[labels == k]) < text_threshold:
            continue
        segmap = np.zeros(textmap.shape, dtype=np.uint8)
        segmap[labels == k] = 255
        segmap[np.logical_and(link_score == 1, text_score == 0)] = 0
        x, y = stats[k, cv2.CC_STAT_LEFT], stats[k, cv2.CC_STAT_TOP]
        w, h = stats[k, cv2.CC_STAT_WIDTH], stats[k, cv2.CC_STAT_HEIGHT]
        niter = int(math.sqrt(size * min(w, h) / (w * h)) * 2)
        sx, ex, sy, ey = x - niter, x + w + niter + 1, y - niter, y + h + niter + 1
        sx, sy = max(sx, 0), max(sy, 0)
        ex, ey = min(ex, img_w), min(ey, img_h)
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (1 + niter, 1 + niter))
        segmap[sy:ey, sx:ex] = cv2.dilate(segmap[sy:ey, sx:ex], kernel)
        pts = np.roll(np.array(np.where(segmap != 0)), 1, axis=0).transpose().reshape(-1, 2)
        if len(pts) == 0:
            continue
        box = cv2.boxPoints(cv2.minAreaRect(pts.astype(np.int32)))
        bw, bh = np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[1] - box[2])
        if abs(1 - max(bw, bh) / (min(bw, bh) + 1e-5)) <= 0.1:
            x0, x1 = min(pts[:, 0]), max(pts[:, 0])
            y0, y1 = min(pts[:, 1]), max(pts[:, 1])
            box = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)
        quads.append(order_quad(box))
        scores.append(float(textmap[labels == k].mean()))
    if not quads:
        return MapBoxes(np.zeros((0, 4, 2), np.float32), np.zeros((0,), np.float32))
    return MapBoxes(np.stack(quads).astype(np.float32), np.asarray(scores, dtype=np.float32))
