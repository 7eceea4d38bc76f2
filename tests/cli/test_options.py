"""The detector's parameters are declared once (``DetectorParams``): every field is a flag of
``detect`` and ``run`` and a property of the flows' form, with one description and one set of
bounds, and a field added to the model becomes a flag and a form field with no other edit."""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin

import annotated_types
import pytest
import typer
from prefect.utilities.callables import parameter_schema
from pydantic import Field
from pydantic.fields import FieldInfo
from typer.testing import CliRunner

from cli.app import app
from cli.options import detector_flags
from craft.params import DetectorParams
from flows.ocr_documents import ocr_documents
from flows.params import DetectorOptions, detector_form

runner = CliRunner()
# JSON Schema's names for annotated_types' bounds.
SCHEMA_BOUND = {
    "ge": "minimum",
    "gt": "exclusiveMinimum",
    "le": "maximum",
    "lt": "exclusiveMaximum",
}


def _said(output: str) -> str:
    """The CLI's message as one line, without rich's box borders and wrapping."""
    return " ".join(output.replace("│", " ").split())


def _bounds(info: FieldInfo) -> dict[str, Any]:
    """A field's bounds as ``{"ge": 0.0, "le": 1.0}``."""
    out = {}
    for bound in info.metadata:
        for name in SCHEMA_BOUND:
            if isinstance(bound, annotated_types.BaseMetadata) and hasattr(bound, name):
                out[name] = getattr(bound, name)
    return out


def _flags(command: str, application: typer.Typer = app) -> dict[str, Any]:
    """The command's options by parameter name (typer's click-style parameter objects)."""
    group = typer.main.get_command(application)
    cmd = group.commands[command] if hasattr(group, "commands") else group
    return {p.name: p for p in cmd.params}


def _check_flag(flag: Any, name: str, info: FieldInfo) -> None:
    kebab = name.replace("_", "-")
    assert flag.help == info.description, name
    if info.annotation is bool:  # first the field's own spelling; older ones may follow
        assert (flag.opts[0], flag.secondary_opts[0]) == (f"--{kebab}", f"--no-{kebab}"), name
    else:
        assert flag.opts[0] == f"--{kebab}", name
    bounds = _bounds(info)
    assert flag.min == bounds.get("ge", bounds.get("gt")), name
    assert flag.max == bounds.get("le", bounds.get("lt")), name


def _check_property(prop: dict[str, Any], info: FieldInfo) -> None:
    assert prop["description"] == info.description and prop["title"] == info.title
    bounds = {SCHEMA_BOUND[k]: v for k, v in _bounds(info).items()}
    assert {k: prop[k] for k in SCHEMA_BOUND.values() if k in prop} == bounds
    if get_origin(info.annotation) is Literal:
        assert prop["enum"] == list(get_args(info.annotation))
    assert prop.get("default") is None and "anyOf" not in prop  # empty = the preset's value


@pytest.mark.parametrize("command", ["detect", "run"])
def test_every_detector_field_is_a_flag(command: str) -> None:
    flags = _flags(command)
    for name, info in DetectorParams.model_fields.items():
        assert name in flags, f"{command} has no flag for {name}"
        _check_flag(flags[name], name, info)
    assert flags["preset"].help == DetectorOptions.model_fields["preset"].description


def test_every_detector_field_is_a_form_property() -> None:
    schema = parameter_schema(ocr_documents).model_dump_for_openapi()
    props = schema["definitions"]["DetectorOptions"]["properties"]
    assert set(props) == {"preset", *DetectorParams.model_fields}
    for name, info in DetectorParams.model_fields.items():
        _check_property(props[name], info)


def test_choices_and_bounds_are_enforced_before_anything_runs() -> None:
    for args, says in [
        (["--device", "gpu"], "'gpu' is not one of 'auto', 'cpu'"),
        (["--precision", "fp8"], "'fp8' is not one of 'fp32'"),
        (
            ["--score-threshold", "1.5"],
            "'--score-threshold': Input should be less than or equal to 1",
        ),
        (["--mag-ratio", "0"], "--mag-ratio: Input should be greater than 0"),  # gt: pydantic
    ]:
        result = runner.invoke(app, ["detect", "missing.png", *args])
        assert result.exit_code == 2 and says in _said(result.output), args


class _Extended(DetectorParams):
    """A detector parameter set with two fields the code below has never heard of."""

    curvature: Literal["none", "mild", "strong"] = Field(
        "none", title="Curvature", description="How curved text lines may be."
    )
    passes: int = Field(1, ge=1, lt=5, title="Passes", description="Detection passes per page.")


def test_a_new_field_becomes_a_flag_and_a_form_field() -> None:
    form = detector_form(_Extended)
    props = form.model_json_schema()["properties"]
    for name in ("curvature", "passes"):
        _check_property(props[name], _Extended.model_fields[name])

    seen: list[Any] = []
    probe = typer.Typer()

    @probe.command()
    @detector_flags(form)
    def detect(page: str, *, detector: DetectorOptions) -> None:
        seen.append((page, detector))

    flags = _flags("detect", probe)
    for name, info in _Extended.model_fields.items():
        _check_flag(flags[name], name, info)
    args = ["p.png", "--curvature", "mild", "--passes", "3", "--no-with-refiner"]
    result = runner.invoke(probe, args)
    assert result.exit_code == 0, result.output
    [(page, options)] = seen
    params = options.resolve()
    assert page == "p.png" and isinstance(params, _Extended)
    assert (params.curvature, params.passes, params.with_refiner) == ("mild", 3, False)
    assert params.split_lines  # the default preset's, untouched
    result = runner.invoke(probe, ["p.png", "--passes", "5"])  # lt=5: refused by pydantic
    assert result.exit_code == 2 and "--passes: Input should be less than 5" in _said(result.output)


def test_flag_names_clashing_with_a_command_parameter_are_refused() -> None:
    with pytest.raises(TypeError, match="width"):

        @detector_flags()
        def detect(width: int = 3, *, detector: DetectorOptions) -> None:
            """Its own --width would hide the detector's."""


def test_the_old_refiner_flag_still_works() -> None:
    flag = _flags("detect")["with_refiner"]
    assert "--refiner" in flag.opts and "--no-refiner" in flag.secondary_opts
