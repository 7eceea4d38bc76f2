"""The plain-torch CRAFT and LinkRefiner load the published weights and give the right shapes."""

from __future__ import annotations

import subprocess
import sys

import torch

from craft.model import CRAFT, fold_batch_norms
from craft.refiner import RefineNet
from craft.weights_store import resolve_weights
from craft.zoo import _load_state


def test_craft_state_dict_names_match_published_weights() -> None:
    state = _load_state(resolve_weights("craft_mlt_25k"))
    model = CRAFT()
    assert set(model.state_dict()) == set(state)
    model.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in model.parameters()) == 20_770_466


def test_refiner_state_dict_names_match_published_weights() -> None:
    state = _load_state(resolve_weights("craft_refiner_CTW1500"))
    model = RefineNet()
    model.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in model.parameters()) == 457_924


def test_output_shapes_are_half_resolution() -> None:
    craft, refiner = CRAFT().eval(), RefineNet().eval()
    with torch.inference_mode():
        y, feature = craft(torch.zeros(2, 3, 64, 96))
        refined = refiner(y, feature)
    assert y.shape == (2, 32, 48, 2)
    assert feature.shape == (2, 32, 32, 48)
    assert refined.shape == (2, 32, 48, 1)


def test_craft_library_imports_no_prefect_sqlalchemy_or_torchvision() -> None:
    code = (
        "import sys, craft, craft.zoo, craft.overlay, craft.serialize, craft.reference;"
        "bad = [m for m in ('prefect', 'sqlalchemy', 'torchvision', 'db', 'flows', 'tasks')"
        " if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_folding_batch_norms_keeps_the_function() -> None:
    state = _load_state(resolve_weights("craft_mlt_25k"))
    model, folded = CRAFT(), CRAFT()
    model.load_state_dict(state)
    folded.load_state_dict(state)
    fold_batch_norms(folded.eval())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 20
    x = torch.randn(1, 3, 96, 128)
    with torch.inference_mode():
        (y, feature), (y2, feature2) = model.eval()(x), folded(x)
    torch.testing.assert_close(y2, y, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(feature2, feature, atol=1e-4, rtol=1e-4)
