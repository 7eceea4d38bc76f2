"""Image decoding: every format and color mode to contiguous uint8 BGR, and bad images."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from ingest import (
    CorruptDocumentError,
    IngestOptions,
    NoPagesError,
    Page,
    PageError,
    PageRenderError,
    PageTooLargeError,
    PageTooSmallError,
    TooManyPagesError,
    count_pages,
    iter_pages,
    open_document,
)
from ingest.images import apply_orientation

BGR = (30, 120, 220)  # distinct channels: a swapped R/B shows at once


def _pages(path: Path, **options: object) -> list[Page | PageError]:
    return list(iter_pages(open_document(path), IngestOptions(**options)))  # type: ignore[arg-type]


def _one_page(path: Path, **options: object) -> Page:
    (page,) = _pages(path, **options)
    assert isinstance(page, Page), page
    assert page.image.dtype == np.uint8 and page.image.flags.c_contiguous
    assert page.dpi is None and page.to_pdf_points is None
    return page


def _pil_bytes(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _solid(w: int = 40, h: int = 30) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[:] = BGR
    return img


@pytest.mark.parametrize(
    ("name", "tolerance"),
    [("a.png", 0), ("a.bmp", 0), ("a.tif", 0), ("a.webp", 0), ("a.jpg", 6)],
)
def test_formats_decode_to_bgr(write, name: str, tolerance: int) -> None:
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if name.endswith("webp") else []
    ok, data = cv2.imencode(Path(name).suffix, _solid(), params)
    assert ok
    page = _one_page(write(name, data.tobytes()))
    assert (page.width, page.height, page.page_number) == (40, 30, 1)
    assert np.abs(page.image[15, 20].astype(int) - BGR).max() <= tolerance


def test_type_comes_from_content_not_name(write) -> None:
    _, data = cv2.imencode(".png", _solid())
    path = write("looks-like.pdf", data.tobytes())
    assert open_document(path).media_type == "image/png"
    assert _one_page(path).width == 40


def test_multipage_tiff_yields_every_frame(write) -> None:
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (50, 20 + 10 * i), c) for i, c in enumerate(colors)]
    data = _pil_bytes(
        frames[0], "TIFF", save_all=True, append_images=frames[1:], compression="tiff_lzw"
    )
    path = write("fax.tiff", data)
    assert count_pages(open_document(path)) == 3
    pages = _pages(path)
    assert [p.page_number for p in pages] == [1, 2, 3]
    for page, (r, g, b), i in zip(pages, colors, range(3), strict=True):
        assert isinstance(page, Page)
        assert page.height == 20 + 10 * i
        assert tuple(page.image[5, 5]) == (b, g, r)


def _noise_tiff(frames: int) -> bytes:
    rng = np.random.default_rng(0)
    images = [
        Image.fromarray(rng.integers(0, 255, (50, 60, 3), dtype=np.uint8)) for _ in range(frames)
    ]
    return _pil_bytes(images[0], "TIFF", save_all=True, append_images=images[1:])


def test_tiff_with_a_damaged_last_frame_keeps_the_others(write) -> None:
    data = _noise_tiff(3)
    results = _pages(write("cut.tif", data[:-3000]))  # frame 3's pixels are cut short
    assert [type(r) for r in results] == [Page, Page, PageRenderError]
    assert "cut.tif, page 3: TIFF frame cannot be decoded" in str(results[2])


def test_tiff_page_range_and_max_pages(write) -> None:
    path = write("five.tif", _noise_tiff(5))
    assert [p.page_number for p in _pages(path, first_page=2, last_page=3)] == [2, 3]
    with pytest.raises(TooManyPagesError, match="5 pages requested, more than max_pages=4"):
        _pages(path, max_pages=4)
    with pytest.raises(NoPagesError, match="first_page=6 but the document has only 5"):
        _pages(path, first_page=6)


def test_bilevel_fax_tiff(write) -> None:
    im = Image.new("1", (64, 32), 1)
    im.paste(0, (0, 0, 32, 32))
    page = _one_page(write("g4.tif", _pil_bytes(im, "TIFF", compression="group4")))
    assert tuple(page.image[0, 0]) == (0, 0, 0) and tuple(page.image[0, 63]) == (255, 255, 255)


@pytest.mark.parametrize(
    ("mode", "fmt", "color", "expected_bgr"),
    [
        ("L", "PNG", 77, (77, 77, 77)),
        ("P", "PNG", None, (220, 120, 30)),  # palette: index 0 -> RGB (30, 120, 220)
        ("CMYK", "JPEG", (0, 0, 0, 0), (255, 255, 255)),
        ("CMYK", "TIFF", (255, 0, 0, 0), (255, 255, 0)),  # full cyan
        ("RGB", "TIFF", (30, 120, 220), (220, 120, 30)),
    ],
)
def test_color_modes_become_bgr(write, mode, fmt, color, expected_bgr) -> None:
    if mode == "P":
        im = Image.new("P", (20, 20), 0)
        im.putpalette([30, 120, 220] + [0, 0, 0] * 255)
    else:
        im = Image.new(mode, (20, 20), color)
    page = _one_page(write(f"m.{fmt.lower()}", _pil_bytes(im, fmt)))
    assert np.abs(page.image[10, 10].astype(int) - expected_bgr).max() <= 3


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_alpha_is_composited_on_white(write, fmt: str) -> None:
    im = Image.new("RGBA", (20, 20), (0, 0, 0, 0))  # fully transparent: white paper
    im.paste((200, 0, 0, 255), (0, 0, 10, 20))  # opaque red left half
    im.paste((0, 0, 0, 128), (10, 0, 20, 10))  # half-transparent black
    kw = {"lossless": True} if fmt == "WEBP" else {}
    page = _one_page(write(f"alpha.{fmt.lower()}", _pil_bytes(im, fmt, **kw)))
    assert tuple(page.image[15, 15]) == (255, 255, 255)
    assert tuple(page.image[5, 5]) == (0, 0, 200)
    assert np.abs(page.image[5, 15].astype(int) - 127).max() <= 1


def test_palette_with_transparency_and_gray_alpha(write) -> None:
    im = Image.new("P", (10, 10), 0)
    im.putpalette([0, 0, 0] * 256)
    page = _one_page(write("p.png", _pil_bytes(im, "PNG", transparency=0)))
    assert tuple(page.image[0, 0]) == (255, 255, 255)
    la = Image.new("LA", (10, 10), (0, 255))
    assert tuple(_one_page(write("la.png", _pil_bytes(la, "PNG"))).image[0, 0]) == (0, 0, 0)


def test_sixteen_bit_is_scaled_to_eight(write) -> None:
    gray = np.full((12, 12), 128 * 257, np.uint16)
    color = np.zeros((12, 12, 3), np.uint16)
    color[:] = (0, 32896, 65535)  # BGR: 0, 128, 255 once scaled
    for name, arr, expected in (("g16.png", gray, 128), ("c16.png", color, (0, 128, 255))):
        ok, data = cv2.imencode(".png", arr)
        assert ok
        page = _one_page(write(name, data.tobytes()))
        assert np.array_equal(page.image[0, 0], np.broadcast_to(expected, (3,)))
    tiff = Image.fromarray(gray)
    page = _one_page(write("g16.tif", _pil_bytes(tiff, "TIFF")))
    assert tuple(page.image[0, 0]) == (128, 128, 128)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(write, orientation: int) -> None:
    rgb = np.zeros((30, 50, 3), np.uint8)
    rgb[:10, :20] = (255, 0, 0)  # a red corner patch shows where the top-left went
    rgb[20:, 40:] = (0, 0, 255)
    im = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = write(f"o{orientation}.png", _pil_bytes(im, "PNG", exif=exif))
    expected = np.asarray((ImageOps.exif_transpose(Image.open(path)) or im).convert("RGB"))
    page = _one_page(path)
    assert np.array_equal(page.image, np.ascontiguousarray(expected[:, :, ::-1]))


def test_exif_orientation_on_jpeg_turns_the_page(write) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # camera held sideways: rotate 90 degrees clockwise to view
    im = Image.new("RGB", (60, 20), (255, 255, 255))
    page = _one_page(write("phone.jpg", _pil_bytes(im, "JPEG", exif=exif)))
    assert (page.width, page.height) == (20, 60)


def test_apply_orientation_identity() -> None:
    arr = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    assert np.array_equal(apply_orientation(arr, 1), arr)


def _jpeg(w: int = 64, h: int = 64) -> bytes:
    rng = np.random.default_rng(0)
    ok, data = cv2.imencode(".jpg", rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    assert ok
    return data.tobytes()


def test_truncated_jpeg_is_corrupt(write) -> None:
    data = _jpeg()
    with pytest.raises(CorruptDocumentError, match="JPEG data is truncated"):
        _pages(write("cut.jpg", data[: len(data) * 2 // 3]))


def test_jpeg_truncation_is_not_fooled_by_an_embedded_thumbnail(write) -> None:
    data = _jpeg()
    thumb = b"Exif\x00\x00" + _jpeg(8, 8)  # a whole JPEG, end marker included, in APP1
    app1 = b"\xff\xe1" + struct.pack(">H", len(thumb) + 2) + thumb
    whole = data[:2] + app1 + data[2:]
    assert _one_page(write("thumb.jpg", whole)).width == 64
    with pytest.raises(CorruptDocumentError):
        _pages(write("thumb-cut.jpg", whole[: len(whole) - 200]))


def test_truncated_png_is_corrupt(write) -> None:
    ok, data = cv2.imencode(
        ".png", np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    )
    assert ok
    cut = data.tobytes()[: len(data) // 2]
    with pytest.raises(CorruptDocumentError, match=r"cut\.png: image data is truncated or damaged"):
        _pages(write("cut.png", cut))


def test_one_pixel_image_is_too_small_unless_allowed(write) -> None:
    _, data = cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))
    path = write("pixel.png", data.tobytes())
    (error,) = _pages(path)
    assert isinstance(error, PageTooSmallError)
    assert error.page_number == 1
    assert "1x1 pixels, under min_side_px=8" in str(error)
    assert _one_page(path, min_side_px=1).width == 1


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_header_is_refused_without_decoding(write) -> None:
    (error,) = _pages(write("bomb.png", _png_header_only(100_000, 100_000)))
    assert isinstance(error, PageTooLargeError)
    assert "10,000,000,000 pixels" in str(error) and "decompression bomb" in str(error)
    (error,) = _pages(write("big.png", _png_header_only(5000, 5000)), max_pixels=1_000_000)
    assert isinstance(error, PageTooLargeError)
    assert "5000x5000 = 25,000,000 pixels, more than max_pixels=1,000,000" in str(error)
