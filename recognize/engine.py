"""Tesseract 5 through its C API (``tesserocr``): one engine per process, reused.

Creating a ``TessBaseAPI`` loads the language models (tens of MB, ~0.1-0.5 s), so each process
keeps one per (languages, tessdata) in :func:`get_engine` and only switches the page
segmentation mode between reads: PSM 7 (single line) for line regions, PSM 8 (single word) for
word regions. The ``tesserocr`` wheel bundles libtesseract but no language data; the data comes
from the system (Debian: ``tesseract-ocr-eng``) and is found through :func:`find_tessdata`.

Everything that can be missing (the module, the data directory, a language) raises one
:class:`TesseractNotFoundError` that says what to install, so detection can go on without it.
"""

from __future__ import annotations

import glob
import os
import threading
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

__all__ = [
    "Mode",
    "TesseractEngine",
    "TesseractNotFoundError",
    "check_tesseract",
    "find_tessdata",
    "get_engine",
    "tesseract_version",
]

Mode = Literal["line", "word"]
"""``line``: read the crop as one text line (PSM 7); ``word``: as one word (PSM 8)."""

_INSTALL_HINT = (
    "install Tesseract 5 and its English data (Debian/Ubuntu: "
    "`apt-get install tesseract-ocr tesseract-ocr-eng`) and the Python binding "
    "(`pip install tesserocr`), or set TESSDATA_PREFIX to the folder holding "
    "<lang>.traineddata"
)
_TESSDATA_GLOBS = (
    "/usr/share/tesseract-ocr/*/tessdata",
    "/usr/share/tesseract-ocr/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
    "/opt/homebrew/share/tessdata",
)


class TesseractNotFoundError(RuntimeError):
    """Tesseract, ``tesserocr`` or the requested language data is not installed."""


def _tesserocr() -> Any:
    # Debian's libtesseract uses OpenMP; its threads contend with each other and with the
    # other workers (3x slower per page on a busy 2-core machine). Parallelism comes from
    # processes (recognize.recognizer.RecognitionPool), so one thread each. Read by libgomp
    # when it loads: set before the first import (a process that loaded torch already has it).
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    try:
        import tesserocr
    except ImportError as error:
        raise TesseractNotFoundError(
            f"text recognition needs tesserocr ({error}): {_INSTALL_HINT}"
        ) from None
    return tesserocr


def _split_languages(languages: str | Sequence[str]) -> list[str]:
    parts = languages.split("+") if isinstance(languages, str) else list(languages)
    langs = [p.strip() for p in parts if p.strip()]
    if not langs:
        raise ValueError(f"no language in '{languages}': expected e.g. 'eng' or 'eng+deu'")
    return langs


def find_tessdata(languages: str | Sequence[str] = "eng", tessdata: str | None = None) -> str:
    """The tessdata folder holding every language in ``languages``.

    Looks at ``tessdata``, then ``TESSDATA_PREFIX``, then the usual system folders (Debian's
    ``/usr/share/tesseract-ocr/5/tessdata`` first).

    Raises:
        TesseractNotFoundError: no folder holds all the languages; the message lists where it
            looked and what to install.
    """
    langs = _split_languages(languages)
    candidates: list[str] = []
    if tessdata:
        candidates.append(tessdata)
    elif os.environ.get("TESSDATA_PREFIX"):
        prefix = os.environ["TESSDATA_PREFIX"]
        candidates += [prefix, os.path.join(prefix, "tessdata")]
    else:
        for pattern in _TESSDATA_GLOBS:
            candidates += sorted(glob.glob(pattern), reverse=True)  # newest version first
    for folder in candidates:
        if all(os.path.isfile(os.path.join(folder, f"{lang}.traineddata")) for lang in langs):
            return folder.rstrip("/") + "/"
    looked = ", ".join(candidates) or ", ".join(_TESSDATA_GLOBS)
    raise TesseractNotFoundError(
        f"no Tesseract data for '{'+'.join(langs)}' (looked in {looked}): {_INSTALL_HINT}"
    )


def check_tesseract(languages: str | Sequence[str] = "eng", tessdata: str | None = None) -> str:
    """Check that recognition can run here, before any page is read; return the data folder.

    Call it once at start-up to switch recognition off with one clear message (detection does
    not need Tesseract).

    Raises:
        TesseractNotFoundError: ``tesserocr`` or the language data is missing.
    """
    _tesserocr()
    return find_tessdata(languages, tessdata)


def tesseract_version() -> str:
    """First line of the bundled Tesseract's version, e.g. ``tesseract 5.5.4``.

    Raises:
        TesseractNotFoundError: ``tesserocr`` is not installed.
    """
    return str(_tesserocr().tesseract_version()).splitlines()[0]


class TesseractEngine:
    """One loaded Tesseract model set; :meth:`read` is not thread-safe (one per thread)."""

    def __init__(self, languages: str | Sequence[str] = "eng", tessdata: str | None = None):
        """Load the LSTM models for ``languages`` (``"eng"``, ``"eng+deu"`` or a list).

        Raises:
            TesseractNotFoundError: see :func:`find_tessdata`.
        """
        tesserocr = _tesserocr()
        self.languages = "+".join(_split_languages(languages))
        self.tessdata = find_tessdata(self.languages, tessdata)
        try:
            self._api = tesserocr.PyTessBaseAPI(
                path=self.tessdata,
                lang=self.languages,
                psm=tesserocr.PSM.SINGLE_LINE,
                oem=tesserocr.OEM.LSTM_ONLY,
            )
        except RuntimeError as error:
            raise TesseractNotFoundError(
                f"Tesseract could not load '{self.languages}' from {self.tessdata} ({error}): "
                f"{_INSTALL_HINT}"
            ) from None
        # PSM 13 (raw line) is the fallback when PSM 7 reads nothing: the Tesseract 5.5 that
        # the PyPI tesserocr wheel bundles returns "" for some clean lines in PSM 7.
        self._psm = {
            "line": (tesserocr.PSM.SINGLE_LINE, tesserocr.PSM.RAW_LINE),
            "word": (tesserocr.PSM.SINGLE_WORD,),
        }

    def read(self, crop: np.ndarray, mode: Mode = "line") -> tuple[str, float]:
        """Read one upright grayscale crop.

        Args:
            crop: HxW uint8 gray image (see :func:`recognize.crop.crop_region`).
            mode: ``"line"`` (PSM 7, then PSM 13 if that reads nothing) or ``"word"`` (PSM 8).

        Returns:
            (text with whitespace collapsed, mean word confidence in [0, 1]); ("", 0.0) when
            nothing was read or Tesseract has zero confidence in what it read.
        """
        if mode not in self._psm:
            raise ValueError(f"unknown mode '{mode}': expected 'line' or 'word'")
        if crop.ndim != 2 or crop.dtype != np.uint8:
            raise ValueError(f"crop must be HxW uint8 gray, got {crop.shape} {crop.dtype}")
        crop = np.ascontiguousarray(crop)
        h, w = crop.shape
        api = self._api
        text = ""
        for psm in self._psm[mode]:
            api.SetPageSegMode(psm)
            api.SetImageBytes(crop.tobytes(), w, h, 1, w)
            api.SetSourceResolution(300)  # crops carry no DPI; silences "Invalid resolution"
            text = " ".join(api.GetUTF8Text().split())
            if text:
                break
        confidences = api.AllWordConfidences()
        confidence = sum(confidences) / len(confidences) / 100.0 if confidences else 0.0
        if not text or confidence <= 0:  # PSM 7/8 force a reading, even of a blank crop
            return "", 0.0
        return text, min(confidence, 1.0)

    def close(self) -> None:
        """Free the models (the engine cannot read afterwards)."""
        self._api.End()


_ENGINES: dict[tuple[str, str | None, int], TesseractEngine] = {}
_LOCK = threading.Lock()


def get_engine(
    languages: str | Sequence[str] = "eng", tessdata: str | None = None
) -> TesseractEngine:
    """This process's (and thread's) engine for ``languages``, created on first use.

    Raises:
        TesseractNotFoundError: see :func:`find_tessdata`.
    """
    key = ("+".join(_split_languages(languages)), tessdata, threading.get_ident())
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = TesseractEngine(languages, tessdata)
        return engine
