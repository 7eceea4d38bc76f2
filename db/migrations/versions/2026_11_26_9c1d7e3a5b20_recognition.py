"""recognition: text and text_confidence on regions, full-text search on both backends

Revision ID: 9c1d7e3a5b20
Revises: 4f22598ae99b
Create Date: 2026-11-26 04:10:00

- ``regions.text`` (NULL: not recognised; '' : read, nothing found) and
  ``regions.text_confidence`` in [0, 1].
- PostgreSQL: ``regions.text_search``, a stored generated ``tsvector`` (english config) with a
  GIN index, so search needs no write-path code and can never be stale.
- SQLite: FTS5 table ``region_text_fts`` (porter stemming, close to PostgreSQL's english
  config), kept in sync by triggers on ``regions``. Its rowid is
  ``page_result_id * 2^20 + region_index`` (see ``db.search.FTS_ROWID``), so a trigger finds
  its row by key instead of scanning, and the rowid survives VACUUM (regions has no
  INTEGER PRIMARY KEY, so its own rowid does not). A later migration that rebuilds ``regions``
  in batch mode must recreate these triggers.
- ``region_details`` gains ``text`` and ``text_confidence``.

Written out in full, not imported from db.models or db.search: a migration is a snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9c1d7e3a5b20"
down_revision: str | Sequence[str] | None = "4f22598ae99b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONFIDENCE_CHECK = "text_confidence >= 0 AND text_confidence <= 1"
FTS_KEY = "{row}.page_result_id * 1048576 + {row}.region_index"

SQLITE_FTS = (
    "CREATE VIRTUAL TABLE region_text_fts USING fts5("
    "text, tokenize = 'porter unicode61 remove_diacritics 2')",
    f"""CREATE TRIGGER regions_text_fts_insert AFTER INSERT ON regions
WHEN new.text IS NOT NULL BEGIN
    INSERT INTO region_text_fts (rowid, text) VALUES ({FTS_KEY.format(row="new")}, new.text);
END""",
    f"""CREATE TRIGGER regions_text_fts_delete AFTER DELETE ON regions
WHEN old.text IS NOT NULL BEGIN
    DELETE FROM region_text_fts WHERE rowid = {FTS_KEY.format(row="old")};
END""",
    f"""CREATE TRIGGER regions_text_fts_update AFTER UPDATE OF text, page_result_id, region_index
ON regions BEGIN
    DELETE FROM region_text_fts WHERE rowid = {FTS_KEY.format(row="old")};
    INSERT INTO region_text_fts (rowid, text)
        SELECT {FTS_KEY.format(row="new")}, new.text WHERE new.text IS NOT NULL;
END""",
)
SQLITE_TRIGGERS = ("regions_text_fts_insert", "regions_text_fts_delete", "regions_text_fts_update")

PG_SEARCH = (
    "ALTER TABLE regions ADD COLUMN text_search tsvector"
    " GENERATED ALWAYS AS (to_tsvector('english', coalesce(text, ''))) STORED",
    "COMMENT ON COLUMN regions.text_search IS"
    " 'to_tsvector(''english'', text), for full-text search; generated.'",
    "CREATE INDEX ix_regions_text_search ON regions USING gin (text_search)",
)

REGION_DETAILS = """
CREATE VIEW region_details AS
SELECT
    d.id AS document_id,
    d.sha256 AS document_sha256,
    d.source_uri,
    d.media_type,
    p.id AS page_id,
    p.page_number,
    p.width AS page_width,
    p.height AS page_height,
    p.dpi,
    r.run_id,
    r.page_result_id,
    ru.params_hash,
    ru.params,
    ru.model_name,
    ru.refiner_name,
    r.region_index,
    r.center_x, r.center_y, r.width, r.height, r.angle,
    r.x0, r.y0, r.x1, r.y1, r.x2, r.y2, r.x3, r.y3,
    r.x_min, r.y_min, r.x_max, r.y_max,
    r.score{text_columns}
FROM regions r
JOIN pages p ON p.id = r.page_id
JOIN documents d ON d.id = p.document_id
JOIN runs ru ON ru.id = r.run_id
"""
TEXT_COLUMNS = ",\n    r.text,\n    r.text_confidence"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column(
        "regions",
        sa.Column(
            "text",
            sa.Text(),
            nullable=True,
            comment="Text read in the region; NULL: not recognised, '': nothing read.",
        ),
    )
    if dialect == "sqlite":  # SQLite adds a CHECK only as part of the column definition
        op.execute(
            "ALTER TABLE regions ADD COLUMN text_confidence FLOAT CONSTRAINT"
            f" ck_regions_text_confidence_0_1 CHECK ({CONFIDENCE_CHECK})"
        )
        for statement in SQLITE_FTS:
            op.execute(statement)
    else:
        op.add_column(
            "regions",
            sa.Column(
                "text_confidence",
                sa.Float(),
                nullable=True,
                comment="Recognizer's mean word confidence in [0, 1].",
            ),
        )
        op.create_check_constraint(
            op.f("ck_regions_text_confidence_0_1"), "regions", CONFIDENCE_CHECK
        )
        for statement in PG_SEARCH:
            op.execute(statement)
    op.execute("DROP VIEW region_details")
    op.execute(REGION_DETAILS.format(text_columns=TEXT_COLUMNS))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute("DROP VIEW region_details")
    if dialect == "sqlite":
        for trigger in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS region_text_fts")
        # Native DROP COLUMN (SQLite >= 3.35): a batch rebuild of regions would trip over the
        # views that reference it.
        op.execute("ALTER TABLE regions DROP COLUMN text_confidence")
        op.execute("ALTER TABLE regions DROP COLUMN text")
    else:
        op.execute("DROP INDEX IF EXISTS ix_regions_text_search")
        op.drop_column("regions", "text_search")
        op.drop_constraint(op.f("ck_regions_text_confidence_0_1"), "regions", type_="check")
        op.drop_column("regions", "text_confidence")
        op.drop_column("regions", "text")
    op.execute(REGION_DETAILS.format(text_columns=""))
