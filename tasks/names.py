"""Run and task names that say what they read: ``memo.jpg``, ``report.pdf p1-50``, ``3 documents``.

Pure functions of the inputs and page range, shared by the flows' ``flow_run_name``, the
inbox's child runs and the tasks' ``task_run_name``: never a list repr or an absolute path
(the UI shows names everywhere, and a path says more about the worker than the document).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePath
from typing import Any

__all__ = [
    "batch_label",
    "document_label",
    "flow_run_name",
    "page_range_label",
    "run_name",
    "run_name_from_parameters",
    "sweep_name",
    "sweep_run_name",
    "task_run_namer",
]


def page_range_label(first_page: int | None, last_page: int | None) -> str:
    """``p1-50``, ``p3-`` (to the end), ``p1-7``, ``p4`` (one page); empty for all pages."""
    if first_page is None and last_page is None:
        return ""
    first = first_page or 1
    if last_page is None:
        return f"p{first}-"
    return f"p{first}" if first == last_page else f"p{first}-{last_page}"


def _base(path: str) -> str:
    """The last component of a file, folder (``inbox/``) or glob (``*.pdf``)."""
    folder = path.endswith(("/", "\\"))
    name = PurePath(path.rstrip("/\\")).name or path
    return f"{name}/" if folder else name


def document_label(path: str, first_page: int | None = None, last_page: int | None = None) -> str:
    """A document and its page range: ``report.pdf p1-4``, or just ``memo.jpg``."""
    return " ".join(filter(None, (_base(path), page_range_label(first_page, last_page))))


def batch_label(pages: Sequence[tuple[str, int]]) -> str:
    """A detection batch by its pages (``source, page number``), documents in batch order:
    ``report.pdf p1-4``, ``letter.pdf p2, memo.png p1``, ``a.png p1, b.png p1 +3 documents``."""
    by_source: dict[str, list[int]] = {}
    for source, number in pages:
        by_source.setdefault(source, []).append(number)
    parts = [document_label(src, min(ns), max(ns)) for src, ns in by_source.items()]
    more = len(parts) - 2
    return ", ".join(parts[:2]) + (f" +{more} document{'s' * (more > 1)}" if more > 0 else "")


def run_name(
    inputs: Sequence[str], first_page: int | None = None, last_page: int | None = None
) -> str:
    """One input: its name (and page range); several: ``3 documents`` (``3 inputs`` when some
    are folders or patterns, whose documents are not counted yet)."""
    inputs = [inputs] if isinstance(inputs, str) else list(inputs)
    if len(inputs) == 1:
        return document_label(inputs[0], first_page, last_page)
    files = all(PurePath(i).suffix and not any(c in i for c in "*?[") for i in inputs)
    what = f"{len(inputs)} {'documents' if files else 'inputs'}" if inputs else "no inputs"
    return " ".join(filter(None, (what, page_range_label(first_page, last_page))))


def _get(options: Any, name: str) -> Any:
    return options.get(name) if isinstance(options, Mapping) else getattr(options, name, None)


def run_name_from_parameters(parameters: Mapping[str, Any]) -> str:
    """``run_name`` of a flow run's parameters (models, or plain dicts before validation)."""
    ingestion = parameters.get("ingestion")
    return run_name(
        parameters.get("inputs") or [],
        _get(ingestion, "first_page") if ingestion is not None else None,
        _get(ingestion, "last_page") if ingestion is not None else None,
    )


def flow_run_name() -> str:
    """``flow_run_name`` of the document flows: ``run_name`` of the starting run's parameters."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return run_name_from_parameters(ctx.parameters if ctx and ctx.parameters else {})


def sweep_run_name() -> str:
    """``flow_run_name`` of the inbox sweep: ``sweep inbox`` (the folder's name, not its path)."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return sweep_name(str((ctx.parameters or {}).get("inbox") or "") if ctx else "")


def sweep_name(inbox: str) -> str:
    """``sweep inbox`` for ``/srv/ocr/inbox``: the folder's name, not its path."""
    return f"sweep {_base(inbox)}" if inbox else "sweep"


def task_run_namer(verb: str, label: Callable[[Mapping[str, Any]], str]) -> Callable[..., str]:
    """A ``task_run_name`` callable: ``verb`` and what ``label`` reads from the task's arguments.

    A label that cannot be made (an argument missing or of another type) leaves the verb
    alone: a name must never fail the task.
    """

    def name(parameters: dict[str, Any]) -> str:
        try:
            what = label(parameters)
        except Exception:
            what = ""
        return f"{verb} {what}".rstrip()

    return name
