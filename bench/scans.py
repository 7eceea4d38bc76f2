"""Small one-page scans for benchmarks: ~600 px crops of real pages, grey and noisy like a phone.

The inbox's everyday load is many small one-page documents (receipts, notes, photographed
letters), not long PDFs; ``make_scans`` makes such a folder from pages this repository has: the
bundled samples (``samples/natnotes.pdf`` at 150 DPI, ``samples/memo.jpg``) and, where present,
the golden pages (``$OCRFLOW_GOLDEN_DIR``, default ``../shared/golden``). Each scan is a crop
with text in it, scaled to a long side of about 600 px, turned by up to 2 degrees, lit
unevenly, grey with sensor noise and a little blur, saved as JPEG (2 of 3) or PNG. Every file
differs in content (its own noise), so each is a distinct document; the same ``seed`` gives
the same files.

    python bench/scans.py out/ 50      # or, in a bench script: from scans import make_scans
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
GOLDEN = Path(os.environ.get("OCRFLOW_GOLDEN_DIR", REPO.parent / "shared" / "golden"))
LONG_SIDE = 600  # px, +- 10 %

__all__ = ["make_scans", "source_pages"]


@functools.cache
def source_pages() -> tuple[np.ndarray, ...]:
    """The pages scans are cut from (BGR): the sample PDF's six, the memo, the golden images."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from ingest import Document, IngestOptions, discover, iter_pages
    from ingest.pages import Page

    pages: list[np.ndarray] = []
    for doc in discover([str(SAMPLES / "natnotes.pdf")]):
        assert isinstance(doc, Document), doc
        pages += [p.image for p in iter_pages(doc, IngestOptions(dpi=150)) if isinstance(p, Page)]
    images = [SAMPLES / "memo.jpg"]
    images += [GOLDEN / f"{n}.png" for n in ("page", "rotated", "small")]
    pages += [im for im in (cv2.imread(str(p), cv2.IMREAD_COLOR) for p in images) if im is not None]
    return tuple(pages)


def _crop_with_text(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A window of a third to two thirds of the page with the most ink of a few tries."""
    h, w = page.shape[:2]
    grey = cv2.cvtColor(page, cv2.COLOR_BGR2GRAY)
    best, best_ink = page, -1.0
    for _ in range(6):
        ch = int(h * rng.uniform(0.33, 0.66)) if h > 700 else h
        cw = int(w * rng.uniform(0.4, 0.8)) if w > 700 else w
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        ink = float((grey[y : y + ch, x : x + cw] < 128).mean())
        if ink > best_ink:
            best, best_ink = page[y : y + ch, x : x + cw], ink
    return best


def _degrade(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scale to ~600 px, turn slightly, light unevenly, grey, noise and blur: a phone scan."""
    h, w = crop.shape[:2]
    scale = LONG_SIDE * rng.uniform(0.9, 1.1) / max(h, w)
    img = cv2.resize(
        crop, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
    )
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    h, w = grey.shape
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(-2.0, 2.0)), 1.0)
    grey = np.asarray(
        cv2.warpAffine(grey, turn, (w, h), borderMode=cv2.BORDER_REPLICATE), np.float32
    )
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h) * rng.uniform(20, 50)
    grey = grey * rng.uniform(0.8, 0.95) + ramp + rng.uniform(5, 20)
    grey += rng.normal(0.0, rng.uniform(4, 10), grey.shape).astype(np.float32)
    grey = cv2.GaussianBlur(grey, (3, 3), float(rng.uniform(0.3, 0.9)))
    return np.clip(grey, 0, 255).astype(np.uint8)


def make_scans(folder: str | os.PathLike[str], n: int, seed: int = 0) -> list[Path]:
    """Write ``n`` distinct small one-page scans into ``folder`` (created); return their paths.

    Files are ``scan-0000.jpg``, ``scan-0001.jpg``, ``scan-0002.png``, ... cycling through the
    source pages, so any ``n`` mixes dense PDF text, the photographed memo and the golden crops.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    pages = source_pages()
    rng = np.random.default_rng(seed)
    paths: list[Path] = []
    for i in range(n):
        scan = _degrade(_crop_with_text(pages[i % len(pages)], rng), rng)
        if i % 3 == 2:
            path = out / f"scan-{i:04d}.png"
            cv2.imwrite(str(path), scan)
        else:
            path = out / f"scan-{i:04d}.jpg"
            cv2.imwrite(str(path), scan, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 92))])
        paths.append(path)
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python bench/scans.py FOLDER N")
    for made in make_scans(sys.argv[1], int(sys.argv[2])):
        print(made)
