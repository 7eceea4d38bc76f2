"""Moved to :mod:`pipeline.summary` (the page stream returns them); kept for old imports."""

from pipeline.summary import DocumentSummary, RunSummary

__all__ = ["DocumentSummary", "RunSummary"]
