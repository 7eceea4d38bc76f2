"""``ocrflow run`` errors as a user meets them: the real console script, one line each, the exit
code the README promises, and nothing started that the error makes pointless."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.db_fixtures import _empty_pg
from tests.faults.support import DETECTOR_FLAGS, OCRFLOW, prefect_env
from tests.flows.documents import make_inbox

SERVER_BANNER = "starting a temporary local Prefect server"


def ocrflow(*args: str, cwd: Path, api_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = prefect_env(api_url)
    env.pop("PREFECT_LOGGING_LEVEL", None)  # ocrflow's own default, as a user has it
    if api_url is None:
        env.pop("PREFECT_API_URL", None)
    env["COLUMNS"] = "80"  # a narrow terminal must not wrap error lines
    return subprocess.run(
        [str(OCRFLOW), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.strip()]


def test_missing_file_is_said_before_any_server_starts(tmp_path: Path) -> None:
    done = ocrflow("run", "nope.pdf", cwd=tmp_path)
    assert done.returncode == 2, done
    assert error_lines(done) == [
        "error: nope.pdf: file does not exist; check the path; the file may have been moved or "
        "deleted"
    ]
    assert SERVER_BANNER not in done.stderr
    assert not (tmp_path / "ocrflow.db").exists(), "nothing to do: no database created"


def test_unreachable_database_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "memo.png").write_bytes(
        make_inbox(tmp_path / "inbox")["png"].read_bytes()
    )  # a readable input, so the database is what fails
    url = "postgresql://u:s3cr3t@127.0.0.1:1/x"
    done = ocrflow("run", "memo.png", "--database-url", url, cwd=tmp_path)
    assert done.returncode == 2, done
    [line] = error_lines(done)
    assert line.startswith("error: cannot reach postgresql+psycopg://u:***@127.0.0.1:1/x")
    assert "--database-url" in line
    assert "s3cr3t" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr and SERVER_BANNER not in done.stderr


def test_database_without_schema_is_one_line_exit_2(pg_url: str, tmp_path: Path) -> None:
    _empty_pg(pg_url)
    files = make_inbox(tmp_path / "inbox")
    done = ocrflow("run", str(files["png"]), "--database-url", pg_url, cwd=tmp_path)
    assert done.returncode == 2, done
    [line] = error_lines(done)
    assert "has no ocrflow schema: run `ocrflow db upgrade`" in line
    assert "Traceback" not in done.stderr and SERVER_BANNER not in done.stderr


def test_page_ranges_that_select_nothing_are_refused_up_front(tmp_path: Path) -> None:
    pdf = str(make_inbox(tmp_path / "inbox")["pdf"])
    zero = ocrflow("run", pdf, "--first-page", "0", cwd=tmp_path)
    assert zero.returncode == 2 and "--first-page" in zero.stderr, zero
    backwards = ocrflow("run", pdf, "--first-page", "3", "--last-page", "2", cwd=tmp_path)
    assert backwards.returncode == 2, backwards
    assert "--last-page 2 is before --first-page 3" in backwards.stderr
    for done in (zero, backwards):
        assert SERVER_BANNER not in done.stderr
    detect = ocrflow("detect", pdf, "--first-page", "3", "--last-page", "2", cwd=tmp_path)
    assert detect.returncode == 2 and "is before --first-page 3" in detect.stderr, detect


def test_a_range_past_the_end_fails_the_document_and_each_error_is_said_once(
    prefect_api_url: str, tmp_path: Path
) -> None:
    """On a real server: the documents fail with their reasons (exit 2, nothing succeeded),
    the folder argument gets no row of its own, and the run's URL is printed."""
    files = make_inbox(tmp_path / "inbox")
    files["png"].unlink()
    url = f"sqlite:///{tmp_path / 'ocrflow.db'}"
    done = ocrflow(
        "run", str(tmp_path / "inbox"), "--first-page", "5", "--database-url", url,
        "--no-overlays", *DETECTOR_FLAGS, cwd=tmp_path, api_url=prefect_api_url,
    )  # fmt: skip
    assert done.returncode == 2, done
    rows = [line for line in done.stdout.splitlines() if "│" in line]  # body rows only
    named = sorted(line.split("│")[1].strip() for line in rows)
    assert named == ["broken.png", "letter.pdf"], done.stdout  # no row for the folder
    assert all("failed" in line for line in rows)
    lines = error_lines(done)
    letter = [line for line in lines if "first_page=5 but the document has only 2 page" in line]
    broken = [line for line in lines if "broken.png" in line]
    assert len(letter) == 1 and len(broken) == 1, done.stderr  # once, not also as a log line
    assert broken[0].count("broken.png") == 1, broken  # the path is not said twice
    assert letter[0].endswith("lower first_page"), letter  # one line, not wrapped at 80
    assert lines[-1].startswith(f"flow run: {prefect_api_url.removesuffix('/api')}/runs/flow-run/")


def test_a_run_on_a_temporary_server_prints_no_log_noise(tmp_path: Path) -> None:
    """The terminal holds the banner, the progress, the table and the errors: no Prefect log
    line (the per-document ones are in the table) and nothing from the temporary server's
    shutdown (its services used to print 'Error flushing events' tracebacks)."""
    inbox = tmp_path / "inbox"
    make_inbox(inbox)
    url = f"sqlite:///{tmp_path / 'ocrflow.db'}"
    done = ocrflow("run", str(inbox), "--database-url", url, *DETECTOR_FLAGS, cwd=tmp_path)
    assert done.returncode == 1, done
    noise = [
        line
        for line in error_lines(done)
        if not line.startswith((SERVER_BANNER, "pages ")) and "broken.png" not in line
    ]
    assert noise == [], done.stderr
    assert "receipt.png" in done.stdout and "letter.pdf" in done.stdout
