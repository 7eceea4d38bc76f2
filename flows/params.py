"""Typed flow parameters: Prefect renders these pydantic models as the run form in the UI.

Every constraint is in the schema (``ge``/``le``/``Literal``/``pattern``) because the UI
cannot run validators and the server enforces the schema before it stores a run; every field
has a title and a description, because the form shows them. Optional fields keep ``null`` out of
the schema (``drop_null_types``) and defaults carry no nulls (``form_default``): the form shows a
'Property is type "None"' tab for the one and would send the other back.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator
from pydantic.fields import FieldInfo

from craft.params import DetectorParams, Device, Preset
from ingest.options import IngestOptions, drop_null_types
from pipeline.options import OverlayOptions, RecognitionOptions

__all__ = [
    "URL_WITHOUT_PASSWORD",
    "DatabaseOptions",
    "DatabaseParameter",
    "DetectorOptions",
    "DetectorOptionsBase",
    "DetectorParameter",
    "Device",
    "IngestionParameter",
    "InputsParameter",
    "OverlayOptions",
    "OverlayParameter",
    "RecognitionOptions",
    "RecognitionParameter",
    "detector_form",
    "form_default",
    "optional_fields",
    "url_has_password",
]

# Matches every string except a URL whose user info has a password, as SQLAlchemy's make_url
# reads one: ``scheme://user:secret@...``, i.e. ``^[^:/]+://[^:/]*:[^@]+@`` (an empty
# password, ``user:@host``, carries no secret). Spelled as the complement, without look-ahead,
# so that JSON Schema (ECMA-262, in the UI), Python's re (the server) and pydantic's Rust
# regex agree; tests/flows/test_form.py checks it against make_url exhaustively.
URL_WITHOUT_PASSWORD = (
    r"^(?:[^:/]*(?:/.*)?"  # no "scheme:" at all, or a '/' before any ':'
    r"|:.*"  # empty scheme
    r"|[^:/]+:(?:[^/].*|/(?:[^/].*)?)?"  # "scheme:" not followed by "//"
    r"|[^:/]+://[^:/]*(?:/.*|:(?:@.*|[^@]*))?)$"  # "scheme://user" with no ":secret@"
)
# A libpq ``password`` query key (``...?password=secret``), refused as well.
_QUERY_PASSWORD = r"[?&][Pp][Aa][Ss][Ss][Ww][Oo][Rr][Dd]="
_PASSWORD_REFUSED = (
    "the database URL contains a password; store the URL in a Prefect Secret block and pass "
    "its name as url_secret_block (or set OCRFLOW_DATABASE_URL in the worker's environment)"
)


def url_has_password(url: str) -> bool:
    """Whether ``url`` carries a password, in its user info or as a ``password`` query key."""
    from sqlalchemy.engine import make_url

    if not re.search(URL_WITHOUT_PASSWORD, url) or re.search(_QUERY_PASSWORD, url):
        return True
    try:
        parsed = make_url(url)
    except Exception:  # not a URL SQLAlchemy reads: it carries nothing it would send
        return False
    return bool(parsed.password) or any(k.lower() == "password" for k in parsed.query)


class DetectorOptionsBase(BaseModel):
    """The detector form's own part: ``preset`` and ``resolve``.

    Every other field is one of ``DetectorParams``', made optional by :func:`detector_form`, so
    a new detector parameter reaches the form (and the CLI flags, which read this model) with no
    edit here.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=drop_null_types)
    params_model: ClassVar[type[DetectorParams]] = DetectorParams  # what resolve() builds

    preset: Preset = Field(
        "default",
        title="Preset",
        description="default: line regions (Visual NLP card); words: CRAFT defaults, no "
        "refiner; lines: CRAFT thresholds with the refiner.",
    )

    def resolve(self) -> DetectorParams:
        """The preset with this form's explicit values applied."""
        values = self.model_dump(exclude={"preset"}, exclude_none=True)
        return self.params_model.preset(self.preset, **values)


def optional_fields(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s fields for ``create_model``, each optional: default None (= not given).

    Type, bounds (``ge``/``le``/``gt``/...), title and description are the field's own, so the
    schema keeps them; ``drop_null_types`` then keeps the ``null`` branch out of the form.
    """
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        kind: Any = info.annotation
        if info.metadata:  # the bounds: Ge, Le, Gt, ... as annotated_types declares them
            kind = Annotated[kind, *info.metadata]
        fields[name] = (kind | None, Field(None, title=info.title, description=info.description))
    return fields


def detector_form(params: type[DetectorParams] = DetectorParams) -> type[DetectorOptionsBase]:
    """The detector form model: ``preset`` plus every field of ``params``, optional."""
    form = create_model(
        "DetectorOptions",
        __base__=DetectorOptionsBase,
        __module__=__name__,
        __doc__="A preset plus the values that override it (empty = the preset's value).",
        **optional_fields(params),
    )
    form.params_model = params
    return form


if TYPE_CHECKING:  # type checkers see the base: its fields are DetectorParams', built at import
    DetectorOptions = DetectorOptionsBase
else:
    DetectorOptions = detector_form()


class DatabaseOptions(BaseModel):
    """Where results go. Production: name a Prefect Secret block so no password is a parameter."""

    # (Not in the docstring: the form shows that.) ``url`` refuses a password in the schema
    # itself (``pattern``, plus ``not`` for a ``password=`` query key), so a server enforcing
    # deployments' parameter schemas refuses the run before storing it; the validator repeats
    # the check (in-flow, and for callers building options in Python), never echoing the value.
    model_config = ConfigDict(
        frozen=True, extra="forbid", hide_input_in_errors=True, json_schema_extra=drop_null_types
    )

    url_secret_block: str | None = Field(
        None,
        title="Database URL secret block",
        description="Name of a Prefect Secret block holding the database URL (production).",
    )
    url: str | None = Field(
        None,
        title="Database URL (no password)",
        pattern=URL_WITHOUT_PASSWORD,
        json_schema_extra={"not": {"pattern": _QUERY_PASSWORD}},
        description="Database URL without a password (e.g. sqlite:///ocrflow.db or "
        "postgresql://ocr@db/ocr); a URL with a password is refused: use the secret block. "
        "Empty = the worker's OCRFLOW_DATABASE_URL, else the embedded SQLite file.",
    )

    @field_validator("url", mode="before")
    @classmethod
    def _refuse_password(cls, value: Any) -> Any:
        if isinstance(value, str) and url_has_password(value):
            raise ValueError(_PASSWORD_REFUSED)
        return value


def form_default(options: BaseModel) -> FieldInfo:
    """A flow parameter's schema default without nulls (the form would send them back)."""
    return Field(json_schema_extra={"default": options.model_dump(mode="json", exclude_none=True)})


# The option models as flow parameters (``detector: DetectorParameter = DetectorOptions()``).
DetectorParameter = Annotated[DetectorOptions, form_default(DetectorOptions())]
IngestionParameter = Annotated[IngestOptions, form_default(IngestOptions())]
DatabaseParameter = Annotated[DatabaseOptions, form_default(DatabaseOptions())]
OverlayParameter = Annotated[OverlayOptions, form_default(OverlayOptions())]
RecognitionParameter = Annotated[RecognitionOptions, form_default(RecognitionOptions())]
InputsParameter = Annotated[
    list[str],
    Field(json_schema_extra={"examples": [["/data/inbox/memo.jpg", "/data/inbox/scans/*.pdf"]]}),
]
