"""Score recognition against a PDF's own text layer (``pdftotext -bbox``), matched by position.

Born-digital PDFs carry the exact words and their boxes, which makes them free ground truth:
each true word is assigned to the detected region that contains its centre, the words of a
region (in reading order) are aligned with the words read there, and a true word counts as
correct when the aligned word is identical after :func:`normalize`. Words in no region count as
missed, so the score covers detection and recognition together, as an analyst sees them.

- word accuracy: correct true words / all true words;
- character error rate (CER): edit distance between each region's true and read text (words
  joined by spaces), plus the characters of missed words, over all true characters.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from html import unescape
from pathlib import Path

__all__ = ["Score", "TruthWord", "normalize", "pdf_words", "score_page"]

_WORD = re.compile(
    r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>'
)
_PAGE = re.compile(r"<page width=")
_FOLD = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "−": "-"})


@dataclass(frozen=True, slots=True)
class TruthWord:
    """A word of the text layer, its box in page pixels (x right, y down)."""

    text: str
    box: tuple[float, float, float, float]

    @property
    def center(self) -> tuple[float, float]:
        """Centre of the box."""
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2


@dataclass(frozen=True, slots=True)
class Score:
    """Counts behind word accuracy and CER; add them up over pages with ``+``."""

    words: int = 0
    correct: int = 0
    chars: int = 0
    char_errors: int = 0

    @property
    def word_accuracy(self) -> float:
        """Correct true words / true words."""
        return self.correct / self.words if self.words else 1.0

    @property
    def cer(self) -> float:
        """Character edit distance / true characters."""
        return self.char_errors / self.chars if self.chars else 0.0

    def __add__(self, other: Score) -> Score:
        return Score(
            self.words + other.words,
            self.correct + other.correct,
            self.chars + other.chars,
            self.char_errors + other.char_errors,
        )


def normalize(text: str) -> str:
    """NFKC (splits ligatures such as "ﬁ") and typographic quotes and dashes to ASCII."""
    return unicodedata.normalize("NFKC", text).translate(_FOLD)


def pdf_words(pdf: str | Path, page_number: int, dpi: float) -> list[TruthWord]:
    """The text layer's words of one page (1-based), boxes scaled to pixels at ``dpi``."""
    out = subprocess.run(
        ["pdftotext", "-bbox", "-f", str(page_number), "-l", str(page_number), str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if not _PAGE.search(out):
        raise ValueError(f"{pdf} has no page {page_number}")
    s = dpi / 72.0
    return [
        TruthWord(normalize(unescape(w)), (float(a) * s, float(b) * s, float(c) * s, float(d) * s))
        for a, b, c, d, w in _WORD.findall(out)
    ]


def _inside(point: tuple[float, float], polygon: Sequence[tuple[float, float]]) -> bool:
    x, y = point
    sign = 0
    for i in range(4):
        (ax, ay), (bx, by) = polygon[i], polygon[(i + 1) % 4]
        cross = (bx - ax) * (y - ay) - (by - ay) * (x - ax)
        if cross != 0:
            if sign and (cross > 0) != (sign > 0):
                return False
            sign = 1 if cross > 0 else -1
    return True


def _edits(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def score_page(
    truth: Sequence[TruthWord],
    polygons: Sequence[Sequence[tuple[float, float]]],
    texts: Sequence[str | None],
) -> Score:
    """Score one page: true words against the text read in the regions holding them.

    Args:
        truth: from :func:`pdf_words`, at the resolution the regions were detected at.
        polygons: the regions' polygons.
        texts: the text read per region (``None``: not read).

    Returns:
        The page's counts; see the module docstring for the matching rules.
    """
    owned: list[list[TruthWord]] = [[] for _ in polygons]
    missed: list[TruthWord] = []
    for word in truth:
        # Smallest containing region: a stray page-sized box must not swallow the others.
        holders = [i for i, poly in enumerate(polygons) if _inside(word.center, poly)]
        if not holders:
            missed.append(word)
            continue
        owned[min(holders, key=lambda i: _area(polygons[i]))].append(word)
    missed_chars = sum(len(normalize(w.text)) for w in missed)
    score = Score(words=len(missed), chars=missed_chars, char_errors=missed_chars)
    for words, text in zip(owned, texts, strict=True):
        if not words:
            continue
        words.sort(key=lambda w: w.box[0])
        true = [normalize(w.text) for w in words]
        read = normalize(text or "").split()
        matcher = SequenceMatcher(a=true, b=read, autojunk=False)
        correct = sum(block.size for block in matcher.get_matching_blocks())
        true_line, read_line = " ".join(true), " ".join(read)
        score = score + Score(len(true), correct, len(true_line), _edits(true_line, read_line))
    return score


def _area(polygon: Sequence[tuple[float, float]]) -> float:
    return abs(
        sum(
            polygon[i][0] * polygon[(i + 1) % 4][1] - polygon[(i + 1) % 4][0] * polygon[i][1]
            for i in range(4)
        )
        / 2
    )
