"""Post-processing on helper threads: the same regions in the same order as inline, bounded."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from craft import CraftPredictor, PageResult, craft_predictor
from craft.backends import ScoreMaps
from tests.craft.pages import mixed_pages, text_page


@pytest.fixture(scope="module")
def pages() -> list[np.ndarray]:
    return mixed_pages()


@pytest.fixture(scope="module")
def inline() -> CraftPredictor:
    return craft_predictor("default", device="cpu", batch_size=2)


@pytest.fixture(scope="module")
def expected(inline: CraftPredictor, pages: list[np.ndarray]) -> list[PageResult]:
    assert inline.post_threads == 0  # the CPU default
    results = inline(pages)
    assert any(r.orientation for r in results)  # the upright pass runs on a helper thread
    return results


@pytest.mark.parametrize("threads", [3])
def test_threads_give_the_inline_regions_in_order(
    inline: CraftPredictor, pages: list[np.ndarray], expected: list[PageResult], threads: int
) -> None:
    threaded = CraftPredictor(inline.backend, inline.params, inline.info, post_threads=threads)
    found = threaded(pages)
    assert [r.regions for r in found] == [r.regions for r in expected]
    assert [r.orientation for r in found] == [r.orientation for r in expected]


def test_a_stream_gives_each_call_its_results_in_order(
    inline: CraftPredictor, pages: list[np.ndarray], expected: list[PageResult]
) -> None:
    threaded = CraftPredictor(inline.backend, inline.params, inline.info, post_threads=2)
    calls = [pages[:3], [], pages[3:], pages[:2][::-1]]
    streamed = [[r.regions for r in res] for res in threaded.predict_stream(iter(calls))]
    want = [r.regions for r in expected]
    assert streamed == [want[:3], [], want[3:], want[:2][::-1]]


def test_overlap_is_the_on_off_form_of_post_threads() -> None:
    p = craft_predictor("words", device="cpu")
    assert not p.overlap and p.post_threads == 0
    p.overlap = True
    assert p.post_threads >= 1
    p.overlap = False
    assert p.post_threads == 0
    assert CraftPredictor(p.backend, p.params, p.info, overlap=True).post_threads >= 1
    with pytest.raises(ValueError, match="post_threads"):
        CraftPredictor(p.backend, p.params, p.info, post_threads=-1)


class _GatedBackend:
    """Delegates to a real engine and counts forward passes."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.name, self.device, self.precision = "gated", "cpu", "fp32"
        self.calls = 0
        self.overran = threading.Event()
        self.limit = 0

    def run(self, batch: np.ndarray, with_refiner: bool) -> ScoreMaps:
        raise NotImplementedError

    def run_pixels(self, pixels: np.ndarray, with_refiner: bool) -> ScoreMaps:
        self.calls += 1
        if self.calls > self.limit:
            self.overran.set()
        return self.inner.run_pixels(pixels, with_refiner)  # type: ignore[attr-defined]


def test_forward_passes_wait_while_post_processing_is_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Post-processing of the first page is held: with 2 threads and batches of one page,
    at most 2 pages wait, so exactly 2 forward passes run until it is released."""
    import craft.predictor as module

    base = craft_predictor("words", device="cpu", detect_orientation=False)
    backend = _GatedBackend(base.backend)
    backend.limit = 2
    gate, entered = threading.Event(), threading.Event()
    real = module.maps_to_regions

    def held(*args, **kwargs):  # type: ignore[no-untyped-def]
        entered.set()
        gate.wait()
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "maps_to_regions", held)
    threaded = CraftPredictor(backend, base.params, base.info, post_threads=2)
    pages = [text_page([f"Page {i}"], size=(96, 160)) for i in range(6)]
    out: list[list[object]] = []
    worker = threading.Thread(target=lambda: out.extend(threaded.predict_stream([pages])))
    worker.start()
    try:
        assert entered.wait(60)
        # A third forward pass here would break the bound; give it time to happen.
        assert not backend.overran.wait(1.0)
        assert backend.calls == 2
    finally:
        gate.set()
        worker.join(60)
    assert backend.calls == 6 and len(out) == 1 and len(out[0]) == 6
