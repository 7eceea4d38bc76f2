"""Result types of the detector: plain frozen dataclasses, no torch inside."""

from __future__ import annotations

from dataclasses import dataclass, field

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Region:
    """One rotated text region, in original page pixels.

    ``polygon`` holds 4 corners clockwise from the top-left-most one (smallest x + y), as the
    reference CRAFT orders them. ``size`` is (width, height) where width is the length of the
    edge polygon[0] -> polygon[1]. ``angle`` is that edge's direction in degrees, measured
    clockwise on screen (image y points down), in [-90, 90). ``score`` is the mean character
    (text) score over the region's component pixels, in [0, 1].
    """

    polygon: tuple[Point, Point, Point, Point]
    center: Point
    size: tuple[float, float]
    angle: float
    score: float

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Axis-aligned (x_min, y_min, x_max, y_max) of the polygon, for range queries."""
        xs = [p[0] for p in self.polygon]
        ys = [p[1] for p in self.polygon]
        return min(xs), min(ys), max(xs), max(ys)


@dataclass(frozen=True, slots=True)
class StageTimings:
    """Seconds spent per stage for one page (batch stages are shared out per page)."""

    preprocess: float = 0.0
    forward: float = 0.0
    refine: float = 0.0
    postprocess: float = 0.0

    @property
    def total(self) -> float:
        """Sum of all stages."""
        return self.preprocess + self.forward + self.refine + self.postprocess


@dataclass(frozen=True, slots=True)
class PageResult:
    """Detection output for one input image."""

    width: int
    height: int
    regions: tuple[Region, ...]
    timings: StageTimings = field(default_factory=StageTimings)
    # Clockwise degrees the page's content is turned by (0, 90, 180, 270): 0 unless the
    # detector was asked to find it (``detect_orientation``); regions stay in the page's pixels.
    orientation: int = 0
