"""recognize stays Prefect-, database- and detector-free: worker processes import it alone."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.no_tesseract


def test_recognize_imports_no_prefect_sqlalchemy_or_torch() -> None:
    code = (
        "import sys, recognize, recognize.evaluate; "
        "bad = {'prefect', 'sqlalchemy', 'torch', 'craft', 'db'} & set(sys.modules); "
        "print(sorted(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
