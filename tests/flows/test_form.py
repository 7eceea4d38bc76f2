"""The custom-run form is the flows' parameter schema: labels, enums, no null types, and a
database URL field whose schema refuses passwords the way SQLAlchemy reads them."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from typing import Any

import pytest
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools.validation import is_valid
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from flows.inbox import ocr_inbox
from flows.ocr_documents import ocr_documents
from flows.params import URL_WITHOUT_PASSWORD, DatabaseOptions, DetectorOptions, url_has_password

FLOWS = [ocr_documents, ocr_inbox]


def _schema(flow: Any) -> dict[str, Any]:
    schema: dict[str, Any] = parameter_schema(flow).model_dump_for_openapi()
    return schema


def _fields(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every field of every option model, as ``Model.field``."""
    return {
        f"{model}.{name}": prop
        for model, definition in schema["definitions"].items()
        for name, prop in definition.get("properties", {}).items()
    }


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_no_null_types_and_defaults_the_schema_accepts(flow: Any) -> None:
    """The form prints 'Property is type None' for a null branch and would send a null default
    back; an empty field is left out instead, so the flows' None defaults still apply."""
    schema = _schema(flow)
    text = json.dumps(schema)
    assert '"null"' not in text and '"default": null' not in text
    defaults = {k: v["default"] for k, v in schema["properties"].items() if "default" in v}
    assert {"detector", "ingestion", "database", "overlay", "recognition"} <= set(defaults)
    required = {"inputs": ["/data/inbox/memo.jpg"], "inbox": "/data/inbox"}
    assert is_valid({**required, **defaults}, schema)
    # Options left out of a request still validate into the models' None defaults.
    assert DetectorOptions.model_validate(defaults["detector"]) == DetectorOptions()


def test_labels_enums_and_readable_limits() -> None:
    schema = _schema(ocr_documents)
    fields = _fields(schema)
    titles = {name: prop.get("title") for name, prop in fields.items()}
    assert titles["IngestOptions.dpi"] == "PDF resolution (DPI)"
    assert titles["DatabaseOptions.url"] == "Database URL (no password)"
    assert titles["IngestOptions.page_timeout_s"] == "Page timeout (seconds)"
    # No title of a compound or abbreviated name is pydantic's mechanical one ("Dpi", "Url",
    # "Page Timeout S"); one-word names ("Preset", "Device") read fine as they are.
    for name, title in titles.items():
        field = name.split(".")[1]
        if "_" in field or field in ("dpi", "url", "width", "color"):
            assert title and title != field.replace("_", " ").title(), name
    for name in ("device", "backend", "precision", "preset"):
        enum = fields[f"DetectorOptions.{name}"].get("enum")
        assert enum and "auto" in enum if name in ("device", "backend") else enum, name
    assert {"cpu", "cuda", "cuda:0"} <= set(fields["DetectorOptions.device"]["enum"])
    assert "512 MiB" in fields["IngestOptions.max_file_bytes"]["description"]
    inputs = schema["properties"]["inputs"]
    assert inputs["examples"] and "e.g." in inputs["description"]


# What SQLAlchemy reads as a password: the definition the schema's pattern is the complement of.
_HAS_PASSWORD = re.compile(r"^[^:/]+://[^:/]*:[^@]+@")


def test_url_pattern_is_the_exact_complement_of_a_password() -> None:
    """Every string over the characters that matter, up to 8 long: the pattern refuses exactly
    those with a password, and everything make_url finds a password in."""
    pattern = re.compile(URL_WITHOUT_PASSWORD)
    checked = 0
    for length in range(9):
        for chars in itertools.product("a:/@", repeat=length):
            url = "".join(chars)
            refused = pattern.search(url) is None
            assert refused == bool(_HAS_PASSWORD.search(url)), url
            try:
                password = make_url(url).password
            except Exception:
                password = None
            assert not password or refused, url
            checked += 1
    assert checked == sum(4**n for n in range(9))


@pytest.mark.skipif(shutil.which("node") is None, reason="node (ECMA-262 regex) not installed")
def test_url_pattern_means_the_same_in_ecma_262() -> None:
    """The UI validates with JavaScript's RegExp: same verdicts as Python's re."""
    urls = ["".join(c) for n in range(7) for c in itertools.product("a:/@", repeat=n)]
    urls += ["postgresql+psycopg://ocr:S3cret@db:5432/ocr", "postgresql://ocr@db/ocr"]
    script = (
        "const p = new RegExp(process.argv[1], 'u');"
        "const urls = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(urls.map((u) => p.test(u))));"
    )
    done = subprocess.run(
        ["node", "-e", script, URL_WITHOUT_PASSWORD],
        input=json.dumps(urls), capture_output=True, text=True, check=True,
    )  # fmt: skip
    python = [re.search(URL_WITHOUT_PASSWORD, u) is not None for u in urls]
    assert json.loads(done.stdout) == python


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("postgresql+psycopg://ocr:S3cret@db:5432/ocr", True),
        ("postgresql://ocr:p/w@db/ocr", True),  # make_url: password "p/w"
        ("postgresql://ocr@db/ocr?password=S3cret", True),
        ("postgresql://ocr@db/ocr?sslmode=require&PassWord=S3cret", True),
        ("postgresql://ocr@db:5432/ocr", False),
        ("postgresql://ocr:@db/ocr", False),  # empty password: nothing secret
        ("sqlite:///ocrflow-output/ocrflow.db", False),
        ("sqlite:////var/lib/ocr/x.db", False),
        ("", False),
    ],
)
def test_database_url_with_a_password_is_refused(url: str, refused: bool) -> None:
    schema = _schema(ocr_documents)
    assert is_valid({"inputs": ["a.png"], "database": {"url": url}}, schema) is not refused
    assert url_has_password(url) is refused
    if refused:
        with pytest.raises(ValidationError) as caught:
            DatabaseOptions(url=url)
        assert "Secret block" in str(caught.value) and "S3cret" not in str(caught.value)
    else:
        assert DatabaseOptions(url=url).url == url


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_served_deployments_enforce_the_schema(flow: Any) -> None:
    """``ocrflow serve`` builds its deployments with ``to_deployment``: enforced as well."""
    assert flow.to_deployment(name="served").enforce_parameter_schema is True
