"""initial: documents, pages, runs, page_results, regions and the analyst views

Revision ID: 4f22598ae99b
Revises:
Create Date: 2026-11-26 03:30:00

Written out in full rather than imported from db.models: a migration is a frozen snapshot, and
the models will move on. ``ocrflow db check`` (alembic's check) proves the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "4f22598ae99b"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUS = "status IN ('pending', 'running', 'done', 'failed')"
RUN_STATUS = "status IN ('running', 'completed', 'failed', 'cancelled', 'abandoned')"
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)

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
    r.score
FROM regions r
JOIN pages p ON p.id = r.page_id
JOIN documents d ON d.id = p.document_id
JOIN runs ru ON ru.id = r.run_id
"""

PAGE_SUMMARY = """
CREATE VIEW page_summary AS
SELECT
    pr.id AS page_result_id,
    d.id AS document_id,
    d.source_uri,
    p.id AS page_id,
    p.page_number,
    p.width,
    p.height,
    p.dpi,
    pr.run_id,
    pr.params_hash,
    COALESCE(agg.region_count, 0) AS region_count,
    agg.mean_score,
    agg.min_score,
    COALESCE(agg.region_area, 0.0) / (p.width * p.height) AS text_density,
    pr.preprocess_seconds,
    pr.forward_seconds,
    pr.refine_seconds,
    pr.postprocess_seconds,
    pr.preprocess_seconds + pr.forward_seconds + pr.refine_seconds + pr.postprocess_seconds
        AS total_seconds,
    pr.created_at
FROM page_results pr
JOIN pages p ON p.id = pr.page_id
JOIN documents d ON d.id = p.document_id
LEFT JOIN (
    SELECT
        page_result_id,
        COUNT(*) AS region_count,
        AVG(score) AS mean_score,
        MIN(score) AS min_score,
        SUM(width * height) AS region_area
    FROM regions
    GROUP BY page_result_id
) agg ON agg.page_result_id = pr.id
"""

# Elapsed seconds differ per dialect; everything else in the view is portable SQL.
WALL_SECONDS = {
    "postgresql": "CAST(EXTRACT(EPOCH FROM (COALESCE(ru.finished_at, ru.heartbeat_at)"
    " - ru.started_at)) AS DOUBLE PRECISION)",
    "sqlite": "(julianday(COALESCE(ru.finished_at, ru.heartbeat_at))"
    " - julianday(ru.started_at)) * 86400.0",
}

RUN_SUMMARY = """
CREATE VIEW run_summary AS
SELECT
    ru.id AS run_id,
    ru.status,
    ru.model_name,
    ru.refiner_name,
    ru.device,
    ru.precision,
    ru.params_hash,
    ru.flow_run_id,
    ru.started_at,
    ru.finished_at,
    w.wall_seconds,
    COALESCE(pg.pages, 0) AS pages,
    COALESCE(rg.regions, 0) AS regions,
    CASE WHEN w.wall_seconds > 0 THEN COALESCE(pg.pages, 0) / w.wall_seconds END
        AS pages_per_second,
    CASE WHEN w.wall_seconds > 0 THEN COALESCE(rg.regions, 0) / w.wall_seconds END
        AS regions_per_second,
    pg.preprocess_seconds,
    pg.forward_seconds,
    pg.refine_seconds,
    pg.postprocess_seconds
FROM runs ru
JOIN (SELECT ru.id, {wall_seconds} AS wall_seconds FROM runs ru) w ON w.id = ru.id
LEFT JOIN (
    SELECT
        run_id,
        COUNT(*) AS pages,
        SUM(preprocess_seconds) AS preprocess_seconds,
        SUM(forward_seconds) AS forward_seconds,
        SUM(refine_seconds) AS refine_seconds,
        SUM(postprocess_seconds) AS postprocess_seconds
    FROM page_results
    GROUP BY run_id
) pg ON pg.run_id = ru.id
LEFT JOIN (SELECT run_id, COUNT(*) AS regions FROM regions GROUP BY run_id) rg
    ON rg.run_id = ru.id
"""

VIEWS = ("run_summary", "page_summary", "region_details")


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "sha256",
            sa.String(length=64),
            nullable=False,
            comment="Lower-case hex sha256 of the file's bytes.",
        ),
        sa.Column(
            "source_uri",
            sa.Text(),
            nullable=False,
            comment="Path or URI the file was last read from.",
        ),
        sa.Column(
            "media_type", sa.String(length=255), nullable=False, comment="e.g. application/pdf"
        ),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("page_count", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True, comment="Why the last processing failed."),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("last_processed_at", TS, nullable=True),
        sa.CheckConstraint("length(sha256) = 64", name=op.f("ck_documents_sha256_hex")),
        sa.CheckConstraint("size_bytes >= 0", name=op.f("ck_documents_size_bytes_non_negative")),
        sa.CheckConstraint(
            "page_count IS NULL OR page_count >= 0",
            name=op.f("ck_documents_page_count_non_negative"),
        ),
        sa.CheckConstraint(STATUS, name=op.f("ck_documents_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
        sa.UniqueConstraint("sha256", name=op.f("uq_documents_sha256")),
        comment="Input files; one row per distinct content (sha256).",
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "params_hash",
            sa.String(length=64),
            nullable=False,
            comment="sha256 of the canonical JSON of params + weight hashes; see db.writes.",
        ),
        sa.Column("params", JSON, nullable=False, comment="Detector parameters as JSON."),
        sa.Column("model_name", sa.String(length=255), nullable=False),
        sa.Column("model_sha256", sa.String(length=64), nullable=False),
        sa.Column("refiner_name", sa.String(length=255), nullable=True),
        sa.Column("refiner_sha256", sa.String(length=64), nullable=True),
        sa.Column("ocrflow_version", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False, comment="e.g. cpu, cuda:0"),
        sa.Column("precision", sa.String(length=16), nullable=False, comment="e.g. fp32, fp16"),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column(
            "heartbeat_at",
            TS,
            nullable=False,
            comment="Last sign of life; stale running runs become abandoned.",
        ),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("flow_run_id", sa.Uuid(), nullable=True, comment="Prefect flow-run id."),
        sa.CheckConstraint(RUN_STATUS, name=op.f("ck_runs_status")),
        sa.CheckConstraint(
            "(status = 'running' AND finished_at IS NULL)"
            " OR (status <> 'running' AND finished_at IS NOT NULL)",
            name=op.f("ck_runs_finished_iff_not_running"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("id", "params_hash", name=op.f("uq_runs_id_params_hash")),
        comment="Detection runs: parameters, weights, device, timing and status.",
    )
    op.create_index(op.f("ix_runs_params_hash"), "runs", ["params_hash"], unique=False)
    op.create_table(
        "pages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("page_number", sa.Integer(), nullable=False, comment="1-based."),
        sa.Column("width", sa.Integer(), nullable=False, comment="Pixels."),
        sa.Column("height", sa.Integer(), nullable=False, comment="Pixels."),
        sa.Column(
            "dpi", sa.Integer(), nullable=True, comment="Render resolution; NULL for images."
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("page_number >= 1", name=op.f("ck_pages_page_number_from_1")),
        sa.CheckConstraint("width > 0 AND height > 0", name=op.f("ck_pages_size_positive")),
        sa.CheckConstraint("dpi IS NULL OR dpi > 0", name=op.f("ck_pages_dpi_positive")),
        sa.CheckConstraint(STATUS, name=op.f("ck_pages_status")),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_pages_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pages")),
        sa.UniqueConstraint(
            "document_id", "page_number", name=op.f("uq_pages_document_id_page_number")
        ),
        comment="Pages of documents, 1-based; width/height in pixels.",
    )
    op.create_table(
        "page_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("params_hash", sa.String(length=64), nullable=False),
        sa.Column("preprocess_seconds", sa.Float(), nullable=False),
        sa.Column("forward_seconds", sa.Float(), nullable=False),
        sa.Column("refine_seconds", sa.Float(), nullable=False),
        sa.Column("postprocess_seconds", sa.Float(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint(
            "preprocess_seconds >= 0 AND forward_seconds >= 0"
            " AND refine_seconds >= 0 AND postprocess_seconds >= 0",
            name=op.f("ck_page_results_timings_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["page_id"],
            ["pages.id"],
            name=op.f("fk_page_results_page_id_pages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id", "params_hash"],
            ["runs.id", "runs.params_hash"],
            name=op.f("fk_page_results_run_id_params_hash_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_page_results")),
        sa.UniqueConstraint(
            "id", "page_id", "run_id", name=op.f("uq_page_results_id_page_id_run_id")
        ),
        sa.UniqueConstraint(
            "page_id", "params_hash", name=op.f("uq_page_results_page_id_params_hash")
        ),
        comment="One row per (page, parameter set): the run that wrote it and stage timings.",
    )
    op.create_index(op.f("ix_page_results_run_id"), "page_results", ["run_id"], unique=False)
    op.create_table(
        "regions",
        sa.Column("page_result_id", sa.Integer(), nullable=False),
        sa.Column(
            "region_index",
            sa.Integer(),
            nullable=False,
            comment="0-based order within the page result.",
        ),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("center_x", sa.Float(), nullable=False),
        sa.Column("center_y", sa.Float(), nullable=False),
        sa.Column("width", sa.Float(), nullable=False, comment="Length of edge (x0,y0)->(x1,y1)."),
        sa.Column("height", sa.Float(), nullable=False),
        sa.Column(
            "angle",
            sa.Float(),
            nullable=False,
            comment="Degrees, clockwise on screen, in [-90, 90).",
        ),
        sa.Column(
            "x0", sa.Float(), nullable=False, comment="Top-left-most corner (smallest x + y)."
        ),
        sa.Column("y0", sa.Float(), nullable=False),
        sa.Column("x1", sa.Float(), nullable=False),
        sa.Column("y1", sa.Float(), nullable=False),
        sa.Column("x2", sa.Float(), nullable=False),
        sa.Column("y2", sa.Float(), nullable=False),
        sa.Column("x3", sa.Float(), nullable=False),
        sa.Column("y3", sa.Float(), nullable=False),
        sa.Column("x_min", sa.Float(), nullable=False),
        sa.Column("y_min", sa.Float(), nullable=False),
        sa.Column("x_max", sa.Float(), nullable=False),
        sa.Column("y_max", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False, comment="Mean text score in [0, 1]."),
        sa.CheckConstraint("region_index >= 0", name=op.f("ck_regions_region_index_non_negative")),
        sa.CheckConstraint("score >= 0 AND score <= 1", name=op.f("ck_regions_score_0_1")),
        sa.CheckConstraint("width >= 0 AND height >= 0", name=op.f("ck_regions_size_non_negative")),
        sa.CheckConstraint(
            "x_min <= x_max AND y_min <= y_max", name=op.f("ck_regions_bounds_ordered")
        ),
        sa.ForeignKeyConstraint(
            ["page_result_id", "page_id", "run_id"],
            ["page_results.id", "page_results.page_id", "page_results.run_id"],
            name=op.f("fk_regions_page_result_id_page_id_run_id_page_results"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("page_result_id", "region_index", name=op.f("pk_regions")),
        comment="Rotated text regions; x0,y0..x3,y3 clockwise from the top-left-most corner.",
    )
    op.create_index(
        op.f("ix_regions_page_id_y_min_x_min"), "regions", ["page_id", "y_min", "x_min"]
    )
    op.create_index(op.f("ix_regions_score"), "regions", ["score"])

    dialect = op.get_bind().dialect.name
    op.execute(REGION_DETAILS)
    op.execute(PAGE_SUMMARY)
    op.execute(RUN_SUMMARY.format(wall_seconds=WALL_SECONDS[dialect]))


def downgrade() -> None:
    for view in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {view}")
    op.drop_index(op.f("ix_regions_score"), table_name="regions")
    op.drop_index(op.f("ix_regions_page_id_y_min_x_min"), table_name="regions")
    op.drop_table("regions")
    op.drop_index(op.f("ix_page_results_run_id"), table_name="page_results")
    op.drop_table("page_results")
    op.drop_table("pages")
    op.drop_index(op.f("ix_runs_params_hash"), table_name="runs")
    op.drop_table("runs")
    op.drop_table("documents")
