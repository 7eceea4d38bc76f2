"""Typed ingestion errors: each names the file, says what is wrong and what to do.

Two families, so the flow knows where to record a failure:

* ``DocumentError``: the whole file is unusable (raised, or yielded by ``discover``).
* ``PageError``: one page is unusable, the other pages of the document still come out
  (yielded in place of that page by ``iter_pages``).

Every error pickles with its fields intact, so it can cross a process pool or be stored as a
Prefect result.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CorruptDocumentError",
    "DocumentError",
    "DocumentTimeoutError",
    "EmptyFileError",
    "EncryptedDocumentError",
    "FileMissingError",
    "FileTooLargeError",
    "FileUnreadableError",
    "IngestError",
    "NoDocumentsFoundError",
    "NoPagesError",
    "PageError",
    "PageRenderError",
    "PageTimeoutError",
    "PageTooLargeError",
    "PageTooSmallError",
    "PasswordRequiredError",
    "PopplerNotFoundError",
    "TooManyPagesError",
    "UnsupportedFormatError",
    "WrongPasswordError",
]


class IngestError(Exception):
    """Base of every ingestion failure.

    Args:
        path: the file (or input) as the user gave or we discovered it.
        problem: what is wrong, in words a user understands.
        hint: what to do about it.
        page_number: 1-based page, for page-level errors.
    """

    default_hint = "check the file, or leave it out of the batch"

    def __init__(
        self, path: str, problem: str, hint: str | None = None, page_number: int | None = None
    ) -> None:
        self.path = str(path)
        self.problem = problem
        self.hint = hint if hint is not None else self.default_hint
        self.page_number = page_number
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """One line: which file (and page), what is wrong, what to do."""
        where = self.path if self.page_number is None else f"{self.path}, page {self.page_number}"
        return f"{where}: {self.problem}; {self.hint}"

    @property
    def code(self) -> str:
        """Stable machine-readable kind, the class name (for the database and logs)."""
        return type(self).__name__

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.problem, self.hint, self.page_number))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class DocumentError(IngestError):
    """The whole document is unusable; nothing of it comes out."""


class FileMissingError(DocumentError):
    """The path does not exist (or vanished between discovery and reading)."""

    default_hint = "check the path; the file may have been moved or deleted"


class FileUnreadableError(DocumentError):
    """The file exists but cannot be read (permissions, I/O error, a directory...)."""

    default_hint = "check the file's permissions and that the disk is readable"


class EmptyFileError(DocumentError):
    """The file has zero bytes."""

    default_hint = "the upload or copy probably failed; send the file again"


class FileTooLargeError(DocumentError):
    """The file is larger than ``max_file_bytes``."""

    default_hint = "split the document, or raise max_file_bytes if you trust the source"


class UnsupportedFormatError(DocumentError):
    """The content is neither a PDF nor a supported image, whatever its name says."""

    default_hint = "convert it to PDF, PNG, JPEG, TIFF, BMP or WebP"


class CorruptDocumentError(DocumentError):
    """The file has a document's signature but cannot be decoded (truncated, damaged)."""

    default_hint = "the file is damaged or incomplete; get a fresh copy from the source"


class EncryptedDocumentError(DocumentError):
    """The PDF is encrypted and could not be opened."""

    default_hint = "pass the document's password in the options (password=...)"


class PasswordRequiredError(EncryptedDocumentError):
    """The PDF needs a password and none was given."""


class WrongPasswordError(EncryptedDocumentError):
    """The PDF needs a password and the one given does not open it."""

    default_hint = "check the password given in the options (password=...)"


class NoPagesError(DocumentError):
    """The document has no pages (or none in the requested first_page..last_page range)."""

    default_hint = "check the file, or the first_page/last_page options"


class TooManyPagesError(DocumentError):
    """The requested page range is longer than ``max_pages``."""

    default_hint = "split the document, set first_page/last_page, or raise max_pages"


class DocumentTimeoutError(DocumentError):
    """Poppler did not even manage to read the document's page list in time."""

    default_hint = "the file may be malformed; raise page_timeout_s if it is just huge"


class PopplerNotFoundError(DocumentError):
    """poppler-utils (pdfinfo, pdftoppm) is not installed or not on PATH."""

    default_hint = (
        "install poppler: `apt-get install poppler-utils` (Debian/Ubuntu), "
        "`brew install poppler` (macOS), or set poppler_path"
    )


class NoDocumentsFoundError(DocumentError):
    """A folder or glob pattern matched no documents at all."""

    default_hint = "check the path or pattern; supported: PDF, PNG, JPEG, TIFF, BMP, WebP"


class PageError(IngestError):
    """One page is unusable; the document's other pages still come out."""

    def __init__(
        self, path: str, problem: str, hint: str | None = None, page_number: int | None = None
    ) -> None:
        if page_number is None:
            raise ValueError("a PageError needs a page_number")
        super().__init__(path, problem, hint, page_number)


class PageRenderError(PageError):
    """Poppler or the image decoder produced no usable image for this page."""

    default_hint = "the page is damaged; open it in a viewer to check, the other pages are kept"


class PageTimeoutError(PageError):
    """Rendering this page took longer than ``page_timeout_s``; the renderer was killed."""

    default_hint = "the page may be pathological; raise page_timeout_s or lower dpi"


class PageTooLargeError(PageError):
    """The page would have more pixels than ``max_pixels`` (decompression-bomb guard)."""

    default_hint = "lower dpi, or raise max_pixels if you trust the source"


class PageTooSmallError(PageError):
    """The page is smaller than ``min_side_px`` on a side: too small to hold readable text."""

    default_hint = "send a larger scan, or lower min_side_px"
