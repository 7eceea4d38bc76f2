"""``ocrflow run`` against ``ocrflow detect`` on small one-page scans, whole process each.

(a) marginal cost of one more scan: (time for N scans - time for few scans) / (N - few), for
    ``run`` (detection, SQL rows, overlays) and for ``detect`` (detection, JSON), so start-up
    (imports, model load) cancels out; the issue's target is run <= 1.25x detect.
(c) ``ocrflow run`` on one scan without a Prefect server (the pipeline runs in the CLI's
    process) against ``ocrflow detect`` on it: target within 5 s.

Both commands run as a user runs them (no PREFECT_API_URL), default preset, same scans, one
run of this script: the ratios are what to read; the seconds depend on the machine and load.

    .venv/bin/python bench/bench_cli.py [--scans 16] [--few 2]
    # another checkout ("before"): its CLI module, its packages first on the path
    .venv/bin/python bench/bench_cli.py \
        --ocrflow "env PYTHONPATH=../old .venv/bin/python -m flows.cli"
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scans import make_scans  # noqa: E402  (bench/, the script's folder)

OCRFLOW = [str(Path(sys.executable).with_name("ocrflow"))]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("PREFECT_API_URL", "OCRFLOW_DATABASE_URL"):
        env.pop(key, None)
    return env


def timed(args: list[str], cwd: Path) -> float:
    """Seconds of one ``ocrflow`` process (exit 0 required)."""
    t0 = time.monotonic()
    done = subprocess.run([*OCRFLOW, *args, "-q"], cwd=cwd, env=_env(), capture_output=True,
                          text=True, check=False)  # fmt: skip
    seconds = time.monotonic() - t0
    if done.returncode != 0:
        raise RuntimeError(f"ocrflow {args[0]} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds


def run_scans(scans: list[Path], work: Path, tag: str) -> float:
    db = f"sqlite:///{work / f'{tag}.db'}"
    return timed(["run", *map(str, scans), "--database-url", db, "-o", str(work / tag)], work)


def detect_scans(scans: list[Path], work: Path, tag: str) -> float:
    return timed(["detect", *map(str, scans), "--json", str(work / f"{tag}.jsonl"),
                  "-o", str(work / tag)], work)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scans", type=int, default=16, help="N, the many-scans run")
    ap.add_argument("--few", type=int, default=2, help="the few-scans run")
    ap.add_argument("--ocrflow", help="command that runs the CLI (default: this venv's ocrflow)")
    args = ap.parse_args()
    if args.ocrflow:
        OCRFLOW[:] = shlex.split(args.ocrflow)
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        work = Path(tmp)
        scans = make_scans(work / "scans", args.scans)
        few, many = scans[: args.few], scans
        # Warm the file cache and the ONNX model once, outside the clock.
        detect_scans(scans[:1], work, "warm")
        t = {
            "detect 1": detect_scans(scans[:1], work, "d1"),
            "run 1": run_scans(scans[:1], work, "r1"),
            "detect few": detect_scans(few, work, "dfew"),
            "run few": run_scans(few, work, "rfew"),
            "detect many": detect_scans(many, work, "dmany"),
            "run many": run_scans(many, work, "rmany"),
        }
    n = args.scans - args.few
    marginal_detect = (t["detect many"] - t["detect few"]) / n
    marginal_run = (t["run many"] - t["run few"]) / n
    for key, seconds in t.items():
        print(f"{key:12s} {seconds:7.1f} s")
    print(f"(a) marginal s/scan: detect {marginal_detect:.2f}, run {marginal_run:.2f}, "
          f"ratio {marginal_run / marginal_detect:.2f}x (target <= 1.25x)")  # fmt: skip
    print(f"(c) one scan: run - detect = {t['run 1'] - t['detect 1']:+.1f} s (target <= 5 s)")


if __name__ == "__main__":
    main()
