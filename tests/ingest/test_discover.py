"""Discovery: inputs expand to documents identified by content, bad files become errors."""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from ingest import (
    Document,
    EmptyFileError,
    FileMissingError,
    FileTooLargeError,
    FileUnreadableError,
    IngestError,
    IngestOptions,
    NoDocumentsFoundError,
    UnsupportedFormatError,
    discover,
    iter_pages,
    open_document,
    sniff_media_type,
)
from tests.ingest.builders import PdfPage, make_pdf


def _png(value: int = 0) -> bytes:
    _, data = cv2.imencode(".png", np.full((16, 16, 3), value, np.uint8))
    return data.tobytes()


@pytest.mark.parametrize(
    ("head", "media_type"),
    [
        (b"%PDF-1.7\n", "application/pdf"),
        (b"\xef\xbb\xbfjunk before %PDF-1.4", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n\0\0", "image/png"),
        (b"\xff\xd8\xff\xe0\0\x10JFIF", "image/jpeg"),
        (b"II*\x00\x08\0\0\0", "image/tiff"),
        (b"MM\x00*\0\0\0\x08", "image/tiff"),
        (b"RIFF\x10\0\0\0WEBPVP8 ", "image/webp"),
        (b"BM" + b"\0" * 12 + (40).to_bytes(4, "little"), "image/bmp"),
        (b"BMW and other notes, plain text", None),
        (b"GIF89a\x01\x00", None),
        (b"PK\x03\x04", None),
        (b"hello", None),
    ],
)
def test_sniff_media_type(head: bytes, media_type: str | None) -> None:
    assert sniff_media_type(head) == media_type


def test_document_id_is_sha256_and_duplicates_collapse(write) -> None:
    data = make_pdf([PdfPage()])
    a = write("in/a.pdf", data)
    write("in/copy of a.pdf", data)
    write("in/sub/other.png", _png())
    items = list(discover([a.parent]))
    assert all(isinstance(i, Document) for i in items)
    assert [Path(i.path).name for i in items] == ["a.pdf", "other.png"]
    doc = items[0]
    assert isinstance(doc, Document)
    assert doc.document_id == hashlib.sha256(data).hexdigest()
    assert (doc.media_type, doc.size_bytes) == ("application/pdf", len(data))


def test_folders_recurse_skip_hidden_and_globs_match(write, tmp_path: Path) -> None:
    write("inbox/b.png", _png(1))
    write("inbox/deep/er/c.png", _png(2))
    write("inbox/.hidden.png", _png(3))
    write("inbox/.git/d.png", _png(4))
    write("scans/x.png", _png(5))
    write("scans/y.txt", b"notes")
    names = [Path(d.path).name for d in discover(tmp_path / "inbox")]
    assert names == ["b.png", "c.png"]
    found = list(discover(str(tmp_path / "scans" / "*.png")))
    assert [Path(d.path).name for d in found] == ["x.png"]
    recursive = list(discover(str(tmp_path / "**" / "*.png")))
    assert len(recursive) == 3


def test_bad_inputs_are_yielded_as_errors_and_the_rest_goes_on(write, tmp_path: Path) -> None:
    good = write("batch/good.png", _png())
    write("batch/empty.pdf", b"")
    write("batch/notes.pdf", b"This is not a PDF, just text that someone renamed.\n")
    write("batch/archive.pdf", b"PK\x03\x04" + b"\0" * 40)
    write("batch/anim.gif", b"GIF89a" + b"\0" * 40)
    items = list(discover([tmp_path / "batch", tmp_path / "nope.pdf"]))
    by_name = {Path(i.path).name: i for i in items}
    assert isinstance(by_name["good.png"], Document)
    assert by_name["good.png"].path == str(good)
    assert isinstance(by_name["empty.pdf"], EmptyFileError)
    notes = by_name["notes.pdf"]
    assert isinstance(notes, UnsupportedFormatError)
    assert "content is a text file (named '.pdf')" in str(notes)
    assert "convert it to PDF, PNG, JPEG, TIFF, BMP or WebP" in str(notes)
    assert "ZIP archive" in str(by_name["archive.pdf"])
    assert "GIF image" in str(by_name["anim.gif"])
    missing = by_name["nope.pdf"]
    assert isinstance(missing, FileMissingError)
    assert str(missing).startswith(str(tmp_path / "nope.pdf") + ": file does not exist")


def test_no_documents_found(write, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (error,) = discover(tmp_path / "empty")
    assert isinstance(error, NoDocumentsFoundError)
    assert "folder contains no files" in str(error)
    write("texts/readme.txt", b"hello")
    kinds = [type(i) for i in discover(tmp_path / "texts")]
    assert kinds == [UnsupportedFormatError], "the folder gets no error row beside its file's"
    (error,) = discover(str(tmp_path / "*.pdf"))
    assert isinstance(error, NoDocumentsFoundError) and "pattern" in str(error)


def test_text_detection_survives_a_cut_multibyte_character(write) -> None:
    text = ("x" * 12 + "Rechnung für Müller – " * 100).encode()
    with pytest.raises(UnicodeDecodeError):
        text[:1024].decode()  # the 1 KiB head that is sniffed ends mid-character
    with pytest.raises(UnsupportedFormatError, match="content is a text file"):
        open_document(write("rechnung.pdf", text))
    with pytest.raises(UnsupportedFormatError, match="content is not a PDF or a supported image"):
        open_document(write("blob.pdf", bytes(range(256)) * 8))


def test_file_size_limit(write) -> None:
    path = write("big.pdf", make_pdf([PdfPage()]))
    with pytest.raises(FileTooLargeError, match="more than max_file_bytes=100"):
        open_document(path, IngestOptions(max_file_bytes=100))


def test_unreadable_file(write, monkeypatch) -> None:
    path = write("locked.png", _png())

    def deny(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    # ``ingest.discover`` is the function; the module holding it is looked up by name.
    module = importlib.import_module("ingest.discover")
    monkeypatch.setattr(module, "open", deny, raising=False)
    with pytest.raises(FileUnreadableError, match=r"cannot read file \(Permission denied\)"):
        open_document(path)


def test_a_folder_given_as_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(FileUnreadableError, match="not a regular file"):
        open_document(tmp_path)


def test_image_that_vanishes_before_it_is_read(write) -> None:
    path = write("gone.png", _png())
    doc = open_document(path)
    path.unlink()
    with pytest.raises(FileMissingError) as info:
        list(iter_pages(doc))
    assert isinstance(info.value, IngestError) and info.value.path == str(path)
