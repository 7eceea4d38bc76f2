"""Decode images into BGR pages: OpenCV for speed, Pillow only where OpenCV cannot.

OpenCV (``IMREAD_UNCHANGED``) decodes PNG, JPEG (CMYK included), BMP and WebP, keeping
alpha and 16 bits so we can composite and scale them ourselves; it ignores EXIF orientation
in that mode, so we apply the tag read by Pillow. Pillow reads every header first (size
before decoding, the bomb guard) and decodes TIFF, because only it streams a multi-page
TIFF one frame at a time.

Every page comes out HxWx3 uint8 BGR, C-contiguous: grayscale and palette expanded, alpha
composited on white (transparent scans are paper, not ink), 16-bit scaled to 8-bit.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import (
    CorruptDocumentError,
    FileMissingError,
    FileUnreadableError,
    PageError,
    PageRenderError,
    PageTooLargeError,
)
from .limits import check_file_size, check_page_size, page_range
from .options import IngestOptions
from .pages import Document, Page

__all__ = ["apply_orientation", "image_page_count", "iter_image_pages", "to_bgr"]

# A damaged image is reported as a typed error with the file's name (CorruptDocumentError);
# OpenCV's own stderr warning about it ("PNG input buffer is incomplete") would only say it
# again, without the name, in the middle of a progress bar.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

_PIL_FORMATS = {
    "image/png": ["PNG"],
    "image/jpeg": ["JPEG"],  # Pillow opens MPO through JPEG; "MPO" is no key of its own
    "image/tiff": ["TIFF"],
    "image/bmp": ["BMP", "DIB"],
    "image/webp": ["WEBP"],
}
_ORIENTATION_TAG = 0x0112
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


def _read_bytes(doc: Document, opts: IngestOptions) -> bytes:
    try:
        size = os.path.getsize(doc.path)
        check_file_size(doc.path, size, opts.max_file_bytes)
        with open(doc.path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise FileMissingError(doc.path, "file vanished before it could be read") from None
    except OSError as exc:
        raise FileUnreadableError(doc.path, f"cannot read file ({exc.strerror or exc})") from None


def _open_header(doc: Document, data: bytes) -> Image.Image:
    """Parse the header only (no pixels). Raises CorruptDocumentError or DecompressionBombError."""
    try:
        return Image.open(io.BytesIO(data), formats=_PIL_FORMATS.get(doc.media_type))
    except Image.DecompressionBombError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptDocumentError(doc.path, f"image header cannot be read ({exc})") from None


def _jpeg_complete(data: bytes) -> bool:
    """Walk the JPEG markers to the end-of-image marker; False when the data stops before it.

    OpenCV decodes a truncated JPEG without an error (the missing part comes out grey), so
    truncation must be detected here. Segment lengths skip embedded EXIF thumbnails, whose
    own end marker would fool a plain search.
    """
    n, i = len(data), 2
    while i + 1 < n:
        if data[i] != 0xFF:  # stray bytes between segments: libjpeg skips them too
            i = data.find(b"\xff", i)
            if i < 0:
                return False
            continue
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
        elif marker == 0xD9:
            return True
        elif 0xD0 <= marker <= 0xD7 or marker == 0x01:
            i += 2
        else:
            if i + 4 > n:
                return False
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
            if marker == 0xDA:  # entropy-coded scan: runs to the next real marker
                while True:
                    j = data.find(b"\xff", i)
                    if j < 0 or j + 1 >= n:
                        return False
                    nxt = data[j + 1]
                    if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                        i = j + 2
                    elif nxt == 0xFF:
                        i = j + 1
                    else:
                        i = j
                        break
    return False


def to_bgr(arr: np.ndarray) -> np.ndarray:
    """Any decoded array (gray, BGR, BGRA; 8/16-bit or float) to contiguous uint8 BGR."""
    if arr.dtype == np.uint16:
        arr = ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif arr.dtype.kind == "f":
        scale = 255.0 if float(np.nanmax(arr, initial=0.0)) <= 1.0 else 1.0
        arr = np.clip(np.nan_to_num(arr) * scale + 0.5, 0, 255).astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        return cv2.cvtColor(arr, cv2.COLOR_GRAY2BGR)
    if arr.shape[2] == 4:
        alpha = arr[:, :, 3:4].astype(np.uint16)
        color = arr[:, :, :3].astype(np.uint16)
        out = (color * alpha + 255 * (255 - alpha) + 127) // 255
        return np.ascontiguousarray(out, dtype=np.uint8)
    return np.ascontiguousarray(arr[:, :, :3])


def apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) the way Pillow's ``ImageOps.exif_transpose`` does."""
    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1]
    elif orientation == 5:
        arr = arr.swapaxes(0, 1)
    elif orientation == 6:
        arr = cv2.rotate(arr, cv2.ROTATE_90_CLOCKWISE)
    elif orientation == 7:
        arr = arr[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        arr = cv2.rotate(arr, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return np.ascontiguousarray(arr)


def _pil_to_bgr(frame: Image.Image) -> np.ndarray:
    """One Pillow frame to BGR; used for TIFF (and anything OpenCV refuses)."""
    frame = ImageOps.exif_transpose(frame) or frame
    mode = frame.mode
    if mode.startswith("I;16") or mode == "I":
        return to_bgr(np.clip(np.asarray(frame), 0, 65535).astype(np.uint16))
    if mode == "F":
        return to_bgr(np.asarray(frame, dtype=np.float32))
    if mode in ("1", "L"):
        return to_bgr(np.asarray(frame.convert("L")))
    if "A" in mode or "a" in mode or "transparency" in frame.info:
        rgba = np.asarray(frame.convert("RGBA"))
        return to_bgr(cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    return cv2.cvtColor(np.asarray(frame.convert("RGB")), cv2.COLOR_RGB2BGR)


def _frame_count(doc: Document, im: Image.Image) -> int:
    """Pages in the image; Pillow walks a TIFF's whole IFD chain to count them."""
    try:
        return int(getattr(im, "n_frames", 1))
    except (OSError, EOFError, SyntaxError, ValueError) as exc:
        raise CorruptDocumentError(doc.path, f"image page list is damaged ({exc})") from None


def _orientation(im: Image.Image) -> int:
    """EXIF orientation tag, 1 (upright) when absent or unreadable (damage shows at decode)."""
    try:
        return int(im.getexif().get(_ORIENTATION_TAG, 1))
    except (OSError, SyntaxError, ValueError, TypeError):
        return 1


def _bomb_error(doc: Document, exc: Exception, opts: IngestOptions) -> PageError:
    found = _BOMB_PIXELS.search(str(exc))
    pixels = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
    return PageTooLargeError(
        doc.path,
        f"image header claims {pixels}, more than max_pixels={opts.max_pixels:,} "
        "(possible decompression bomb)",
        page_number=1,
    )


def image_page_count(doc: Document, options: IngestOptions | None = None) -> int:
    """Frames in the image (TIFF may hold many; other formats hold one)."""
    opts = options or IngestOptions()
    try:
        im = _open_header(doc, _read_bytes(doc, opts))
    except Image.DecompressionBombError:
        return 1
    return _frame_count(doc, im)


def iter_image_pages(
    doc: Document, options: IngestOptions | None = None
) -> Iterator[Page | PageError]:
    """Yield the image's pages (every TIFF frame), or the error of each bad page.

    Raises:
        DocumentError: the whole file is bad (FileMissingError, FileUnreadableError,
            FileTooLargeError, CorruptDocumentError), or first_page/last_page/max_pages
            select nothing or too much (NoPagesError, TooManyPagesError).
    """
    opts = options or IngestOptions()
    data = _read_bytes(doc, opts)
    try:
        im = _open_header(doc, data)
    except Image.DecompressionBombError as exc:
        yield _bomb_error(doc, exc, opts)
        return
    first, last = page_range(doc.path, _frame_count(doc, im), opts)
    if doc.media_type == "image/tiff":
        yield from _iter_tiff(doc, im, first, last, opts)
        return

    width, height = im.size
    error = check_page_size(doc.path, 1, width, height, opts.max_pixels, opts.min_side_px)
    if error is not None:
        yield error
        return
    if doc.media_type == "image/jpeg" and not _jpeg_complete(data):
        raise CorruptDocumentError(doc.path, "JPEG data is truncated (no end-of-image marker)")
    orientation = _orientation(im)
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        try:  # OpenCV refused; Pillow may still manage (exotic BMP/WebP variants)
            bgr = _pil_to_bgr(im)
        except (OSError, SyntaxError, ValueError) as exc:
            raise CorruptDocumentError(
                doc.path, f"image data is truncated or damaged ({exc})"
            ) from None
    else:
        bgr = apply_orientation(to_bgr(arr), orientation)
    yield Page(doc.document_id, doc.path, 1, bgr)


def _iter_tiff(
    doc: Document, im: Image.Image, first: int, last: int, opts: IngestOptions
) -> Iterator[Page | PageError]:
    frames = int(getattr(im, "n_frames", 1))
    for index in range(first - 1, last):
        number = index + 1
        try:
            im.seek(index)
            width, height = im.size
            error = check_page_size(
                doc.path, number, width, height, opts.max_pixels, opts.min_side_px
            )
            if error is not None:
                yield error
                continue
            bgr = _pil_to_bgr(im)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            if frames == 1:
                raise CorruptDocumentError(
                    doc.path, f"TIFF data is truncated or damaged ({exc})"
                ) from None
            yield PageRenderError(
                doc.path, f"TIFF frame cannot be decoded ({exc})", page_number=number
            )
            continue
        yield Page(doc.document_id, doc.path, number, bgr)
