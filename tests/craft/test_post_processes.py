"""Post-processing in worker processes: the inline regions, in order, from the same maps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from craft import CraftPredictor, PageResult, craft_predictor
from craft.predictor import ModelInfo
from tests.craft.pages import mixed_pages

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pages() -> list[np.ndarray]:
    return mixed_pages()


@pytest.fixture(scope="module")
def inline() -> CraftPredictor:
    return craft_predictor("default", device="cpu", batch_size=2)


@pytest.fixture(scope="module")
def expected(inline: CraftPredictor, pages: list[np.ndarray]) -> list[PageResult]:
    assert inline.post_processes == 0  # the CPU default
    results = inline(pages)
    assert any(r.orientation for r in results)
    return results


@pytest.fixture(scope="module")
def in_processes(inline: CraftPredictor) -> Iterator[CraftPredictor]:
    predictor = CraftPredictor(inline.backend, inline.params, inline.info, post_processes=2)
    yield predictor
    predictor.close()


def test_processes_give_the_inline_regions_in_order(
    in_processes: CraftPredictor, pages: list[np.ndarray], expected: list[PageResult]
) -> None:
    found = in_processes(pages)
    assert [r.regions for r in found] == [r.regions for r in expected]
    assert [r.orientation for r in found] == [r.orientation for r in expected]
    assert [(r.width, r.height) for r in found] == [(r.width, r.height) for r in expected]
    assert all(r.timings.postprocess > 0 for r in found if r.regions)


def test_a_stream_keeps_each_call_in_order_and_reuses_the_workers(
    in_processes: CraftPredictor, pages: list[np.ndarray], expected: list[PageResult]
) -> None:
    calls = [pages[:3], [], pages[3:], pages[:2][::-1]]
    streamed = [[r.regions for r in res] for res in in_processes.predict_stream(iter(calls))]
    want = [r.regions for r in expected]
    assert streamed == [want[:3], [], want[3:], want[:2][::-1]]
    pool = in_processes._processes
    in_processes(pages[:1])
    assert in_processes._processes is pool  # one pool for the predictor's life


@pytest.mark.parametrize("preset", ["words", "lines"])
def test_other_presets_match_inline(
    preset: Literal["words", "lines"], pages: list[np.ndarray]
) -> None:
    """Without the refiner (words) and without page pixels (lines: no tight boxes, no
    orientation, so the page is not sent)."""
    base = craft_predictor(preset, device="cpu")
    procs = CraftPredictor(base.backend, base.params, base.info, post_processes=1)
    try:
        assert [r.regions for r in procs(pages)] == [r.regions for r in base(pages)]
    finally:
        procs.close()


def test_killed_workers_are_replaced_and_their_pages_sent_again(
    in_processes: CraftPredictor, pages: list[np.ndarray], expected: list[PageResult]
) -> None:
    in_processes(pages[:1])  # workers up
    pool = in_processes._process_pool()._executor()
    for pid in list(pool._processes):  # the only way to reach the workers
        os.kill(pid, signal.SIGKILL)
    assert [r.regions for r in in_processes(pages)] == [r.regions for r in expected]
    assert in_processes._process_pool()._executor() is not pool


def test_without_room_in_dev_shm_pages_are_pickled_to_the_workers(
    inline: CraftPredictor,
    pages: list[np.ndarray],
    expected: list[PageResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full /dev/shm (a container's 64 MB) must not crash the caller with SIGBUS."""
    from craft import post_processes

    monkeypatch.setattr(post_processes, "_shm_room", lambda: 0)
    procs = CraftPredictor(inline.backend, inline.params, inline.info, post_processes=1)
    try:
        assert [r.regions for r in procs(pages)] == [r.regions for r in expected]
        assert procs._process_pool()._blocks._all == {}  # nothing went through shared memory
    finally:
        procs.close()


def test_a_page_that_kills_every_worker_it_reaches_fails(
    in_processes: CraftPredictor, pages: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures.process import BrokenProcessPool

    from craft import post_processes

    monkeypatch.setattr(post_processes, "_post", _die)
    with pytest.raises(BrokenProcessPool):
        in_processes(pages[:1])
    monkeypatch.undo()
    assert len(in_processes(pages[:1])) == 1


def _die(payload: object) -> None:
    os._exit(3)


def test_the_cuda_default_is_processes_and_settings_are_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = craft_predictor("words", device="cpu")
    cuda = ModelInfo("m", "0" * 64, None, None, "torch", "cuda:0", "bf16")
    for cores, processes, threads in [(16, 15, 0), (3, 2, 0), (2, 0, 2), (1, 0, 1)]:
        monkeypatch.setenv("OCRFLOW_THREADS", str(cores))
        on_gpu = CraftPredictor(p.backend, p.params, cuda)
        assert (on_gpu.post_processes, on_gpu.post_threads) == (processes, threads)
    monkeypatch.setenv("OCRFLOW_THREADS", "4")
    on_gpu = CraftPredictor(p.backend, p.params, cuda)
    assert on_gpu.post_processes == 3 and on_gpu.overlap
    assert CraftPredictor(p.backend, p.params, cuda, post_threads=3).post_processes == 0
    assert CraftPredictor(p.backend, p.params, cuda, overlap=True).post_processes == 0
    assert CraftPredictor(p.backend, p.params, p.info).post_processes == 0
    with pytest.raises(ValueError, match="not both"):
        CraftPredictor(p.backend, p.params, p.info, post_threads=1, post_processes=1)
    with pytest.raises(ValueError, match="post_processes"):
        CraftPredictor(p.backend, p.params, p.info, post_processes=-1)
    on_gpu.overlap = False
    assert on_gpu.post_processes == 0 and not on_gpu.overlap


UNGUARDED_SCRIPT = """
import numpy as np
from craft.backends import ScoreMaps
from craft.params import DetectorParams
from craft.post_processes import PostProcessPool
from craft.preprocess import Prepared

print("top-level code ran", flush=True)
pool = PostProcessPool(DetectorParams.preset("lines"), 2)
text = np.zeros((1, 32, 32), np.float32)
text[0, 8:20, 4:28] = 0.9
maps = ScoreMaps(text, text.copy(), text.copy(), 0.0, 0.0)
meta = Prepared(64, 64, 1.0, (64, 64), (64, 64))
futures = [pool.submit(maps, 0, meta, 0.0, np.zeros((64, 64, 3), np.uint8)) for _ in range(4)]
print("regions", [len(f.result().result.regions) for f in futures], flush=True)
pool.close()
"""


def test_workers_do_not_run_the_callers_unguarded_script(tmp_path: Path) -> None:
    """A script without a main guard must not run again in each worker (spawn would import
    it there), and the workers still post-process."""
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("top-level code ran") == 1, done.stdout
    assert "regions [1, 1, 1, 1]" in done.stdout, done.stdout
