"""Issue 8, "hostile inputs": >= 200 malformed files cost one typed error each, never the run.

The corpus (``tests.faults.hostile``, seeded) holds truncations of the sample PDF, a PNG and a
JPEG at 40 offsets each, 25 bit-flipped copies of each, wrong extensions, zero-byte files,
PNGs declaring up to 2^31 pixels, and PDFs with looping or 50 000-deep object graphs.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ingest
from tests.faults.hostile import write_hostile_corpus
from tests.faults.support import REPO_ROOT, prefect_env, run_to_end, snapshot

pytestmark = pytest.mark.slow

# Peak RSS bound of the ingesting process (its VmHWM: ru_maxrss would include the pytest
# process it was forked from). Python with numpy, OpenCV and Pillow imported is ~110 MB; the
# largest page it may hold is max_pixels (20 MP here) x 3 bytes = 60 MB, and iter_pages renders
# ahead on 2 threads, each page briefly in 2 copies (decoded, then BGR): 4 x 60 = 240 MB;
# 110 + 240 = 350 MB, rounded up to 400 MB. A decoded bomb (10^10 pixels = 30 GB) blows past it.
MAX_RSS_MB = 400
ERROR_KINDS = {name for name in ingest.__all__ if name.endswith("Error")}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_hostile_corpus(tmp_path_factory.mktemp("hostile") / "inbox")


def test_every_malformed_file_ends_as_a_document_or_a_typed_error(
    corpus: list[Path], tmp_path: Path
) -> None:
    assert len(corpus) >= 200
    report = tmp_path / "report.json"
    child = subprocess.run(
        [sys.executable, "-m", "tests.faults.ingest_child", str(corpus[0].parent), str(report)],
        cwd=REPO_ROOT,
        env=prefect_env(),
        capture_output=True,  # libpng and libjpeg complain on stderr about every broken file
        timeout=600,
    )
    assert child.returncode == 0, child.stderr.decode(errors="replace")[-4000:]
    data: dict[str, Any] = json.loads(report.read_text())
    outcomes: dict[str, dict[str, Any]] = data["outcomes"]
    assert sorted(outcomes) == sorted(map(str, corpus)), "a file was skipped or merged"
    escaped = {p: o for p, o in outcomes.items() if o["kind"] == "escaped"}
    assert not escaped, f"untyped exceptions escaped ingest: {escaped}"
    for path, outcome in outcomes.items():
        name = Path(path).name
        if outcome["kind"] == "document":
            for kind, message in outcome["page_errors"]:
                assert kind in ERROR_KINDS and name in message, (path, kind, message)
        else:
            assert outcome["kind"] in ERROR_KINDS, (path, outcome)
            assert name in outcome["message"] and "; " in outcome["message"], (path, outcome)
    # The bombs never got decoded: refused from their headers, page by page.
    for path, outcome in outcomes.items():
        if Path(path).name.startswith("huge-"):
            assert outcome["kind"] == "document" and outcome["pages"] == 0, (path, outcome)
            assert [k for k, _ in outcome["page_errors"]] == ["PageTooLargeError"], outcome
    usage = data["usage"]
    rss_mb = usage["self_max_rss_kb"] / 1024
    poppler_mb = usage["children_max_rss_kb"] / 1024
    kinds: dict[str, int] = {}
    for outcome in outcomes.values():
        kinds[outcome["kind"]] = kinds.get(outcome["kind"], 0) + 1
    print(f"\nhostile corpus: {len(corpus)} files in {usage['seconds']:.1f} s; {kinds}; "
          f"peak RSS {rss_mb:.0f} MB; poppler children <= {poppler_mb:.0f} MB; largest page "
          f"{usage['largest_page_pixels']:,} px")  # fmt: skip
    assert rss_mb < MAX_RSS_MB
    assert poppler_mb < MAX_RSS_MB


def test_a_sample_through_one_flow_run_completes(
    corpus: list[Path], prefect_api_url: str, tmp_path: Path
) -> None:
    by_name = {p.name: p for p in corpus}
    sample = sorted(corpus)[::13] + [  # every 13th file, and one of each nastiest kind
        by_name[n]
        for n in ("empty.pdf", "huge-100000x100000.png", "pages-cycle.pdf", "xobject-self.pdf",
                  "nested-arrays.pdf", "png-as.pdf", "text-as.pdf", "flip-jpg-04.jpg")
    ]  # fmt: skip
    sample = sorted(set(sample))
    assert len(sample) >= 20
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for path in sample:
        (inbox / path.name).write_bytes(path.read_bytes())
    url = f"sqlite:///{tmp_path / 'ocrflow.db'}"
    code = run_to_end([inbox], url, prefect_api_url, tmp_path, "--dpi", "50")
    assert code == 1, "some documents failed, some did not: exit code 1"
    snap = snapshot(url)
    assert [s for _, s in snap["runs"]] == ["completed"]
    statuses = [(status, error) for _, status, _, error in snap["documents"]]
    # One row per distinct content: documents are keyed by sha256 (the empty files share one).
    distinct = len({p.read_bytes() for p in sample})
    assert len(statuses) == distinct, "every file is a document row, failed or done"
    assert all(s in ("done", "partial", "failed") for s, _ in statuses), statuses
    assert all(e for s, e in statuses if s != "done"), "a failed document without a message"
    assert any(s == "done" for s, _ in statuses)
    # Every page of these failed (a page bomb, a page tree that contains itself): the document
    # is `failed`, never `done`, so `WHERE status = 'done'` means the pages are there.
    by_sha = {sha: status for sha, status, _, _ in snap["documents"]}
    for name in ("huge-100000x100000.png", "pages-cycle.pdf"):
        sha = hashlib.sha256(by_name[name].read_bytes()).hexdigest()
        assert by_sha[sha] == "failed", (name, by_sha[sha])
