"""Find documents: files, folders (recursive) and glob patterns, typed by content.

A document's id is the sha256 of its bytes, so the same file under two names is one
document (the first name found wins; later ones are skipped). The type comes from the
magic bytes, so ``scan.pdf`` that is really a JPEG is read as a JPEG, and ``notes.pdf``
that is really text is reported as ``UnsupportedFormatError``.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from .errors import (
    DocumentError,
    EmptyFileError,
    FileMissingError,
    FileUnreadableError,
    NoDocumentsFoundError,
    UnsupportedFormatError,
)
from .limits import check_file_size
from .options import IngestOptions
from .pages import Document
from .roots import OutsideInputRootsError, resolve_inside

__all__ = ["SUPPORTED_MEDIA_TYPES", "discover", "open_document", "sniff_media_type"]

SUPPORTED_MEDIA_TYPES = (
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/tiff",
    "image/bmp",
    "image/webp",
)

# Formats we recognise only to name them in the error message.
_KNOWN_UNSUPPORTED: tuple[tuple[bytes, int, str], ...] = (
    (b"GIF87a", 0, "a GIF image"),
    (b"GIF89a", 0, "a GIF image"),
    (b"PK\x03\x04", 0, "a ZIP archive (or an Office document)"),
    (b"\xd0\xcf\x11\xe0", 0, "an old Office document"),
    (b"ftypheic", 4, "a HEIC photo"),
    (b"ftypmif1", 4, "a HEIF photo"),
    (b"\x00\x00\x00\x0cjP  ", 0, "a JPEG 2000 image"),
    (b"%!PS", 0, "a PostScript file"),
)
_HEAD_BYTES = 1024
_CHUNK = 1 << 20


def sniff_media_type(head: bytes) -> str | None:
    """Media type from the first bytes of a file, or None when it is not supported.

    PDFs may have junk before ``%PDF-`` (poppler accepts it within the first 1 KiB).
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "image/tiff"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    # "BM" alone is too weak (any text may start with it): check the DIB header size too.
    dib_header = int.from_bytes(head[14:18], "little")
    if head.startswith(b"BM") and dib_header in (12, 16, 40, 52, 56, 64, 108, 124):
        return "image/bmp"
    if b"%PDF-" in head[:_HEAD_BYTES]:
        return "application/pdf"
    return None


def _describe_unsupported(head: bytes) -> str:
    for magic, offset, what in _KNOWN_UNSUPPORTED:
        if head[offset : offset + len(magic)] == magic:
            return what
    if b"\x00" in head:
        return "not a PDF or a supported image"
    text = head.decode("utf-8", "replace")  # the head may cut a multi-byte character
    odd = sum(1 for ch in text if ch == "\ufffd" or not (ch.isprintable() or ch.isspace()))
    if odd <= 3 + len(text) // 100:
        return "a text file"
    return "not a PDF or a supported image"


def open_document(path: str | os.PathLike[str], options: IngestOptions | None = None) -> Document:
    """Identify one file: size limit, sha256 of its bytes, and type from its content.

    Raises:
        FileMissingError, FileUnreadableError, EmptyFileError, FileTooLargeError,
        UnsupportedFormatError.
    """
    opts = options or IngestOptions()
    name = os.fspath(path)
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise FileMissingError(name, "file does not exist") from None
    except OSError as exc:
        raise FileUnreadableError(name, f"cannot read file ({exc.strerror})") from None
    if not os.path.isfile(name):
        raise FileUnreadableError(name, "not a regular file", "give a file, a folder or a pattern")
    if st.st_size == 0:
        raise EmptyFileError(name, "file is empty (0 bytes)")
    check_file_size(name, st.st_size, opts.max_file_bytes)

    digest = hashlib.sha256()
    head = b""
    size = 0
    try:
        with open(name, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                if not head:
                    head = chunk[:_HEAD_BYTES]
                digest.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        raise FileMissingError(name, "file vanished while being read") from None
    except OSError as exc:
        raise FileUnreadableError(name, f"cannot read file ({exc.strerror or exc})") from None
    if size == 0:
        raise EmptyFileError(name, "file is empty (0 bytes)")
    check_file_size(name, size, opts.max_file_bytes)

    media_type = sniff_media_type(head)
    if media_type is None:
        what = _describe_unsupported(head)
        suffix = Path(name).suffix.lower()
        named = f" (named '{suffix}')" if suffix else ""
        raise UnsupportedFormatError(
            name, f"content is {what}{named}, not a PDF or supported image"
        )
    return Document(digest.hexdigest(), name, media_type, size)


def _is_pattern(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _expand(item: str) -> Iterator[str]:
    """Files one input stands for, in a stable (sorted) order; hidden files are skipped."""
    if os.path.isdir(item):
        found: list[str] = []
        for root, dirs, files in os.walk(item):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
        return iter(found)
    if os.path.lexists(item) or not _is_pattern(item):
        return iter([item])
    return iter(sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p)))


def discover(
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    options: IngestOptions | None = None,
    *,
    roots: Sequence[Path] | None = None,
) -> Iterator[Document | DocumentError]:
    """Yield each distinct document under ``inputs``, or the error that stops one file.

    Errors are yielded, not raised, so one bad file never stops a batch. A folder or pattern
    that holds no file at all yields ``NoDocumentsFoundError``; one whose files all failed
    yields only their errors (the folder is not a document, so it gets no error row of its own).
    With ``roots`` (resolved folders, see :mod:`ingest.roots`), a file that resolves outside
    them (a symlink out, say) yields ``OutsideInputRootsError`` and is never opened.

    Example:
        >>> for item in discover(["inbox/", "scans/*.tif"]):
        ...     print(item)
    """
    opts = options or IngestOptions()
    items = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    seen: set[str] = set()
    for raw in items:
        item = os.fspath(raw)
        matched = 0
        for name in _expand(item):
            matched += 1
            if roots is not None and resolve_inside(name, roots) is None:
                yield OutsideInputRootsError(name, "resolves outside the allowed input roots")
                continue
            try:
                doc = open_document(name, opts)
            except DocumentError as exc:
                yield exc
                continue
            if doc.document_id not in seen:
                seen.add(doc.document_id)
                yield doc
        if matched == 0 and (os.path.isdir(item) or _is_pattern(item)):
            what = "folder contains no files" if os.path.isdir(item) else "pattern matches no file"
            yield NoDocumentsFoundError(item, what)
