"""Options shared by the commands; the detector flags of ``detect`` and ``run`` are derived.

``detector_flags`` gives a command one flag per field of the detector form
(``flows.params.DetectorOptions``: ``preset`` plus every ``craft.params.DetectorParams`` field),
with the field's type, bounds and description, so a new detector parameter is a new flag with no
edit here.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import annotated_types
import typer
from pydantic.fields import FieldInfo
from typer.core import TyperCommand, TyperGroup

from flows.params import DetectorOptions

__all__ = [
    "FLAG",
    "Command",
    "FirstPageOpt",
    "Group",
    "InputsArg",
    "LastPageOpt",
    "OutputDirOpt",
    "QuietOpt",
    "VerboseOpt",
    "check_page_range",
    "detector_flags",
    "detector_options",
]

R = TypeVar("R")

_D = "Detector"
# On/off flags take no value: an empty metavar keeps typer from showing a `<bool>` placeholder.
FLAG = ""


class _FlagHelp:
    """Typer's ``--help`` option, shown without a ``<bool>`` placeholder (mixed into both)."""

    def get_help_option(self, ctx: Any) -> Any:
        """The help option, built by typer, with the flag metavar."""
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = FLAG
        return option


class Command(_FlagHelp, TyperCommand):
    """Typer's command whose ``--help`` row shows no ``<bool>`` placeholder either."""


class Group(_FlagHelp, TyperGroup):
    """Typer's command group, with the same ``--help`` row as :class:`Command`."""


InputsArg = Annotated[
    list[str],
    typer.Argument(help="PDFs, images, folders or glob patterns.", metavar="PATH"),
]
OutputDirOpt = Annotated[
    Path,
    typer.Option("--output-dir", "-o", help="Folder for overlay images.", file_okay=False),
]
FirstPageOpt = Annotated[
    int | None,
    typer.Option(min=1, metavar="N", help="First page to read (1-based; PDFs, multi-page TIFFs)."),
]
LastPageOpt = Annotated[
    int | None, typer.Option(min=1, metavar="N", help="Last page to read (inclusive).")
]
QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", metavar=FLAG, help="Print only errors: no progress, no summary table."
    ),
]
VerboseOpt = Annotated[
    bool,
    typer.Option("--verbose", "-v", metavar=FLAG, help="Also print the log (Prefect, stages)."),
]


def check_page_range(first_page: int | None, last_page: int | None) -> None:
    """Refuse a range that selects nothing, for every document, before anything starts."""
    if first_page is not None and last_page is not None and last_page < first_page:
        raise typer.BadParameter(
            f"--last-page {last_page} is before --first-page {first_page}: no page selected",
            param_hint="--last-page",
        )


def detector_options(
    preset: str = "default", *, form: type[DetectorOptions] = DetectorOptions, **values: Any
) -> DetectorOptions:
    """The form for ``preset`` and the values given (None = the preset's); bad ones exit 2."""
    try:
        options = form(preset=preset, **values)
        options.resolve()
    except ValueError as exc:  # pydantic's ValidationError, or an unknown preset
        raise typer.BadParameter(_one_line(exc)) from None
    return options


def _one_line(exc: ValueError) -> str:
    """pydantic's multi-line report, reduced to '--flag: problem' pairs."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(
            f"--{'.'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}" for e in errors()
        )
    return str(exc)


def _plain(annotation: Any) -> tuple[Any, list[Any]]:
    """``T`` and its constraints from a form field's ``T | None`` / ``Annotated[T, ...] | None``."""
    if get_origin(annotation) in (Union, types.UnionType):
        [annotation] = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is Annotated:
        annotation, *metadata = get_args(annotation)
        return annotation, metadata
    return annotation, []


def _flag(name: str, info: FieldInfo) -> inspect.Parameter:
    """The typer option for one form field: ``--kebab-name``, help = the field's description.

    A bool is an on/off pair (``--x/--no-x``), a ``Literal`` a choice, a number takes the
    field's bounds as typer's ``min``/``max`` (``gt``/``lt`` as closed bounds: pydantic still
    refuses the bound itself). Unset (None) leaves the preset's value.
    """
    kind, metadata = _plain(info.annotation)
    flag = "--" + name.replace("_", "-")
    option: dict[str, Any] = {"help": info.description, "rich_help_panel": _D}
    if kind is bool:
        flag = f"{flag}/--no-{flag[2:]}"
        option["metavar"] = FLAG
    elif get_origin(kind) is Literal:  # the choices, unless too many to read (then: the help)
        choices = "|".join(map(str, get_args(kind)))
        option["metavar"] = choices if len(choices) <= 24 else "<choice>"
    else:
        option["metavar"] = f"<{kind.__name__}>"  # not typer's "<float range>"
    for bound in metadata:
        if isinstance(bound, annotated_types.Ge | annotated_types.Gt):
            option["min"] = getattr(bound, "ge", getattr(bound, "gt", None))
        elif isinstance(bound, annotated_types.Le | annotated_types.Lt):
            option["max"] = getattr(bound, "le", getattr(bound, "lt", None))
    annotation = kind if info.default is not None else kind | None
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=info.default,
        annotation=Annotated[annotation, typer.Option(flag, *_ALIASES.get(name, ()), **option)],
    )


# Spellings from before the flags were derived from the fields: scripts keep working.
_ALIASES = {"with_refiner": ("--refiner/--no-refiner",)}


def detector_flags(
    form: type[DetectorOptions] = DetectorOptions,
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Decorator: the command gets one flag per ``form`` field, and their values as ``detector``.

    Typer builds a command from its function's signature; the decorated function's signature is
    the command's own parameters (less ``detector``) plus one keyword parameter per field, and a
    call gathers those into one validated ``form`` passed as ``detector``.
    """
    flags = [_flag(name, info) for name, info in form.model_fields.items()]

    def decorate(command: Callable[..., R]) -> Callable[..., R]:
        signature = inspect.signature(command, eval_str=True)
        if "detector" not in signature.parameters:
            raise TypeError(f"{command.__name__} takes no 'detector' parameter")
        own = [p for p in signature.parameters.values() if p.name != "detector"]
        clash = {p.name for p in own} & {f.name for f in flags}
        if clash:
            raise TypeError(f"{command.__name__}: parameters named like detector fields: {clash}")

        @functools.wraps(command)
        def with_detector(**kwargs: Any) -> R:
            values = {f.name: kwargs.pop(f.name) for f in flags}
            return command(**kwargs, detector=detector_options(form=form, **values))

        with_detector.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*own, *flags]
        )
        return with_detector

    return decorate
