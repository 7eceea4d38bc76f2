"""JSON-ready records of detection results (the ``ocrflow detect --json`` format)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from craft.types import PageResult, Region

__all__ = ["page_record", "region_record"]


def region_record(region: Region) -> dict[str, Any]:
    """One region as plain JSON types; polygon points as [x, y] pairs."""
    return {
        "polygon": [list(p) for p in region.polygon],
        "center": list(region.center),
        "size": list(region.size),
        "angle": region.angle,
        "score": region.score,
    }


def page_record(source: str, page: int, result: PageResult) -> dict[str, Any]:
    """One page: where it came from, its size and orientation, regions and per-stage seconds."""
    timings = {k: round(v, 6) for k, v in asdict(result.timings).items()}
    return {
        "source": source,
        "page": page,
        "width": result.width,
        "height": result.height,
        "orientation": result.orientation,
        "regions": [region_record(r) for r in result.regions],
        "timings": timings,
    }
