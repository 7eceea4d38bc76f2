"""Allowed input roots: the folders a flow run may read documents from.

A deployment's parameters come from whoever may start a run (the UI form, the API), so a run
from a deployment must not read whatever path it is given. ``OCRFLOW_INPUT_ROOTS`` (folders
separated by ``os.pathsep``, ``:`` on Linux) lists where inputs may live. A path is inside a
root when it *resolves* inside it (``Path.resolve()``: symlinks followed, ``..`` collapsed), so
``/srv/in/../../etc/passwd`` and a symlink in the inbox pointing to ``/etc`` are both outside.

The policy (:func:`check_inputs`): runs from a deployment need roots (none configured: every
input is refused, fail closed); local runs are checked when roots are configured, and free
otherwise. Files found inside a folder or pattern are checked one by one by
:func:`ingest.discover` (an escaping one becomes :class:`OutsideInputRootsError`, recorded
against that file only, and is never opened).

Limits: a hard link inside a root to a file outside cannot be told from a normal file, and a
path swapped for a symlink between the check and the read escapes it (time of check to time
of use). Give untrusted writers no write access to the roots' filesystem, or no way to create
links in them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import DocumentError

__all__ = [
    "ROOTS_SETTING",
    "InputRootsError",
    "InputRootsSettings",
    "OutsideInputRootsError",
    "check_inputs",
    "configured_roots",
    "resolve_inside",
]

ROOTS_SETTING = "OCRFLOW_INPUT_ROOTS"
_HOW = (
    "deployments made by `ocrflow deploy` set it on every run from the inbox and each "
    "`--input-root FOLDER` (run `ocrflow deploy --input-root FOLDER` again to add one); "
    f"for `ocrflow serve` or workers of your own, set {ROOTS_SETTING} in their environment to "
    f"the allowed folders, separated by '{os.pathsep}'"
)


class InputRootsSettings(BaseSettings):
    """``OCRFLOW_INPUT_ROOTS``: folders inputs must resolve inside (``os.pathsep``-separated)."""

    model_config = SettingsConfigDict(env_prefix="OCRFLOW_", extra="ignore")

    input_roots: str = Field(
        "",
        description="Folders inputs must resolve inside, separated by os.pathsep; empty = "
        "no roots (runs from a deployment are then refused).",
    )

    def roots(self) -> tuple[Path, ...]:
        """The roots, resolved (a root that is itself a symlink means its target)."""
        parts = (p.strip() for p in self.input_roots.split(os.pathsep))
        return tuple(dict.fromkeys(Path(p).expanduser().resolve() for p in parts if p))


def configured_roots() -> tuple[Path, ...]:
    """``OCRFLOW_INPUT_ROOTS``, read now (not cached, so tests and workers can change it)."""
    return InputRootsSettings().roots()


class InputRootsError(ValueError):
    """An input is outside the allowed roots, or a deployment run has no roots configured."""


class OutsideInputRootsError(DocumentError):
    """A file found in a folder or pattern resolves outside the roots (e.g. a symlink)."""

    default_hint = f"only files inside {ROOTS_SETTING} are read; move the file into a root"


def resolve_inside(path: str | os.PathLike[str], roots: Sequence[Path]) -> Path | None:
    """``path`` resolved, if it is inside one of ``roots`` (already resolved); else None."""
    try:
        resolved = Path(path).expanduser().resolve()
    except (OSError, RuntimeError):  # a symlink loop, an unreadable component: not provably in
        return None
    return resolved if any(resolved.is_relative_to(root) for root in roots) else None


def check_inputs(
    inputs: Iterable[str | os.PathLike[str]],
    *,
    from_deployment: bool,
    roots: Sequence[Path] | None = None,
) -> tuple[Path, ...] | None:
    """Apply the roots policy to a run's inputs; return the roots to enforce (None: none).

    Args:
        inputs: files, folders or glob patterns, as the run was given them.
        from_deployment: whether the run comes from a deployment.
        roots: the allowed roots (resolved); None reads ``OCRFLOW_INPUT_ROOTS``.

    Raises:
        InputRootsError: an input resolves outside every root (the message names it and the
            setting), or the run is from a deployment and no roots are configured.
    """
    allowed = configured_roots() if roots is None else tuple(roots)
    if not allowed:
        if from_deployment:
            raise InputRootsError(
                f"refusing to read inputs: this run comes from a deployment and {ROOTS_SETTING} "
                f"is not set, so no input path is allowed; {_HOW}"
            )
        return None
    listed = ", ".join(str(r) for r in allowed)
    for item in inputs:
        if resolve_inside(item, allowed) is None:
            try:
                resolved = str(Path(item).expanduser().resolve())
            except (OSError, RuntimeError):
                resolved = "?"
            where = "" if resolved == os.fspath(item) else f" (resolves to {resolved})"
            raise InputRootsError(
                f"input '{os.fspath(item)}'{where} is outside the allowed input roots "
                f"{ROOTS_SETTING}={listed}; give a path inside them, or allow its folder: {_HOW}"
            )
    return allowed
