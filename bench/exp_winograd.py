"""Experiment: Winograd F(4x4, 3x3) for CRAFT's conv3/conv4 layers against ONNX Runtime.

Not part of the product: this reproduces the measurement behind "Winograd with numba" in
docs/performance.md. It needs numba (``pip install numba``), which ocrflow does not depend on.
For three layer shapes of a 1280 px page it prints ORT's direct convolution (a one-layer
graph) and a Winograd convolution (numba input/output transforms + 36 BLAS products),
split into its stages, with the maximum deviation between the two.

    python bench/exp_winograd.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

try:
    import numba as nb
except ImportError:
    print("numba is not installed (pip install numba): nothing to measure")
    sys.exit(0)

_F0, _F2, _F4, _F5, _F8 = (np.float32(v) for v in (0, 2, 4, 5, 8))
_G = np.array(
    [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
     [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64,
)  # fmt: skip


@nb.njit(inline="always")
def _bt(d0: Any, d1: Any, d2: Any, d3: Any, d4: Any, d5: Any) -> Any:
    return (_F4 * d0 - _F5 * d2 + d4, -_F4 * d1 - _F4 * d2 + d3 + d4,
            _F4 * d1 - _F4 * d2 - d3 + d4, -_F2 * d1 - d2 + _F2 * d3 + d4,
            _F2 * d1 - d2 - _F2 * d3 + d4, _F4 * d1 - _F5 * d3 + d5)  # fmt: skip


@nb.njit(inline="always")
def _at(m0: Any, m1: Any, m2: Any, m3: Any, m4: Any, m5: Any) -> Any:
    return (m0 + m1 + m2 + m3 + m4, m1 - m2 + _F2 * m3 - _F2 * m4,
            m1 + m2 + _F4 * m3 + _F4 * m4, m1 - m2 + _F8 * m3 - _F8 * m4 + m5)  # fmt: skip


@nb.njit(parallel=True)
def input_transform(x: Any, th: int, tw: int, v: Any) -> None:
    """x (C, H, W), zero-padded by one -> v (36, C, th * tw) = B^T d B per 6x6 tile."""
    c_count, h, w = x.shape
    for c in nb.prange(c_count):
        d = np.empty((6, 6), np.float32)
        r = np.empty((6, 6), np.float32)
        for ty in range(th):
            for tx in range(tw):
                for i in range(6):
                    yy = 4 * ty - 1 + i
                    for j in range(6):
                        xx = 4 * tx - 1 + j
                        d[i, j] = x[c, yy, xx] if 0 <= yy < h and 0 <= xx < w else _F0
                for j in range(6):
                    a = _bt(d[0, j], d[1, j], d[2, j], d[3, j], d[4, j], d[5, j])
                    for i in range(6):
                        r[i, j] = a[i]
                for i in range(6):
                    b = _bt(r[i, 0], r[i, 1], r[i, 2], r[i, 3], r[i, 4], r[i, 5])
                    for j in range(6):
                        v[i * 6 + j, c, ty * tw + tx] = b[j]


@nb.njit(parallel=True)
def output_transform(m: Any, bias: Any, th: int, tw: int, out: Any) -> None:
    """m (36, K, th * tw) -> out (K, H, W) = A^T m A + bias, cropped."""
    k_count, h, w = out.shape
    for k in nb.prange(k_count):
        s = np.empty((4, 6), np.float32)
        for ty in range(th):
            for tx in range(tw):
                t = ty * tw + tx
                for j in range(6):
                    a = _at(m[j, k, t], m[6 + j, k, t], m[12 + j, k, t], m[18 + j, k, t],
                            m[24 + j, k, t], m[30 + j, k, t])  # fmt: skip
                    for i in range(4):
                        s[i, j] = a[i]
                for i in range(4):
                    if 4 * ty + i < h:
                        b = _at(s[i, 0], s[i, 1], s[i, 2], s[i, 3], s[i, 4], s[i, 5])
                        for j in range(4):
                            if 4 * tx + j < w:
                                out[k, 4 * ty + i, 4 * tx + j] = b[j] + bias[k]


def _ort_direct(weight: np.ndarray, bias: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    import onnxruntime as ort
    import torch

    conv = torch.nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1).eval()
    conv.weight.data = torch.from_numpy(weight)
    conv.bias.data = torch.from_numpy(bias)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "conv.onnx"
        torch.onnx.export(conv, (torch.from_numpy(x)[None],), str(path), input_names=["x"],
                          opset_version=17, dynamo=False)  # fmt: skip
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feeds = {"x": x[None]}
    session.run(None, feeds)
    best = min(_timed(lambda: session.run(None, feeds)) for _ in range(3))
    return best, session.run(None, feeds)[0][0]


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure_layer(c: int, h: int, w: int, rng: np.random.Generator) -> str:
    """One c -> c 3x3 layer at h x w: both ways, timed (best of 3) and compared."""
    weight = (rng.standard_normal((c, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    bias = rng.standard_normal(c).astype(np.float32)
    x = rng.standard_normal((c, h, w)).astype(np.float32)
    u = np.ascontiguousarray(
        (_G @ weight.astype(np.float64) @ _G.T).transpose(2, 3, 0, 1).reshape(36, c, c),
        dtype=np.float32,
    )
    th, tw = (h + 3) // 4, (w + 3) // 4
    v = np.empty((36, c, th * tw), np.float32)
    m = np.empty((36, c, th * tw), np.float32)
    out = np.empty((c, h, w), np.float32)
    stages = (
        lambda: input_transform(x, th, tw, v),
        lambda: np.matmul(u, v, out=m),
        lambda: output_transform(m, bias, th, tw, out),
    )
    for stage in stages:  # compile and warm
        stage()
    best = [min(_timed(stage) for _ in range(3)) for stage in stages]
    direct_s, direct = _ort_direct(weight, bias, x)
    gflop = 2 * c * c * 9 * h * w / 1e9
    return (
        f"{c} ch, {h} x {w} ({gflop:.1f} GFLOP): ORT direct {direct_s * 1e3:.0f} ms | "
        f"Winograd {sum(best) * 1e3:.0f} ms = in {best[0] * 1e3:.0f} + GEMM "
        f"{best[1] * 1e3:.0f} ({gflop / 4 / best[1]:.0f} GFLOP/s) + out {best[2] * 1e3:.0f}"
        f" | {direct_s / sum(best):.2f}x | max dev {np.abs(out - direct).max():.1e}"
    )


def main() -> None:
    rng = np.random.default_rng(0)
    for c, h, w in ((256, 320, 232), (512, 160, 116), (128, 640, 464)):
        print(measure_layer(c, h, w, rng), flush=True)


if __name__ == "__main__":
    main()
