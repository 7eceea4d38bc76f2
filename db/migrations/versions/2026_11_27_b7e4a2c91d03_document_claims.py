"""document_claims: one live run per (document, parameter set)

Revision ID: b7e4a2c91d03
Revises: 9c1d7e3a5b20
Create Date: 2026-11-27 09:00:00

A run claims a document before detecting its pages (``db.claims.claim_document``): the primary
key (``document_id``, ``params_hash``) makes the claim exclusive, the composite foreign key pins
``params_hash`` to the holding run's, and ``host``/``pid`` let a run on the same machine see
that the holder's process is gone. Rows are deleted when the document is finished and when the
run ends or is swept as abandoned.

Written out in full, not imported from db.models: a migration is a snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7e4a2c91d03"
down_revision: str | Sequence[str] | None = "9c1d7e3a5b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "document_claims",
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("params_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "pages",
            sa.String(length=32),
            nullable=False,
            comment="Page range claimed: 'all', or 'first-last' for a page-range child run.",
        ),
        sa.Column(
            "run_id",
            sa.Integer(),
            nullable=False,
            comment="The holder; its params_hash is the claim's.",
        ),
        sa.Column("claimed_at", TS, nullable=False),
        sa.Column(
            "host",
            sa.String(length=255),
            nullable=True,
            comment="Host name of the holder's process.",
        ),
        sa.Column(
            "pid",
            sa.Integer(),
            nullable=True,
            comment="Process id of the holder on that host (a gone process frees the claim).",
        ),
        sa.CheckConstraint("pid IS NULL OR pid > 0", name=op.f("ck_document_claims_pid_positive")),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_document_claims_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id", "params_hash"],
            ["runs.id", "runs.params_hash"],
            name=op.f("fk_document_claims_run_id_params_hash_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "document_id", "params_hash", "pages", name=op.f("pk_document_claims")
        ),
        comment="Documents being processed now: one run per (document, parameter set, pages).",
    )
    op.create_index(op.f("ix_document_claims_run_id"), "document_claims", ["run_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_document_claims_run_id"), table_name="document_claims")
    op.drop_table("document_claims")
