"""The replay detector: recorded maps back for the same input, in the given time, installed
for every ``craft_predictor`` caller inside ``replaying`` only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from craft import DetectorParams, craft_predictor
from craft.preprocess import stack_pages
from craft.replay import Recording, ReplayBackend, replaying
from tests.craft.pages import text_page

PAGE = text_page(["Replay this line", "and this one"], size=(160, 360))
PARAMS = DetectorParams.preset("default", device="cpu")


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    rec = Recording.open(tmp_path_factory.mktemp("replay"))
    assert rec.record([PAGE], PARAMS) == 1
    return rec


def test_recorded_maps_persist_and_are_not_recorded_twice(recording: Recording) -> None:
    again = Recording(recording.folder)
    assert len(again) == 1
    assert again.record([PAGE], PARAMS) == 0
    assert not list(recording.folder.glob(".*"))  # no temporary file left behind


def test_replayed_regions_are_the_real_detectors(recording: Recording) -> None:
    real = craft_predictor(params=PARAMS)([PAGE])[0]
    with replaying(recording, seconds_per_page=0) as engine:
        predictor = craft_predictor(params=PARAMS)
        assert isinstance(predictor.backend, ReplayBackend)
        assert craft_predictor(params=PARAMS) is predictor  # one per parameter set
        [replayed] = predictor([PAGE])
    assert (engine.pages, engine.misses) == (1, 0)
    assert predictor.info.backend == "replay" and predictor.overlap
    assert len(replayed.regions) == len(real.regions) == 2
    for a, b in zip(replayed.regions, real.regions, strict=True):  # maps stored as float16
        assert np.allclose(a.polygon, b.polygon, atol=1.0)
    assert not isinstance(craft_predictor(params=PARAMS).backend, ReplayBackend)


def test_an_unrecorded_size_gets_real_maps_of_the_closest_size(recording: Recording) -> None:
    pixels, _ = stack_pages([text_page(["Other"], size=(220, 500))], 1280, 1.5)
    (text, link, refined), exact = recording.lookup(pixels[0])
    assert not exact
    assert text.shape == link.shape == refined.shape == (pixels.shape[1] // 2, pixels.shape[2] // 2)
    assert text.dtype == np.float32 and text.max() > 0.5  # characters, not an empty map


def test_a_batch_takes_seconds_per_page_times_its_pages(recording: Recording) -> None:
    engine = ReplayBackend(recording, seconds_per_page=0.05)
    pixels, _ = stack_pages([PAGE, PAGE], 1280, 1.5)
    maps = engine.run_pixels(pixels, with_refiner=False)
    assert maps.forward_s >= 0.1 and maps.refined_link is None
    assert maps.text.shape == (2, pixels.shape[1] // 2, pixels.shape[2] // 2)
    with pytest.raises(ValueError, match="seconds_per_page"):
        ReplayBackend(recording, seconds_per_page=-1)


def test_recording_needs_a_real_engine(recording: Recording, tmp_path: Path) -> None:
    with replaying(recording), pytest.raises(ValueError, match="real engine"):
        Recording(tmp_path).record([PAGE], PARAMS)
    with pytest.raises(LookupError, match="empty"):
        Recording(tmp_path).lookup(np.zeros((64, 64, 3), np.uint8))
