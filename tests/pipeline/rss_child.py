"""Child process of ``test_memory``: ``ocrflow run`` (the pipeline here, no server) on a PDF
with the replay detector, then its own peak RSS in MiB on the last line of stdout.

Usage: python -m tests.pipeline.rss_child RECORDING PDF DATABASE_URL OUTPUT_DIR
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def main() -> None:
    recording_dir, pdf, url, out = sys.argv[1:5]
    from cli.runner import run_flow_with_progress
    from craft.replay import Recording, replaying
    from flows.params import DetectorOptions

    with replaying(Recording(Path(recording_dir)), seconds_per_page=0.0):
        summary = run_flow_with_progress(
            [pdf],
            detector=DetectorOptions(preset="words"),
            database_url=url,
            output=Path(out),
            quiet=True,
        )
    assert summary.exit_code == 0, summary
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


if __name__ == "__main__":
    main()
