"""The command line's help as a new user reads it, through the real console script."""

from __future__ import annotations

import subprocess

import pytest

from tests.faults.support import OCRFLOW, prefect_env

COMMANDS = (
    (), ("run",), ("detect",), ("demo",), ("query",), ("search",), ("deploy",), ("serve",),
    ("export-onnx",), ("db",), ("db", "upgrade"), ("db", "current"),
)  # fmt: skip


def ocrflow(*args: str) -> subprocess.CompletedProcess[str]:
    env = prefect_env()
    env["COLUMNS"] = "120"
    return subprocess.run(
        [str(OCRFLOW), *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def helps() -> dict[tuple[str, ...], str]:
    out = {}
    for command in COMMANDS:
        done = ocrflow(*command, "--help")
        assert done.returncode == 0, done
        out[command] = done.stdout
    return out


def test_version() -> None:
    from importlib.metadata import version

    done = ocrflow("--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"ocrflow {version('ocrflow')}")


def test_no_placeholders_or_doubled_ellipses(helps: dict[tuple[str, ...], str]) -> None:
    for command, text in helps.items():
        assert "<bool>" not in text, command  # flags take no value
        assert "...}..." not in text and "{PATH...}" not in text, command
    assert "Usage: ocrflow run [OPTIONS] {PATH}..." in helps[("run",)]


def test_every_option_says_what_it_does(helps: dict[tuple[str, ...], str]) -> None:
    run = helps[("run",)]
    overlays = next(line for line in run.splitlines() if "--overlays" in line)
    assert "overlay image per" in overlays
    # One name for the output folder, in every command that writes one.
    for command in (("run",), ("detect",), ("demo",), ("deploy",), ("serve",)):
        assert "--output-dir" in helps[command], command
        assert "--output " not in helps[command] and "--overlay " not in helps[command]
    for command in (("run",), ("detect",)):
        for flag in ("--first-page", "--last-page", "--quiet", "--verbose"):
            assert flag in helps[command], (command, flag)
    inbox = [
        next(line for line in helps[(c,)].splitlines() if "--inbox" in line)
        for c in ("deploy", "serve")
    ]
    assert inbox[0] != inbox[1], "serve's --inbox help is its own"
    assert "Exit codes, every command" in helps[()]
