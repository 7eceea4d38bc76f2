"""pages.orientation: the quarter turn the detector found the page in

Revision ID: e5a8c2d4f610
Revises: c3d9f1a7b2e4
Create Date: 2026-11-29 20:00:00

With ``detect_orientation`` the detector finds pages scanned sideways or upside down, detects on
them upright and reports the regions in the page's own pixels; ``orientation`` records the
clockwise degrees the page's content was turned by (0, 90, 180, 270), NULL where the detector
was not asked (or the page was stored before this revision).

A plain nullable column: SQLite adds and drops it in place (3.35+), no table rebuild, and the
views, which name their columns, are untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5a8c2d4f610"
down_revision: str | Sequence[str] | None = "c3d9f1a7b2e4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COMMENT = "Clockwise degrees the content was turned by (0, 90, 180, 270); NULL: not detected."


def upgrade() -> None:
    op.add_column("pages", sa.Column("orientation", sa.SmallInteger(), comment=COMMENT))


def downgrade() -> None:
    op.execute("ALTER TABLE pages DROP COLUMN orientation")
