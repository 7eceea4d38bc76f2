"""Build ocrflow's accuracy dev set from born-digital PDFs installed by Debian packages.

Nothing is committed but this manifest: the pages are rendered at 150 dpi with poppler
(``pdftoppm``), and the ground truth comes from the PDFs' own text layer
(``pdftotext -bbox-layout``):

- words and lines with their **font boxes** (the text layer's boxes; a line is split where the
  gap between two words exceeds 1.5 line heights, as a detector splits table cells, and at dot
  leaders; punctuation belongs to its line);
- **ink boxes**: each font box shrunk to its dark pixels on the rendered page;
- **don't-care** regions: words with no letter or digit (bullets, rules, dot leaders), words
  with a run of dots inside (``Title.....3``) and words without ink (hidden or white text).

Ten pages also get nine scan-like variants (quarter turns, +-10 degrees, blur, JPEG, noise, low
contrast) with the ground truth moved by the same transform. Everything is deterministic.

The held-out sets stay out: the documentation of texlive, R, glpk, reportlab, libtasn1 and
shared-mime-info, the bundled samples and the golden pages.

    apt-get install camlidl-doc siscone-doc-pdf auto-multiple-choice-doc-pdf \
        gri-pdf-doc freefem-doc why3-doc-pdf
    python bench/devset.py [--out DIR]     # default: $OCRFLOW_CACHE_DIR/devset
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DPI = 150
INK_LEVEL = 160  # gray value at or below which a rendered pixel is ink
LINE_GAP = 1.5  # a gap wider than this many line heights splits a line (table cells, tabs)
DOC = "/usr/share/doc"

# (Debian package, file, pages): 25 pages of manuals, references and exam forms.
MANIFEST: list[tuple[str, str, tuple[int, ...]]] = [
    ("camlidl-doc", f"{DOC}/camlidl/camlidl-1.04.doc.pdf", (2, 3, 5, 8, 12)),
    ("auto-multiple-choice-doc-pdf", f"{DOC}/auto-multiple-choice/auto-multiple-choice.en.pdf",
     (12, 20, 30, 45)),
    ("auto-multiple-choice-doc-pdf", f"{DOC}/auto-multiple-choice/latex/sample-amc.pdf", (2, 8)),
    ("freefem-doc", f"{DOC}/freefem-doc/freefem.pdf", (3, 12, 30, 45)),
    ("why3-doc-pdf", f"{DOC}/why3-doc-pdf/manual.pdf", (20, 30, 45, 60)),
    ("gri-pdf-doc", f"{DOC}/gri/gri.pdf.gz", (30, 45, 90)),
    ("siscone-doc-pdf", f"{DOC}/siscone-doc-pdf/pdf/refman.pdf.gz", (20, 45, 90)),
]  # fmt: skip

# Pages (by id) that get the scan-like variants: at least one of each document.
VARIANT_PAGES = (
    "camlidl-1-04-p8", "auto-multiple-choice-en-p20", "sample-amc-p2", "freefem-p12",
    "manual-p20", "gri-p30", "gri-p45", "refman-p45", "camlidl-1-04-p12", "freefem-p3",
)  # fmt: skip
VARIANTS = ("rot90", "rot180", "rot270", "rot+10", "rot-10", "blur", "jpeg", "noise", "contrast")


@dataclass
class Box:
    """One ground-truth region: a quad in page pixels (clockwise from top-left), both boxes."""

    font: np.ndarray  # (4, 2) float
    ink: np.ndarray | None  # (4, 2) float, None when the region has no ink
    text: str
    dont_care: bool

    def to_json(self) -> dict:
        """Plain lists, rounded to 0.01 px."""
        return {
            "font": np.round(self.font, 2).tolist(),
            "ink": None if self.ink is None else np.round(self.ink, 2).tolist(),
            "text": self.text,
            "dont_care": self.dont_care,
        }


def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """An axis-aligned box as a clockwise quad from its top-left corner."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def page_id(path: str, page: int) -> str:
    """A short stable id: the file's stem (without .pdf/.gz and 'doc' noise) and the page."""
    stem = Path(path).name.removesuffix(".gz").removesuffix(".pdf").removesuffix(".doc")
    return f"{stem.replace('.', '-')}-p{page}"


def ink_box(dark: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray | None:
    """The font box shrunk to the ink inside it (None without ink)."""
    h, w = dark.shape
    ix0, iy0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
    ix1, iy1 = min(int(np.ceil(x1)), w), min(int(np.ceil(y1)), h)
    if ix1 <= ix0 or iy1 <= iy0:
        return None
    crop = dark[iy0:iy1, ix0:ix1]
    rows, cols = np.flatnonzero(crop.any(axis=1)), np.flatnonzero(crop.any(axis=0))
    if rows.size == 0:
        return None
    return rect(ix0 + cols[0], iy0 + rows[0], ix0 + cols[-1] + 1, iy0 + rows[-1] + 1)


_DOTS = re.compile(r"[.·…]{3,}|(\. ){2,}")


def is_dont_care(text: str) -> bool:
    """Text a detector cannot fairly be scored on: no letter or digit, or dot leaders."""
    return not any(c.isalnum() for c in text) or bool(_DOTS.search(text))


def union(quads: list[np.ndarray]) -> np.ndarray:
    """Axis-aligned union of upright quads."""
    pts = np.concatenate(quads)
    return rect(*pts.min(axis=0), *pts.max(axis=0))


def parse_page(xhtml: str, dark: np.ndarray, scale: float) -> tuple[list[Box], list[Box]]:
    """Words and lines (font and ink boxes, don't-care flags) of one ``-bbox-layout`` page."""
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    root = ET.fromstring(xhtml)
    words: list[Box] = []
    lines: list[Box] = []
    for line in root.iterfind(".//h:line", ns):
        segment: list[Box] = []
        prev_x1: float | None = None
        line_words = []
        for w in line.iterfind("h:word", ns):
            x0, y0, x1, y1 = (float(w.attrib[k]) * scale for k in ("xMin", "yMin", "xMax", "yMax"))
            text = (w.text or "").strip()
            ink = ink_box(dark, x0, y0, x1, y1)
            box = Box(rect(x0, y0, x1, y1), ink, text, is_dont_care(text) or ink is None)
            words.append(box)
            line_words.append(box)
        for box in line_words:
            x0, y0 = box.font[0]
            x1, y1 = box.font[2]
            leader = bool(_DOTS.search(box.text)) or box.ink is None
            if leader or (prev_x1 is not None and x0 - prev_x1 > LINE_GAP * (y1 - y0)):
                lines.extend(_line(segment))
                segment = []
            if leader:
                lines.append(box)
                prev_x1 = None
                continue
            segment.append(box)
            prev_x1 = x1
        lines.extend(_line(segment))
    return words, lines


def _line(segment: list[Box]) -> list[Box]:
    """One line from consecutive words; punctuation belongs to it, but alone is don't-care."""
    if not segment:
        return []
    inks = [b.ink for b in segment if b.ink is not None]
    return [
        Box(
            union([b.font for b in segment]),
            union(inks) if inks else None,
            " ".join(b.text for b in segment),
            all(b.dont_care for b in segment),
        )
    ]


def pdf_file(path: str, tmp: Path) -> Path:
    """The PDF itself, or its gunzipped copy in ``tmp``."""
    if not Path(path).exists():
        raise SystemExit(f"{path} is missing: apt-get install the packages named in {__file__}")
    if not path.endswith(".gz"):
        return Path(path)
    out = tmp / Path(path).name.removesuffix(".gz")
    if not out.exists():
        with gzip.open(path, "rb") as src, out.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    return out


def render(pdf: Path, page: int, tmp: Path) -> np.ndarray:
    """The page at ``DPI`` as a BGR array."""
    prefix = tmp / "render"
    subprocess.run(
        ["pdftoppm", "-r", str(DPI), "-f", str(page), "-l", str(page), "-png", "-singlefile",
         str(pdf), str(prefix)],
        check=True,
    )  # fmt: skip
    image = cv2.imread(f"{prefix}.png", cv2.IMREAD_COLOR)
    assert image is not None
    return image


def text_layer(pdf: Path, page: int) -> str:
    """``pdftotext -bbox-layout`` of one page."""
    return subprocess.run(
        ["pdftotext", "-bbox-layout", "-f", str(page), "-l", str(page), str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def transform(kind: str, image: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A scan-like variant and the 2x3 affine moving page points onto it (None: unmoved)."""
    h, w = image.shape[:2]
    rng = np.random.default_rng(seed)
    if kind in ("rot90", "rot180", "rot270"):
        turns = {"rot90": cv2.ROTATE_90_CLOCKWISE, "rot180": cv2.ROTATE_180,
                 "rot270": cv2.ROTATE_90_COUNTERCLOCKWISE}  # fmt: skip
        out = cv2.rotate(image, turns[kind])
        rows = {
            "rot90": [[0, -1, h], [1, 0, 0]],
            "rot180": [[-1, 0, w], [0, -1, h]],
            "rot270": [[0, 1, 0], [-1, 0, w]],
        }[kind]
        return out, np.array(rows, dtype=np.float64)
    if kind in ("rot+10", "rot-10"):
        angle = 10.0 if kind == "rot+10" else -10.0  # counter-clockwise on screen for +
        m = np.asarray(cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0), dtype=np.float64)
        cos, sin = abs(m[0, 0]), abs(m[0, 1])
        nw, nh = int(np.ceil(h * sin + w * cos)), int(np.ceil(h * cos + w * sin))
        m[0, 2] += nw / 2 - w / 2
        m[1, 2] += nh / 2 - h / 2
        out = cv2.warpAffine(image, m, (nw, nh), flags=cv2.INTER_LINEAR,
                             borderValue=(255, 255, 255))  # fmt: skip
        return out, m
    if kind == "blur":
        return cv2.GaussianBlur(image, (0, 0), 1.2), None
    if kind == "jpeg":
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 20])
        assert ok
        return np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)), None
    if kind == "noise":
        noisy = image.astype(np.float32) + rng.normal(0.0, 20.0, image.shape).astype(np.float32)
        return np.clip(noisy, 0, 255).astype(np.uint8), None
    if kind == "contrast":
        return (image.astype(np.float32) * 0.35 + 110.0).astype(np.uint8), None
    raise ValueError(f"unknown variant '{kind}'")


def move(boxes: list[dict], m: np.ndarray | None) -> list[dict]:
    """Ground truth moved by the variant's affine (corners stay in the same order)."""
    if m is None:
        return boxes
    out = []
    for b in boxes:
        moved = dict(b)
        for key in ("font", "ink"):
            if b[key] is not None:
                pts = np.asarray(b[key], dtype=np.float64)
                moved[key] = np.round(pts @ m[:, :2].T + m[:, 2], 2).tolist()
        out.append(moved)
    return out


def pages() -> Iterator[tuple[str, str, int]]:
    """(id, file, page number) of every manifest page."""
    for _, path, numbers in MANIFEST:
        for n in numbers:
            yield page_id(path, n), path, n


def build(out: Path) -> Path:
    """Write ``index.json``, one PNG and one ground-truth JSON per page and variant."""
    out.mkdir(parents=True, exist_ok=True)
    index = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for pid, path, n in pages():
            pdf = pdf_file(path, tmp)
            image = render(pdf, n, tmp)
            dark = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) <= INK_LEVEL
            words, lines = parse_page(text_layer(pdf, n), dark, DPI / 72.0)
            gt = {"words": [b.to_json() for b in words], "lines": [b.to_json() for b in lines]}
            entries = [(pid, "upright", image, gt)]
            if pid in VARIANT_PAGES:
                for i, kind in enumerate(VARIANTS):
                    var, m = transform(kind, image, seed=1000 * VARIANT_PAGES.index(pid) + i)
                    moved = {k: move(v, m) for k, v in gt.items()}
                    entries.append((f"{pid}-{kind}", kind, var, moved))
            for eid, kind, img, truth in entries:
                cv2.imwrite(str(out / f"{eid}.png"), img)
                (out / f"{eid}.json").write_text(json.dumps(truth))
                index.append({"id": eid, "page": pid, "kind": kind, "source": path, "number": n})
    (out / "index.json").write_text(json.dumps(index, indent=1))
    return out


def default_dir() -> Path:
    """``$OCRFLOW_CACHE_DIR/devset`` (default ``~/.cache/ocrflow/devset``)."""
    base = os.environ.get("OCRFLOW_CACHE_DIR") or Path.home() / ".cache" / "ocrflow"
    return Path(base) / "devset"


def main() -> None:
    """Build the dev set and print how big it is."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_dir())
    out = build(parser.parse_args().out)
    index = json.loads((out / "index.json").read_text())
    n_words = sum(
        sum(not w["dont_care"] for w in json.loads((out / f"{e['id']}.json").read_text())["words"])
        for e in index
        if e["kind"] == "upright"
    )
    print(f"{len(index)} images ({sum(e['kind'] == 'upright' for e in index)} upright pages, "
          f"{n_words} scored words on them) in {out}")  # fmt: skip


if __name__ == "__main__":
    main()
