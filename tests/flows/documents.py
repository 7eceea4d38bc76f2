"""Input documents for flow tests, generated in code: PDFs, images and broken files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from tests.craft.pages import text_page


def write_pdf(path: Path, pages: list[np.ndarray], dpi: int = 100) -> Path:
    """A PDF whose pages are the given BGR images at ``dpi``."""
    images = [Image.fromarray(np.ascontiguousarray(p[..., ::-1])) for p in pages]
    images[0].save(path, save_all=True, append_images=images[1:], resolution=dpi)
    return path


def make_inbox(folder: Path) -> dict[str, Path]:
    """A 2-page PDF, a PNG photo, and a truncated PNG: what a real inbox looks like."""
    folder.mkdir(parents=True, exist_ok=True)
    pdf = write_pdf(
        folder / "letter.pdf",
        [
            text_page(["Dear customer", "Your invoice 2026-17"], size=(300, 520)),
            text_page(["Kind regards", "Accounts team"], size=(300, 520)),
        ],
    )
    png = folder / "receipt.png"
    cv2.imwrite(str(png), text_page(["Total 42.00 EUR"], size=(200, 480)))
    broken = folder / "broken.png"
    broken.write_bytes(png.read_bytes()[:200])
    return {"pdf": pdf, "png": png, "broken": broken}
