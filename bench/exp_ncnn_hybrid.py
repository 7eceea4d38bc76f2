"""Experiment: ncnn's Winograd convolutions for CRAFT's middle layers, ONNX Runtime for the rest.

Not part of the product: this reproduces the "ncnn hybrid" measurement in
docs/performance.md. It needs ncnn (``pip install ncnn``), which ocrflow does not depend on,
and torch (the dev install has it) to read the verified weights.

CRAFT is cut in three: ORT runs the full-resolution head (conv1-conv2, where ncnn is slower)
and the tail (fc6/fc7, upconvs, classifier, LinkRefiner: dilated and 1x1 convolutions, which
ncnn does not Winograd); ncnn runs conv3_1..conv5_2 (256/512 channels, where its Winograd
F(6,3) kernels beat direct convolution). The ncnn graph is written here straight from the
torch modules (BatchNorm folded, ReLU fused), no pnnx. For each golden page it prints the
maps' deviation from golden, per-stage times of the hybrid and ORT's single graph,
alternating, and each process's peak RSS (run one engine per process for the RSS).

    python bench/exp_ncnn_hybrid.py [--engine both|hybrid|ort] [--rounds 3]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np

try:
    import ncnn
except ImportError:
    print("ncnn is not installed (pip install ncnn): nothing to measure")
    sys.exit(0)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_detector import GOLDEN, IMAGES

from craft.onnx_backend import OnnxBackend, _register_shared_arena
from craft.preprocess import prepare_batch
from tests.craft.golden import map_deviations


class NcnnGraph:
    """A tiny writer for ncnn's .param/.bin formats, fed from torch modules."""

    def __init__(self) -> None:
        self.layers: list[list[Any]] = []  # [type, name, inputs, outputs, params, weights]
        self._blobs = 0

    def add(self, typ: str, ins: list[str], params: str = "", outs: list[str] | None = None,
            weights: bytes = b"") -> str:  # fmt: skip
        if outs is None:
            self._blobs += 1
            outs = [f"b{self._blobs}"]
        self.layers.append([typ, f"{typ.lower()}{len(self.layers)}", ins, outs, params, weights])
        return outs[0]

    def conv(self, x: str, conv: Any, bn: Any = None, relu: bool = False) -> str:
        w = conv.weight.detach().double().numpy()
        b = conv.bias.detach().double().numpy()
        if bn is not None:  # fold in float64, as exactly as the export's folding
            scale = bn.weight.detach().double().numpy() / np.sqrt(
                bn.running_var.detach().double().numpy() + bn.eps
            )
            w = w * scale[:, None, None, None]
            b = (b - bn.running_mean.detach().double().numpy()) * scale
            b = b + bn.bias.detach().double().numpy()
        w32, b32 = w.astype(np.float32), b.astype(np.float32)
        k, d, p, s = conv.kernel_size[0], conv.dilation[0], conv.padding[0], conv.stride[0]
        params = f"0={w.shape[0]} 1={k} 2={d} 3={s} 4={p} 5=1 6={w.size}" + (" 9=1" if relu else "")
        # A zero flag word marks raw float32 weights; the bias follows without one.
        blob = np.zeros(1, np.uint32).tobytes() + w32.tobytes() + b32.tobytes()
        return self.add("Convolution", [x], params, weights=blob)

    def sequence(self, x: str, modules: list[Any]) -> str:
        from torch import nn

        i = 0
        while i < len(modules):
            m = modules[i]
            if isinstance(m, nn.Conv2d):
                bn = modules[i + 1] if i + 1 < len(modules) and isinstance(
                    modules[i + 1], nn.BatchNorm2d) else None  # fmt: skip
                j = i + 1 + (bn is not None)
                relu = j < len(modules) and isinstance(modules[j], nn.ReLU)
                x = self.conv(x, m, bn, relu)
                i = j + int(relu)
            elif isinstance(m, nn.ReLU):
                x = self.add("ReLU", [x])
                i += 1
            elif isinstance(m, nn.MaxPool2d):
                x = self.add(
                    "Pooling", [x], f"0=0 1={m.kernel_size} 2={m.stride} 3={m.padding} 5=1"
                )
                i += 1
            else:
                raise TypeError(f"no ncnn mapping for {type(m).__name__}")
        return x

    def write(self, param: Path, weights: Path) -> None:
        """ncnn wants one consumer per blob: a Split layer fans out every shared blob."""
        uses = Counter(b for layer in self.layers for b in layer[2])
        seen: Counter[str] = Counter()
        out: list[list[Any]] = []
        for layer in self.layers:
            ins = []
            for b in layer[2]:
                ins.append(f"{b}_{seen[b]}" if uses[b] > 1 else b)
                seen[b] += 1
            out.append([layer[0], layer[1], ins, *layer[3:]])
            for b in layer[3]:
                if uses[b] > 1:
                    out.append(["Split", f"split_{b}", [b], [f"{b}_{k}" for k in range(uses[b])],
                                "", b""])  # fmt: skip
        n_blobs = len({b for layer in out for b in layer[3]})
        with param.open("w") as f:
            f.write(f"7767517\n{len(out)} {n_blobs}\n")
            for typ, name, ins, outs, params, _ in out:
                f.write(f"{typ} {name} {len(ins)} {len(outs)} {' '.join(ins + outs)} {params}\n")
        with weights.open("wb") as f:
            for layer in out:
                f.write(layer[5])


def build(folder: Path) -> None:
    """Export the ORT head/tail graphs and write the ncnn middle graph."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from craft.onnx_export import _atomic_export
    from craft.zoo import REFINER_WEIGHTS, load_craft, load_refiner, resolve_weights

    craft = load_craft(resolve_weights("craft_mlt_25k"))
    refiner = load_refiner(resolve_weights(REFINER_WEIGHTS))
    base = craft.basenet

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.slice1 = base.slice1

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # slice2 opens with an in-place ReLU on slice1's output, which CRAFT also keeps as
            # its h2 skip tensor: the skip is therefore post-ReLU (likewise h3, h4; not h5).
            return F.relu(self.slice1(x))

    class Tail(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.craft = craft

        def forward(self, h2: torch.Tensor, h3: torch.Tensor, h4: torch.Tensor,
                    h5: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
            c = self.craft
            y = c.upconv1(torch.cat([c.basenet.slice5(h5), h5], 1))
            for up, skip in ((c.upconv2, h4), (c.upconv3, h3), (c.upconv4, h2)):
                y = F.interpolate(y, size=skip.shape[2:], mode="bilinear", align_corners=False)
                y = up(torch.cat([y, skip], 1))
            return c.conv_cls(y).permute(0, 2, 3, 1), y

    def dyn(*names: str) -> dict[str, dict[int, str]]:
        return {n: {0: "n", 2: f"{n}_h", 3: f"{n}_w"} for n in names}

    x = torch.zeros(1, 3, 64, 96)
    with torch.no_grad():
        h2 = Head()(x)
    h3, h4, h5 = (torch.zeros(1, c, 16 // k, 24 // k) for c, k in ((256, 1), (512, 2), (512, 4)))
    _atomic_export(Head(), (x,), folder / "head.onnx", ["image"], ["h2"], dyn("image", "h2"))
    _atomic_export(Tail(), (h2, h3, h4, h5), folder / "tail.onnx", ["h2", "h3", "h4", "h5"],
                   ["y", "feature"], {**dyn("h2", "h3", "h4", "h5", "feature"),
                                      "y": {0: "n", 1: "y_h", 2: "y_w"}})  # fmt: skip
    _atomic_export(refiner, (torch.zeros(1, 32, 48, 2), torch.zeros(1, 32, 32, 48)),
                   folder / "refiner.onnx", ["y", "feature"], ["refined"],
                   {"y": {0: "n", 1: "h", 2: "w"}, "feature": {0: "n", 2: "h", 3: "w"},
                    "refined": {0: "n", 1: "h", 2: "w"}})  # fmt: skip

    g = NcnnGraph()
    x_blob = g.add("Input", [], outs=["h2"])
    mods = [*base.slice2, *base.slice3, *base.slice4][1:]  # slice2's ReLU is in the head
    ends = [len(base.slice2) - 1, len(base.slice2) - 1 + len(base.slice3), len(mods)]
    start = 0
    for k, end in enumerate(ends):
        if end < len(mods) and isinstance(mods[end], nn.ReLU):
            end += 1  # the next slice's in-place ReLU belongs to this skip tensor
        x_blob = g.sequence(x_blob, mods[start:end])
        start = end
        if k < 2:  # an unconsumed Split branch keeps h3, h4 alive for extraction
            x_blob = g.add("Split", [x_blob], outs=[f"h{k + 3}", f"h{k + 3}_next"])
            x_blob = f"h{k + 3}_next"
        else:
            g.layers[-1][3] = ["h5"]
    g.write(folder / "mid.param", folder / "mid.bin")


class Hybrid:
    """ORT head -> ncnn middle -> ORT tail and refiner, timed per stage."""

    def __init__(self, folder: Path, threads: int = 2) -> None:
        import onnxruntime as ort

        _register_shared_arena(ort)  # the same arena set-up as OnnxBackend
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.enable_mem_pattern = False
        opts.add_session_config_entry("session.use_env_allocators", "1")
        self.sessions = {
            name: ort.InferenceSession(str(folder / f"{name}.onnx"), opts,
                                       providers=["CPUExecutionProvider"])
            for name in ("head", "tail", "refiner")
        }  # fmt: skip
        self.net = ncnn.Net()
        o = self.net.opt
        o.num_threads = threads
        o.lightmode = True
        o.openmp_blocktime = 0  # hand the cores back to ORT at once
        o.use_fp16_storage = o.use_fp16_packed = o.use_fp16_arithmetic = False
        o.use_bf16_storage = o.use_int8_inference = False
        self.net.load_param(str(folder / "mid.param"))
        self.net.load_model(str(folder / "mid.bin"))

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        t0 = time.perf_counter()
        h2 = self.sessions["head"].run(None, {"image": batch})[0]
        t1 = time.perf_counter()
        ex = self.net.create_extractor()
        ex.input("h2", ncnn.Mat(h2[0]))
        skips = {}
        for name in ("h5", "h3", "h4"):  # h5 runs the whole middle; h3, h4 are kept
            _, mat = ex.extract(name)
            skips[name] = np.array(mat)[None]
        del ex
        t2 = time.perf_counter()
        y, feature = self.sessions["tail"].run(None, {"h2": h2, **skips})
        t3 = time.perf_counter()
        refined = self.sessions["refiner"].run(None, {"y": y, "feature": feature})[0]
        t4 = time.perf_counter()
        times = {"head": t1 - t0, "ncnn": t2 - t1, "tail": t3 - t2, "refine": t4 - t3}
        return y[0], refined[0, ..., 0], times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", choices=["both", "hybrid", "ort"], default="both")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from craft.zoo import ensure_onnx, resolve_weights

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.engine != "ort":
            build(folder)
        craft_onnx, refiner_onnx = ensure_onnx(
            resolve_weights("craft_mlt_25k"), resolve_weights("craft_refiner_CTW1500")
        )
        engines: dict[str, Any] = {}
        if args.engine in ("both", "hybrid"):
            engines["hybrid"] = Hybrid(folder)
        if args.engine in ("both", "ort"):
            engines["ort"] = OnnxBackend(craft_onnx, refiner_onnx)
        for page in IMAGES:
            batch, _ = prepare_batch([cv2.imread(str(GOLDEN / f"{page}.png"))], 1280, 1.5)
            best: dict[str, float] = {}
            for r in range(args.rounds + 1):  # round 0 warms up
                for name, engine in engines.items():
                    t = time.perf_counter()
                    if name == "hybrid":
                        y, refined, parts = engine.run(batch)
                        maps = (y[..., 0], y[..., 1], refined)
                    else:
                        m = engine.run(batch, True)
                        maps, parts = (m.text[0], m.link[0], m.refined_link[0]), {}
                    total = time.perf_counter() - t
                    if r == 0:
                        dev = map_deviations(GOLDEN, page, *maps)
                        print(f"{page} {name}: max dev from golden text/link/refined "
                              + "/".join(f"{d:.1e}" for d in dev))  # fmt: skip
                        continue
                    stages = " ".join(f"{k} {v:.2f}" for k, v in parts.items())
                    print(f"  {page} {name} round {r}: {total:.2f} s  {stages}", flush=True)
                    best[name] = min(best.get(name, 1e9), total)
            if len(best) == 2:
                print(f"{page}: best hybrid {best['hybrid']:.2f} s, ORT {best['ort']:.2f} s, "
                      f"{best['ort'] / best['hybrid']:.2f}x")  # fmt: skip
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"peak RSS of this process ({args.engine}): {rss} MB")


if __name__ == "__main__":
    main()
