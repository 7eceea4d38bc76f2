"""Bundled sample documents for ``ocrflow demo`` (see samples/README.md for licences)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["sample_paths"]


def sample_paths() -> list[Path]:
    """The bundled PDF and photo, as paths on disk."""
    root = files("samples")
    return [Path(str(root.joinpath(name))) for name in ("natnotes.pdf", "memo.jpg")]
