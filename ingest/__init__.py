"""Ingestion: files, folders and patterns in; BGR pages (or clear errors) out.

Prefect-free (no prefect, sqlalchemy or torch), so the flow's tasks and ``ocrflow detect``
share it.

Example:
    >>> from ingest import IngestOptions, IngestError, discover, iter_pages
    >>> for item in discover(["inbox/"]):
    ...     if isinstance(item, IngestError):
    ...         print(item.message)  # recorded against the file, the batch goes on
    ...         continue
    ...     for page in iter_pages(item, IngestOptions(dpi=150)):
    ...         ...  # a Page, or a PageError for that page only
"""

from __future__ import annotations

from collections.abc import Iterator

from .discover import SUPPORTED_MEDIA_TYPES, discover, open_document, sniff_media_type
from .errors import (
    CorruptDocumentError,
    DocumentError,
    DocumentTimeoutError,
    EmptyFileError,
    EncryptedDocumentError,
    FileMissingError,
    FileTooLargeError,
    FileUnreadableError,
    IngestError,
    NoDocumentsFoundError,
    NoPagesError,
    PageError,
    PageRenderError,
    PageTimeoutError,
    PageTooLargeError,
    PageTooSmallError,
    PasswordRequiredError,
    PopplerNotFoundError,
    TooManyPagesError,
    UnsupportedFormatError,
    WrongPasswordError,
)
from .images import image_page_count, iter_image_pages
from .options import IngestOptions
from .pages import Affine, Document, Page
from .pdf import iter_pdf_pages, pdf_page_count

__all__ = [
    "SUPPORTED_MEDIA_TYPES",
    "Affine",
    "CorruptDocumentError",
    "Document",
    "DocumentError",
    "DocumentTimeoutError",
    "EmptyFileError",
    "EncryptedDocumentError",
    "FileMissingError",
    "FileTooLargeError",
    "FileUnreadableError",
    "IngestError",
    "IngestOptions",
    "NoDocumentsFoundError",
    "NoPagesError",
    "Page",
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
    "count_pages",
    "discover",
    "iter_pages",
    "open_document",
    "sniff_media_type",
]


def count_pages(document: Document, options: IngestOptions | None = None) -> int:
    """Pages in the document (pdfinfo for PDFs, frames for images), before any limit."""
    if document.is_pdf:
        return pdf_page_count(document, options)
    return image_page_count(document, options)


def iter_pages(
    document: Document, options: IngestOptions | None = None
) -> Iterator[Page | PageError]:
    """Stream a document's pages in order: a ``Page``, or a ``PageError`` for a bad page.

    Memory stays bounded: PDFs are rendered a few pages ahead of the consumer, TIFF frames
    one at a time.

    Raises:
        DocumentError: the whole document is unusable (see ``ingest.errors``).
    """
    if document.is_pdf:
        return iter_pdf_pages(document, options)
    return iter_image_pages(document, options)
