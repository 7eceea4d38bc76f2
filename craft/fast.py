"""``precision="fast"``: the fastest numeric path whose boxes agree with fp32, picked per machine.

Judged by boxes, not maps: at least 98% of fp32's boxes matched one to one by a fast box at
IoU >= 0.9 and the same share the other way, for the ``words`` and ``default`` presets
(``tests/craft/test_fast.py`` checks every path this module can pick on the machine it runs
on). What was measured, kept and rejected per CPU is in docs/performance.md:

- bf16 autocast (torch, oneDNN) where the CPU has bf16 instructions: only those CPUs run it
  natively; elsewhere torch emulates bf16 at a tenth of fp32's speed, so it is never picked
  there.
- Blank skipping (``craft.blank``) at fp32 or bf16 on every CPU: the network sees only the
  content box of the page plus a halo, at the page's own scale.
- The LinkRefiner in int8 (``craft.int8_refiner``: ONNX Runtime static quantisation) where the
  CPU has VNNI: about 3x faster than fp32 there, moving ~1% of the default preset's boxes.
  CRAFT itself in int8, even with VNNI, moved 2-6% of the boxes (any part of it) and is not
  offered.

On CUDA the fast path is bf16 autocast, the measured GPU fast path.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from craft.backends import cpu_flags
from craft.int8_refiner import VNNI_FLAGS

__all__ = ["BF16_FLAGS", "FastPath", "choose_fast_path", "fast_path"]

logger = logging.getLogger(__name__)

# x86 instructions that run bf16 convolutions natively (oneDNN: AVX512-BF16 dot products, AMX).
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True, slots=True)
class FastPath:
    """One concrete choice behind ``precision="fast"``.

    ``precision`` is CRAFT's; ``int8_refiner`` runs the LinkRefiner in int8
    (``craft.int8_refiner``). ``label`` is what a run records as its precision (e.g.
    ``bf16/int8+crop``: CRAFT's precision / the refiner's, blank skipping); ``note`` is the one
    line the log gets.
    """

    backend: str
    precision: str
    blank_skip: bool
    label: str
    note: str
    fallback: bool = False
    int8_refiner: bool = False


def choose_fast_path(device: str, backend: str, flags: frozenset[str] | None) -> FastPath:
    """The fast path for a device, a requested backend (``auto`` or explicit) and CPU flags.

    Pure (flags are passed in) so every branch is testable on any machine.
    """
    if device.startswith("cuda"):
        if backend == "onnxruntime":
            raise ValueError("precision 'fast' on CUDA runs on torch; use backend 'auto'")
        return FastPath("torch", "bf16", False, "bf16", "fast precision on CUDA: bf16 autocast")
    have = flags or frozenset()
    has_bf16 = bool(have.intersection(BF16_FLAGS))
    bf16 = has_bf16 and backend in ("auto", "torch")
    int8 = bool(have.intersection(VNNI_FLAGS))
    chosen = "torch" if bf16 else ("onnxruntime" if backend == "auto" else backend)
    precision = "bf16" if bf16 else "fp32"
    label = precision + ("/int8" if int8 else "") + "+crop"  # CRAFT/refiner; fits runs.precision
    if bf16:
        craft_why = "bf16 autocast (its bf16 instructions)"
    elif has_bf16:
        craft_why = "fp32 (backend 'onnxruntime' has no bf16 kernels)"
    else:
        craft_why = "fp32 (no bf16 instructions: emulated bf16 would be ~10x slower)"
    fallback = not (bf16 or int8)
    if fallback:
        note = (
            f"fast precision falls back to fp32 + blank skipping: CRAFT in {craft_why}, "
            "no VNNI instructions for an int8 LinkRefiner"
        )
    else:
        refiner_why = " + int8 LinkRefiner (its VNNI instructions)" if int8 else ""
        note = f"fast precision on this CPU: CRAFT in {craft_why}{refiner_why} + blank skipping"
    return FastPath(chosen, precision, True, label, note, fallback, int8)


@functools.lru_cache(maxsize=8)
def fast_path(device: str, backend: str) -> FastPath:
    """``choose_fast_path`` for this machine, decided and logged once per process."""
    flags = None if device.startswith("cuda") else cpu_flags()
    path = choose_fast_path(device, backend, flags)
    log = logger.warning if path.fallback else logger.info
    log("%s (recorded as '%s')", path.note, path.label)
    return path
