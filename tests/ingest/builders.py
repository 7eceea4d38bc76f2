"""Builders for ingestion tests: every PDF is generated here, in code (no binaries in git).

``make_pdf`` writes minimal PDFs byte by byte (so tests control MediaBox, CropBox, /Rotate,
broken page objects and encryption); images come from OpenCV and Pillow.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

# PDF Standard security handler padding (PDF 1.7, 7.6.3.3, Algorithm 2).
_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def _rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


@dataclass
class PdfPage:
    content: bytes = b""
    mediabox: tuple[float, float, float, float] = (0, 0, 612, 792)
    cropbox: tuple[float, float, float, float] | None = None
    rotate: int = 0


@dataclass
class _Encryption:
    user_password: bytes
    key: bytes = b""
    entries: dict[str, bytes] = field(default_factory=dict)


def make_pdf(
    pages: list[PdfPage], *, missing_page: int | None = None, user_password: str | None = None
) -> bytes:
    """A minimal valid PDF; ``missing_page`` (1-based) points that page at a missing object.

    ``user_password`` encrypts it with the Standard handler, RC4 40-bit (revision 2): the
    oldest scheme, but poppler checks the password the same way as for AES.
    """
    file_id = hashlib.md5(repr(pages).encode()).digest()
    enc = None
    if user_password is not None:
        owner_key = hashlib.md5((b"owner-" + user_password.encode() + _PAD)[:32]).digest()[:5]
        owner = _rc4(owner_key, (user_password.encode() + _PAD)[:32])
        perms = (-44).to_bytes(4, "little", signed=True)
        padded = (user_password.encode() + _PAD)[:32]
        key = hashlib.md5(padded + owner + perms + file_id).digest()[:5]
        enc = _Encryption(user_password.encode(), key)
        enc.entries = {"O": owner, "U": _rc4(key, _PAD)}

    objs: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    kids = []
    for n, page in enumerate(pages, start=1):
        pid, cid = 2 + 2 * n, 3 + 2 * n
        kids.append(999 if n == missing_page else pid)
        d = b"<< /Type /Page /Parent 2 0 R /MediaBox [%s]" % _nums(page.mediabox)
        if page.cropbox is not None:
            d += b" /CropBox [%s]" % _nums(page.cropbox)
        if page.rotate:
            d += b" /Rotate %d" % page.rotate
        d += b" /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % cid
        objs[pid] = d
        data = page.content
        if enc is not None:
            okey = hashlib.md5(enc.key + cid.to_bytes(3, "little") + b"\0\0").digest()[:10]
            data = _rc4(okey, data)
        objs[cid] = b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"
    refs = b" ".join(b"%d 0 R" % k for k in kids)
    objs[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(pages))
    trailer_extra = b" /ID [<%s> <%s>]" % (file_id.hex().encode(), file_id.hex().encode())
    if enc is not None:
        enc_id = max(objs) + 1
        objs[enc_id] = b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P -44 >>" % (
            enc.entries["O"].hex().encode(),
            enc.entries["U"].hex().encode(),
        )
        trailer_extra += b" /Encrypt %d 0 R" % enc_id

    return pdf_file(objs, trailer_extra)


def pdf_file(objs: dict[int, bytes], trailer_extra: bytes = b"") -> bytes:
    """A PDF from numbered object bodies (1 = the catalog), with a correct xref table."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for k in sorted(objs):
        offsets[k] = len(out)
        out += b"%d 0 obj\n" % k + objs[k] + b"\nendobj\n"
    xref = len(out)
    size = max(objs) + 1
    out += b"xref\n0 %d\n" % size
    for k in range(size):
        out += b"%010d 00000 n \n" % offsets[k] if k in offsets else b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\n" % (size, trailer_extra)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def _nums(values: tuple[float, ...]) -> bytes:
    return " ".join(f"{v:g}" for v in values).encode()


def rect_content(x: float, y: float, w: float, h: float) -> bytes:
    """A black filled rectangle, in PDF points (origin bottom-left)."""
    return b"0 0 0 rg %s re f" % _nums((x, y, w, h))


def text_content(text: str) -> bytes:
    return b"BT /F1 24 Tf 72 700 Td (%s) Tj ET" % text.encode()
