"""The public predictor on synthetic pages: edge cases, batching and timings."""

from __future__ import annotations

import numpy as np
import pytest

from craft import CraftPredictor, DetectorParams, PageResult, craft_predictor
from craft.zoo import _engine
from tests.craft.pages import rotate_page, text_page


@pytest.fixture(scope="module")
def predictor():
    return craft_predictor("default", device="cpu")


def test_blank_page_has_no_regions(predictor) -> None:
    [result] = predictor([np.full((300, 400, 3), 255, np.uint8)])
    assert result.regions == ()
    assert (result.width, result.height) == (400, 300)


def test_black_page_has_no_regions(predictor) -> None:
    [result] = predictor([np.zeros((64, 64, 3), np.uint8)])
    assert result.regions == ()


def test_text_lines_are_found_where_they_are_drawn(predictor) -> None:
    page = text_page(["Invoice number 12345", "Total amount due"])
    [result] = predictor([page])
    assert len(result.regions) == 2
    first, second = sorted(result.regions, key=lambda r: r.center[1])
    assert 30 <= first.center[1] <= 70 and 80 <= second.center[1] <= 120
    assert first.size[0] > 250 and 10 < first.size[1] < 60
    for r in result.regions:
        assert 0.0 <= r.score <= 1.0
        assert abs(r.angle) < 3


def test_one_character_page(predictor) -> None:
    page = text_page(["A"], size=(120, 120), scale=2.0, top=80)
    [result] = predictor([page])
    assert len(result.regions) == 1
    x0, y0, x1, y1 = result.regions[0].bounds
    assert x0 < 75 and x1 > 30 and y0 < 80 and y1 > 40


def test_rotated_text_gives_rotated_regions(predictor) -> None:
    page = rotate_page(text_page(["Rotated text line here"], size=(300, 640), top=160), 8)
    [result] = predictor([page])
    assert result.regions
    longest = max(result.regions, key=lambda r: r.size[0])
    assert longest.angle == pytest.approx(-8, abs=2.5)  # turned counter-clockwise on screen


@pytest.mark.parametrize(
    "shape", [(1, 1, 3), (5, 17, 3), (31, 31, 3), (20, 2000, 3), (3000, 16, 3)]
)
def test_tiny_and_extreme_aspect_pages_do_not_crash(predictor, shape: tuple[int, int, int]) -> None:
    [result] = predictor([np.full(shape, 255, np.uint8)])
    assert (result.height, result.width) == shape[:2]
    assert result.regions == ()


def test_extreme_aspect_strip_with_text(predictor) -> None:
    page = text_page(["A very long single line strip of text " * 3], size=(60, 2400), top=40)
    [result] = predictor([page])
    assert result.regions
    assert all(0 <= r.center[0] <= 2400 and 0 <= r.center[1] <= 60 for r in result.regions)


def test_pages_of_different_sizes_batch_together_and_keep_order() -> None:
    pages = [
        text_page(["First page"], size=(200, 300)),
        text_page(["Second page of another size"], size=(300, 500)),
        text_page(["Third"], size=(200, 300)),
    ]
    single = craft_predictor("default", device="cpu")
    batched = craft_predictor("default", device="cpu", batch_size=3)
    expected = [single([p])[0].regions for p in pages]
    results = batched(pages)
    assert [r.regions for r in results] == expected
    assert [(r.width, r.height) for r in results] == [(300, 200), (500, 300), (300, 200)]


def test_overlapped_post_processing_keeps_results_and_order(predictor) -> None:
    """The CUDA default (post-process batch k while k+1 runs), forced on here on the CPU."""
    pages = [
        text_page(["First page"], size=(200, 300)),
        text_page(["Second page of another size"], size=(300, 500)),
        text_page(["Third"], size=(200, 300)),
        np.full((100, 100, 3), 255, np.uint8),
    ]
    overlapped = CraftPredictor(predictor.backend, predictor.params, predictor.info, overlap=True)
    assert not predictor.overlap  # CPU default
    expected = [r.regions for r in predictor(pages)]
    assert [r.regions for r in overlapped(pages)] == expected


def test_overlapped_post_processing_error_reaches_the_caller(
    predictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    import craft.predictor as module

    calls = []

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("post-processing broke")
        return []

    monkeypatch.setattr(module, "maps_to_regions", failing)
    overlapped = CraftPredictor(predictor.backend, predictor.params, predictor.info, overlap=True)
    pages = [np.full((64, 64 * (i + 1), 3), 255, np.uint8) for i in range(3)]
    with pytest.raises(RuntimeError, match="post-processing broke"):
        overlapped(pages)


def test_every_result_carries_stage_timings(predictor) -> None:
    [result] = predictor([text_page(["Timing"])])
    assert isinstance(result, PageResult)
    t = result.timings
    assert t.preprocess > 0 and t.forward > 0 and t.refine > 0 and t.postprocess > 0
    assert t.total == pytest.approx(t.preprocess + t.forward + t.refine + t.postprocess)


def test_without_refiner_no_refine_time() -> None:
    [result] = craft_predictor("words", device="cpu")([text_page(["Words only"])])
    assert result.timings.refine == 0 or result.timings.refine < 1e-3


def test_words_preset_splits_lines_into_words(predictor) -> None:
    page = text_page(["alpha beta gamma"], size=(120, 640))
    lines = predictor([page])[0].regions
    words = craft_predictor("words", device="cpu")([page])[0].regions
    assert len(lines) == 1 and len(words) == 3


def test_grayscale_input_is_a_clear_error(predictor) -> None:
    with pytest.raises(ValueError, match="3-channel"):
        predictor([np.zeros((50, 50), np.uint8)])


def test_engines_are_reused_across_predictors() -> None:
    a = craft_predictor("default", device="cpu")
    b = craft_predictor("words", device="cpu", score_threshold=0.6)
    assert a.backend is b.backend
    assert _engine.cache_info().currsize >= 1


def test_params_and_model_info() -> None:
    p = craft_predictor("words", device="cpu", width=960)
    assert p.params == DetectorParams.preset("words", width=960, device="cpu")
    assert p.info.refiner is None and p.info.model == "craft_mlt_25k"
    assert p.info.backend == "onnxruntime" and p.info.device == "cpu"
    assert len(p.info.model_sha256) == 64
