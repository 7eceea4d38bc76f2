"""documents.status 'partial'; page_summary shows the document's status

Revision ID: c3d9f1a7b2e4
Revises: b7e4a2c91d03
Create Date: 2026-11-29 19:40:00

A document whose pages partly failed was stored ``done`` and one whose every page failed too, so
``WHERE status = 'done'`` did not mean the pages were there. Documents get ``partial`` (some pages
failed) beside ``done`` (all there) and ``failed`` (none); pages keep their four states.

SQLite cannot alter a CHECK constraint: the table is rebuilt (batch mode, foreign keys off in
env.py), and the views that name ``documents`` are dropped first, since SQLite checks views when
the rebuilt table is renamed. The view texts are the earlier migrations' frozen snapshots.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "c3d9f1a7b2e4"
down_revision: str | Sequence[str] | None = "b7e4a2c91d03"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_initial = importlib.import_module("db.migrations.versions.2026_11_26_4f22598ae99b_initial")
_recognition = importlib.import_module("db.migrations.versions.2026_11_26_9c1d7e3a5b20_recognition")

OLD_STATUS = "status IN ('pending', 'running', 'done', 'failed')"
NEW_STATUS = "status IN ('pending', 'running', 'done', 'partial', 'failed')"
OLD_PAGE_SUMMARY: str = _initial.PAGE_SUMMARY
NEW_PAGE_SUMMARY = OLD_PAGE_SUMMARY.replace(
    "    d.source_uri,\n", "    d.source_uri,\n    d.status AS document_status,\n", 1
)
REGION_DETAILS: str = _recognition.REGION_DETAILS.format(text_columns=_recognition.TEXT_COLUMNS)


def _set_status_check(check: str) -> None:
    op.execute("DROP VIEW page_summary")
    op.execute("DROP VIEW region_details")
    with op.batch_alter_table("documents") as batch:
        batch.drop_constraint(op.f("ck_documents_status"), type_="check")
        batch.create_check_constraint(op.f("ck_documents_status"), check)
    op.execute(REGION_DETAILS)


def upgrade() -> None:
    assert NEW_PAGE_SUMMARY != OLD_PAGE_SUMMARY  # the snapshot's text is what we expect
    _set_status_check(NEW_STATUS)
    op.execute(NEW_PAGE_SUMMARY)


def downgrade() -> None:
    op.execute(
        "UPDATE documents SET status = 'done' WHERE status = 'partial'"
    )  # the old schema's reading of a partial document
    _set_status_check(OLD_STATUS)
    op.execute(OLD_PAGE_SUMMARY)
