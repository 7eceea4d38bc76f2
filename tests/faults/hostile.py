"""A seeded corpus of malformed documents: truncations, bit flips, wrong names, bombs, loops."""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path

import cv2

from tests.craft.pages import text_page

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_PDF = REPO_ROOT / "samples" / "natnotes.pdf"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(width: int, height: int) -> bytes:
    """A valid-looking PNG declaring ``width`` x ``height`` with a few bytes of pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))  # fmt: skip


def _pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A PDF with a correct xref table around ``objects`` (numbered from 1)."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\n" % (len(objects) + 1, root)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def looping_pdfs() -> dict[str, bytes]:
    """PDFs whose object graphs loop or nest absurdly deep."""
    stream = b"BT /F1 12 Tf 20 50 Td (loop) Tj ET"
    content = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    return {
        # The page tree's Kids contains the Pages node itself.
        "pages-kids-self.pdf": _pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
                content,
            ]
        ),
        # Two Pages nodes that are each other's only kid.
        "pages-cycle.pdf": _pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Pages /Kids [2 0 R] /Count 1 /Parent 2 0 R >>",
            ]
        ),
        # A stream whose /Length is an indirect reference to itself.
        "length-self.pdf": _pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
                b"<< /Length 4 0 R >>\nstream\n" + stream + b"\nendstream",
            ]
        ),
        # A page that inherits its MediaBox from a parent that is the page itself.
        "parent-self.pdf": _pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 3 0 R /Contents 4 0 R >>",
                content,
            ]
        ),
        # A Form XObject that draws itself (infinite recursion when rendered).
        "xobject-self.pdf": _pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R "
                b"/Resources << /XObject << /X 5 0 R >> >> >>",
                b"<< /Length 8 >>\nstream\n/X Do   \nendstream",
                b"<< /Type /XObject /Subtype /Form /BBox [0 0 200 200] /Length 8 "
                b"/Resources << /XObject << /X 5 0 R >> >> >>\nstream\n/X Do   \nendstream",
            ]
        ),
        # 50 000 nested arrays in the catalog.
        "nested-arrays.pdf": _pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R /Junk " + b"[" * 50_000 + b"]" * 50_000 + b" >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
            ]
        ),
        # 20 000 nested dictionaries in a page.
        "nested-dicts.pdf": _pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /J "
                + b"<< /A " * 20_000
                + b"1"
                + b" >>" * 20_000
                + b" >>",
            ]
        ),
        # A declared page of 14 400 x 14 400 pt (200 in): a pixel bomb at any DPI.
        "huge-mediabox.pdf": _pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 14400 14400] /Contents 4 0 R >>",
                content,
            ]
        ),
    }


def _truncations(data: bytes, count: int, rng: random.Random) -> list[bytes]:
    cuts = {1, 8, 16, 64, len(data) // 2, len(data) - 1}
    while len(cuts) < count:
        cuts.add(rng.randrange(2, len(data) - 1))
    return [data[:c] for c in sorted(cuts)[:count]]


def _flips(data: bytes, count: int, rng: random.Random) -> list[bytes]:
    out = []
    for i in range(count):
        buf = bytearray(data)
        for _ in range(1 + i % 16):  # 1 to 16 flipped bits per file
            pos = rng.randrange(len(buf))
            buf[pos] ^= 1 << rng.randrange(8)
        out.append(bytes(buf))
    return out


def write_hostile_corpus(folder: Path, seed: int = 8) -> list[Path]:
    """Write >= 200 distinct malformed files (seeded) under ``folder``; return their paths."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pdf = SAMPLE_PDF.read_bytes()
    page = text_page(["Hostile input", "Total 42.00 EUR"], size=(200, 480))
    png = cv2.imencode(".png", page)[1].tobytes()
    jpg = cv2.imencode(".jpg", page)[1].tobytes()
    files: dict[str, bytes] = {}
    for name, data, ext in (("pdf", pdf, "pdf"), ("png", png, "png"), ("jpg", jpg, "jpg")):
        for i, cut in enumerate(_truncations(data, 40, rng)):
            files[f"trunc-{name}-{i:02d}.{ext}"] = cut
        for i, flipped in enumerate(_flips(data, 25, rng)):
            files[f"flip-{name}-{i:02d}.{ext}"] = flipped
    files.update({
        "png-as.pdf": png, "pdf-as.png": pdf, "jpg-as.tif": jpg, "pdf-as.jpg": pdf[:50_000],
        "text-as.pdf": b"just some text, not a PDF\n" * 10, "html-as.png": b"<html></html>",
        "zip-as.pdf": b"PK\x03\x04" + bytes(100), "gif-as.jpg": b"GIF89a" + bytes(40),
        "pdf-header-only.pdf": b"%PDF-1.7\n", "png-magic-only.png": png[:8] + b"\n",
        "empty.pdf": b"", "empty.png": b"", "empty.jpg": b"", "empty.tiff": b"",
    })  # fmt: skip
    for w, h in (
        (100_000, 100_000),
        (65_535, 65_535),
        (1, 2**31 - 1),
        (2**31 - 1, 1),
        (20_000, 20_000),
    ):
        files[f"huge-{w}x{h}.png"] = huge_png(w, h)
    files.update(looping_pdfs())
    nonempty = [data for data in files.values() if data]
    assert len(set(nonempty)) == len(nonempty), "files must differ (documents dedup by sha256)"
    paths = []
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths
