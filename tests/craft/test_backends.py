"""Engines: the ONNX arena policy keeps maps exact, and CPU hosts never import torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from craft.backends import cpu_flags, gpu_device_present, resolve_device, slow_cpu_precision
from craft.onnx_backend import OnnxBackend
from craft.preprocess import normalise
from craft.weights_store import resolve_weights
from craft.zoo import CRAFT_WEIGHTS, REFINER_WEIGHTS, ensure_onnx, load_craft


@pytest.fixture(scope="module")
def onnx_backend() -> OnnxBackend:
    craft_onnx, refiner_onnx = ensure_onnx(
        resolve_weights(CRAFT_WEIGHTS), resolve_weights(REFINER_WEIGHTS)
    )
    return OnnxBackend(craft_onnx, refiner_onnx)


def _batch(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 3, h, w)).astype(np.float32)


def test_maps_do_not_depend_on_what_ran_before(onnx_backend: OnnxBackend) -> None:
    """Warm arena memory, an emptied arena and a fresh shape must all give the same maps."""
    a, b = _batch(96, 160, 1), _batch(128, 96, 2)
    first = onnx_backend.run(a, with_refiner=True)
    again = onnx_backend.run(a, with_refiner=True)  # warm memory, same shape
    other = onnx_backend.run(b, with_refiner=True)  # new shape: arena emptied first
    back = onnx_backend.run(a, with_refiner=True)  # and emptied again
    for maps in (again, back):
        np.testing.assert_array_equal(maps.text, first.text)
        np.testing.assert_array_equal(maps.link, first.link)
        assert maps.refined_link is not None and first.refined_link is not None
        np.testing.assert_array_equal(maps.refined_link, first.refined_link)
    assert other.text.shape == (1, 64, 48)


def test_arena_is_emptied_only_when_the_shape_changes(
    onnx_backend: OnnxBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    shrinks: list[str] = []
    real_run = onnx_backend._craft.run

    def spy(outputs, feeds, options=None):  # type: ignore[no-untyped-def]
        if options is not None:
            shrinks.append(options.get_run_config_entry("memory.enable_memory_arena_shrinkage"))
        return real_run(outputs, feeds, options)

    monkeypatch.setattr(onnx_backend._craft, "run", spy)
    onnx_backend.run(_batch(64, 64, 3), with_refiner=False)
    onnx_backend.run(_batch(64, 64, 4), with_refiner=False)
    assert len(shrinks) <= 1  # at most the change from the previous test's shape
    shrinks.clear()
    onnx_backend.run(_batch(64, 96, 5), with_refiner=False)
    assert shrinks == ["cpu:0"]


def test_engines_normalise_pixels_exactly_as_numpy(onnx_backend: OnnxBackend) -> None:
    """``run_pixels`` (the predictor's entry) gives the maps of ``run`` on the numpy input."""
    from craft.torch_backend import TorchBackend

    pixels = np.random.default_rng(6).integers(0, 256, (2, 64, 96, 3), np.uint8)
    via_pixels = onnx_backend.run_pixels(pixels, with_refiner=True)
    direct = onnx_backend.run(normalise(pixels), with_refiner=True)
    np.testing.assert_array_equal(via_pixels.text, direct.text)
    np.testing.assert_array_equal(via_pixels.refined_link, direct.refined_link)
    assert via_pixels.preprocess_s > 0 and direct.preprocess_s == 0
    torch_engine = TorchBackend(load_craft(resolve_weights(CRAFT_WEIGHTS)), None)
    np.testing.assert_array_equal(torch_engine.device_input(pixels).numpy(), normalise(pixels))


def test_gpu_probe_reads_driver_nodes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = tmp_path / "nvidiactl"
    assert not gpu_device_present((str(node),))
    node.touch()
    assert gpu_device_present((str(node),))


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma avx512_bf16\n\nprocessor\t: 1\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\n")
    assert cpu_flags(x86) == frozenset({"fpu", "avx2", "fma", "avx512_bf16"})
    assert "asimd" in (cpu_flags(arm) or ())
    assert slow_cpu_precision("bf16", cpu_flags(arm)) is None  # Arm's own bf16 flag counts
    assert cpu_flags(tmp_path / "missing") is None


def test_low_precision_is_flagged_only_without_its_instructions() -> None:
    avx2 = frozenset({"avx2", "fma"})
    assert "without bf16 instructions" in (slow_cpu_precision("bf16", avx2) or "")
    assert "without fp16 instructions" in (slow_cpu_precision("fp16", avx2) or "")
    assert slow_cpu_precision("bf16", avx2 | {"amx_bf16"}) is None
    assert slow_cpu_precision("fp16", avx2 | {"avx512_fp16"}) is None
    assert slow_cpu_precision("fp32", avx2) is None
    assert slow_cpu_precision("bf16", None) is None  # unknown CPU: no guess


def test_torch_engine_warns_before_crawling_at_bf16_on_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from craft import torch_backend
    from craft.model import CRAFT

    craft = CRAFT()
    monkeypatch.setattr(torch_backend, "cpu_flags", lambda: frozenset({"avx2"}))
    with pytest.warns(RuntimeWarning, match="about 10x slower than fp32"):
        torch_backend.TorchBackend(craft, None, device="cpu", precision="bf16")
    monkeypatch.setattr(torch_backend, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch_backend.TorchBackend(craft, None, device="cpu", precision="bf16")


def test_unknown_device_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")


def test_cpu_detection_never_imports_torch() -> None:
    """A CPU worker with the ONNX cache in place runs the detector without loading torch."""
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        from craft.backends import gpu_device_present
        from craft.zoo import craft_predictor
        predictor = craft_predictor("default")
        [page] = predictor([np.full((64, 96, 3), 255, np.uint8)])
        print(predictor.info.backend, gpu_device_present(), "torch" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    ).stdout.split()
    backend, gpu, torch_loaded = out[-3:]
    if gpu == "True":  # a GPU host legitimately asks torch whether CUDA works
        assert backend in ("torch", "onnxruntime")
    else:
        assert (backend, torch_loaded) == ("onnxruntime", "False")
