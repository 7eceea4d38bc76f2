"""OCRFLOW_INPUT_ROOTS: inside, outside, ``..``, symlinks out (given, or found in a folder)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import cv2
import pytest

from ingest import Document, discover
from ingest.roots import (
    ROOTS_SETTING,
    InputRootsError,
    OutsideInputRootsError,
    check_inputs,
    configured_roots,
    resolve_inside,
)
from tests.craft.pages import text_page


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """``root/`` with a document, a sibling ``outside/`` with a secret document."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    page = text_page(["Invoice 12"], size=(120, 240))
    cv2.imwrite(str(root / "sub" / "in.png"), page)
    cv2.imwrite(str(outside / "secret.png"), page[::-1].copy())
    return {"root": root.resolve(), "outside": outside.resolve()}


def test_paths_inside_a_root_pass(tree: dict[str, Path]) -> None:
    root = tree["root"]
    assert resolve_inside(root / "sub" / "in.png", [root]) == root / "sub" / "in.png"
    assert resolve_inside(root, [root]) == root  # the root itself
    assert resolve_inside(root / "sub" / "not-yet.png", [root]) is not None  # need not exist
    assert check_inputs([str(root / "sub"), str(root / "*.png")], from_deployment=True,
                        roots=[root]) == (root,)  # fmt: skip


def test_paths_outside_every_root_are_refused(tree: dict[str, Path]) -> None:
    root, outside = tree["root"], tree["outside"]
    assert resolve_inside(outside / "secret.png", [root]) is None
    assert resolve_inside("/etc/passwd", [root]) is None
    # A sibling whose name starts like the root is not inside it.
    (root.parent / "root-evil").mkdir()
    assert resolve_inside(root.parent / "root-evil", [root]) is None
    with pytest.raises(InputRootsError) as err:
        check_inputs([str(root / "sub"), "/etc/passwd"], from_deployment=False, roots=[root])
    message = str(err.value)
    assert "'/etc/passwd'" in message and ROOTS_SETTING in message and str(root) in message


def test_dotdot_escapes_are_refused(tree: dict[str, Path]) -> None:
    root = tree["root"]
    sneaky = f"{root}/sub/../../outside/secret.png"
    assert resolve_inside(sneaky, [root]) is None
    with pytest.raises(InputRootsError, match=r"resolves to .*outside/secret\.png"):
        check_inputs([sneaky], from_deployment=True, roots=[root])
    with pytest.raises(InputRootsError):  # a pattern climbing out
        check_inputs([f"{root}/../outside/*.png"], from_deployment=True, roots=[root])
    assert resolve_inside(f"{root}/sub/../sub/in.png", [root]) is not None  # stays inside


def test_symlink_pointing_outside_is_refused(tree: dict[str, Path]) -> None:
    root, outside = tree["root"], tree["outside"]
    (root / "link.png").symlink_to(outside / "secret.png")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    (root / "inner.png").symlink_to(root / "sub" / "in.png")  # a symlink within: fine
    assert resolve_inside(root / "link.png", [root]) is None
    assert resolve_inside(root / "linkdir" / "secret.png", [root]) is None
    assert resolve_inside(root / "inner.png", [root]) == root / "sub" / "in.png"
    for given in (root / "link.png", root / "linkdir"):
        with pytest.raises(InputRootsError, match=ROOTS_SETTING):
            check_inputs([str(given)], from_deployment=True, roots=[root])


def test_symlink_loop_is_not_inside(tree: dict[str, Path]) -> None:
    root = tree["root"]
    (root / "a").symlink_to(root / "b")
    (root / "b").symlink_to(root / "a")
    # Python 3.13 raises on a loop, older versions return the path: either way not a document.
    found = resolve_inside(root / "a", [root])
    assert found is None or found.is_relative_to(root)


def test_folder_with_an_escaping_symlink_yields_a_refusal_and_never_opens_it(
    tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = tree["root"], tree["outside"]
    (root / "sub" / "evil.png").symlink_to(outside / "secret.png")
    opened: list[str] = []
    discover_module = importlib.import_module("ingest.discover")  # the package shadows it
    real_open = discover_module.open_document

    def spy(name: str, options: object = None) -> Document:
        opened.append(os.fspath(name))
        return real_open(name, options)

    monkeypatch.setattr(discover_module, "open_document", spy)
    for inputs in ([str(root)], [f"{root}/sub/*.png"], [f"{root}/**/*.png"]):
        opened.clear()
        found = list(discover(inputs, roots=[root]))
        docs = [d for d in found if isinstance(d, Document)]
        refused = [e for e in found if isinstance(e, OutsideInputRootsError)]
        assert [Path(d.path).name for d in docs] == ["in.png"], inputs
        assert [Path(e.path).name for e in refused] == ["evil.png"], inputs
        assert "outside the allowed input roots" in refused[0].message
        assert ROOTS_SETTING in refused[0].message
        assert not any(name.endswith("evil.png") for name in opened), "the escaping file was read"
    # Without roots (a local run with none configured) the same folder is read as before.
    names = sorted(Path(d.path).name for d in discover([str(root)]) if isinstance(d, Document))
    assert names == ["evil.png", "in.png"]


def test_deployment_runs_without_roots_fail_closed(
    tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ROOTS_SETTING, raising=False)
    with pytest.raises(InputRootsError) as err:
        check_inputs([str(tree["root"])], from_deployment=True)
    assert f"{ROOTS_SETTING} is not set" in str(err.value)
    # Says how to configure them: deployments get them from `ocrflow deploy --input-root`.
    assert "ocrflow deploy --input-root FOLDER" in str(err.value)
    # Local runs without roots are unrestricted; with roots they are checked too.
    assert check_inputs(["/etc/passwd"], from_deployment=False) is None
    monkeypatch.setenv(ROOTS_SETTING, str(tree["root"]))
    with pytest.raises(InputRootsError, match="outside the allowed input roots"):
        check_inputs(["/etc/passwd"], from_deployment=False)


def test_roots_setting_is_read_from_the_environment(
    tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = tree["root"], tree["outside"]
    alias = root.parent / "alias"
    alias.symlink_to(root, target_is_directory=True)
    value = os.pathsep.join([str(alias), "", f" {outside} ", str(root)])
    monkeypatch.setenv(ROOTS_SETTING, value)
    assert configured_roots() == (root, outside)  # resolved, blanks and duplicates dropped
    monkeypatch.setenv(ROOTS_SETTING, "")
    assert configured_roots() == ()
