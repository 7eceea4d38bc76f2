"""What a run returns and reports: per-document outcomes and the run's exit code."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["DocumentSummary", "RunSummary"]


class DocumentSummary(BaseModel):
    """Outcome of one input file."""

    source: str
    sha256: str | None = None
    status: str = Field(
        description="done, failed, partial, skipped (already done) or claimed (another live "
        "run is processing it: see claimed_by)"
    )
    pages: int = 0
    pages_failed: int = 0
    pages_skipped: int = 0
    regions: int = 0
    mean_score: float | None = None
    seconds: float = Field(
        0.0,
        description="Work on this document: reading its pages and its pages' share of the "
        "detector's calls (documents overlap in a run, so this is not wall time).",
    )
    error: str | None = None
    overlays: list[str] = Field(default_factory=list)
    claimed_by: int | None = Field(None, description="Run id that holds the document's claim.")

    @property
    def seconds_per_page(self) -> float | None:
        """Work seconds per processed page (see ``seconds``)."""
        done = self.pages - self.pages_failed - self.pages_skipped
        return self.seconds / done if done > 0 else None


class RunSummary(BaseModel):
    """Outcome of one flow run."""

    run_id: int | None
    database: str
    output_dir: str | None
    documents: list[DocumentSummary]
    seconds: float = 0.0
    stages: dict[str, float] = Field(
        default_factory=dict,
        description="Seconds per stage over the run (read, register, detect, store, render) "
        "and pages detected: see pipeline.stream.StageSeconds.",
    )
    flow_run_url: str | None = Field(
        None, description="The flow run's page in the Prefect UI (a configured server only)."
    )

    @property
    def failed(self) -> list[DocumentSummary]:
        """Documents with any failure (whole or some pages)."""
        return [d for d in self.documents if d.status in ("failed", "partial")]

    @property
    def exit_code(self) -> int:
        """0: everything done; 1: some documents or pages failed; 2: nothing succeeded."""
        if not self.failed:
            return 0
        ok = [d for d in self.documents if d.status in ("done", "skipped", "partial", "claimed")]
        return 1 if ok else 2
