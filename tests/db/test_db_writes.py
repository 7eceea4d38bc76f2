"""db.writes on both backends: idempotent upserts, atomic page writes, runs and constraints."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from db import writes
from tests.db_fixtures import make_regions

PARAMS = {"preset": "default", "text_threshold": 0.7, "link_threshold": 0.4}
MODEL_SHA = "a" * 64


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_run(engine: Engine, params: dict[str, object] = PARAMS) -> int:
    return writes.start_run(
        engine,
        params=params,
        model_name="craft_mlt_25k",
        model_sha256=MODEL_SHA,
        refiner_name="craft_refiner_CTW1500",
        refiner_sha256="b" * 64,
        device="cpu",
        precision="fp32",
        flow_run_id="5b0c9f4e-57a4-4d6e-9a55-3a0a1e1f2b3c",
    )


def new_page(engine: Engine, name: str = "doc.pdf", page_number: int = 1) -> int:
    doc = writes.upsert_document(
        engine, sha256=sha(name), source_uri=f"/data/{name}", media_type="application/pdf",
        size_bytes=1234, page_count=2,
    )  # fmt: skip
    return writes.upsert_page(
        engine, document_id=doc, page_number=page_number, width=1000, height=1400, dpi=200
    )


def rows(engine: Engine, query: str, **params: object) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(query), params))


def count(engine: Engine, table: str) -> int:
    return int(rows(engine, f"SELECT COUNT(*) FROM {table}")[0][0])


def test_params_hash_is_canonical() -> None:
    a = writes.params_hash({"x": 1, "y": [1, 2]}, model_sha256=MODEL_SHA)
    b = writes.params_hash({"y": [1, 2], "x": 1}, model_sha256=MODEL_SHA)
    assert a == b and len(a) == 64
    assert a != writes.params_hash({"x": 1, "y": [1, 2]}, model_sha256="c" * 64)
    assert a != writes.params_hash(
        {"x": 1, "y": [1, 2]}, model_sha256=MODEL_SHA, refiner_sha256="d"
    )


def test_write_page_regions_stores_every_field(engine: Engine, timings: Any) -> None:
    run, page = new_run(engine), new_page(engine)
    regions = make_regions(25)
    assert writes.write_page_regions(
        engine, run_id=run, page_id=page, regions=regions, timings=timings
    )

    stored = rows(engine, "SELECT * FROM regions ORDER BY region_index")
    assert [r.region_index for r in stored] == list(range(25))
    for region, row in zip(regions, stored, strict=True):
        assert (row.page_id, row.run_id) == (page, run)
        assert (row.center_x, row.center_y) == pytest.approx(region.center)
        assert (row.width, row.height, row.angle) == pytest.approx((*region.size, region.angle))
        polygon = [row.x0, row.y0, row.x1, row.y1, row.x2, row.y2, row.x3, row.y3]
        assert polygon == pytest.approx([v for point in region.polygon for v in point])
        assert (row.x_min, row.y_min, row.x_max, row.y_max) == pytest.approx(region.bounds)
        assert row.score == pytest.approx(region.score)
    (result,) = rows(engine, "SELECT * FROM page_results")
    assert result.forward_seconds == pytest.approx(0.2)
    assert result.params_hash == writes.params_hash(
        PARAMS, model_sha256=MODEL_SHA, refiner_sha256="b" * 64
    )
    assert rows(engine, "SELECT status, error FROM pages")[0] == ("done", None)


def test_rewriting_a_page_replaces_its_regions(engine: Engine) -> None:
    first, page = new_run(engine), new_page(engine)
    writes.write_page_regions(engine, run_id=first, page_id=page, regions=make_regions(30))
    second = new_run(engine)  # same parameters and weights, a later run
    writes.write_page_regions(engine, run_id=second, page_id=page, regions=make_regions(12, seed=5))

    assert count(engine, "page_results") == 1
    assert rows(engine, "SELECT COUNT(*), MIN(run_id), MAX(run_id) FROM regions")[0] == (
        12,
        second,
        second,
    )


def test_skip_keeps_existing_regions(engine: Engine) -> None:
    run, page = new_run(engine), new_page(engine)
    key = writes.params_hash(PARAMS, model_sha256=MODEL_SHA, refiner_sha256="b" * 64)
    assert writes.run_params_hash(engine, run) == key
    assert not writes.page_done(engine, page_id=page, params_hash=key)
    assert writes.write_page_regions(engine, run_id=run, page_id=page, regions=make_regions(7))
    assert writes.page_done(engine, page_id=page, params_hash=key)

    again = writes.write_page_regions(
        engine, run_id=new_run(engine), page_id=page, regions=make_regions(3), on_existing="skip"
    )
    assert again is False
    assert rows(engine, "SELECT COUNT(*), MAX(run_id) FROM regions")[0] == (7, run)


def test_other_parameters_keep_their_own_result(engine: Engine) -> None:
    page = new_page(engine)
    writes.write_page_regions(engine, run_id=new_run(engine), page_id=page, regions=make_regions(4))
    other = new_run(engine, {**PARAMS, "text_threshold": 0.5})
    writes.write_page_regions(engine, run_id=other, page_id=page, regions=make_regions(6))
    assert count(engine, "page_results") == 2
    assert count(engine, "regions") == 10


def test_failed_write_leaves_the_old_regions(engine: Engine) -> None:
    run, page = new_run(engine), new_page(engine)
    writes.write_page_regions(engine, run_id=run, page_id=page, regions=make_regions(20))
    snapshot = "SELECT page_result_id, region_index, run_id FROM regions ORDER BY region_index"
    before = rows(engine, snapshot)

    broken = make_regions(50)
    broken[37] = replace(broken[37], score=1.5)  # violates ck_regions_score_0_1 mid-page
    with pytest.raises(IntegrityError):
        writes.write_page_regions(engine, run_id=new_run(engine), page_id=page, regions=broken)

    assert rows(engine, snapshot) == before
    assert count(engine, "page_results") == 1


def test_scores_an_ulp_outside_0_1_are_clamped_not_rejected(engine: Engine) -> None:
    regions = [
        replace(r, score=s) for r, s in zip(make_regions(2), (1.0000001, -1e-9), strict=True)
    ]
    writes.write_page_regions(
        engine, run_id=new_run(engine), page_id=new_page(engine), regions=regions
    )
    assert [r[0] for r in rows(engine, "SELECT score FROM regions ORDER BY region_index")] == [1, 0]


def test_empty_page_is_a_result_with_no_regions(engine: Engine) -> None:
    run, page = new_run(engine), new_page(engine)
    assert writes.write_page_regions(engine, run_id=run, page_id=page, regions=[])
    assert (count(engine, "page_results"), count(engine, "regions")) == (1, 0)


def test_detector_types_are_accepted(engine: Engine) -> None:
    """The real craft.types (imported here only: craft pulls in torch), with float subclasses."""
    from craft.types import Region, StageTimings

    class Num(float):  # stands in for numpy.float32: a float subclass drivers may not adapt
        pass

    region = make_regions(1)[0]
    odd = Region(
        polygon=tuple((Num(x), Num(y)) for x, y in region.polygon),  # type: ignore[arg-type]
        center=(Num(region.center[0]), Num(region.center[1])),
        size=(Num(region.size[0]), Num(region.size[1])),
        angle=Num(region.angle),
        score=Num(0.5),
    )
    timings = StageTimings(preprocess=Num(0.5), forward=1.0)
    page = new_page(engine)
    writes.write_page_regions(
        engine, run_id=new_run(engine), page_id=page, regions=[odd], timings=timings
    )
    assert rows(engine, "SELECT score, x_min FROM regions")[0] == pytest.approx(
        (0.5, odd.bounds[0])
    )
    assert rows(engine, "SELECT preprocess_seconds FROM page_results")[0][0] == 0.5


def test_unknown_run_and_bad_mode_are_refused(engine: Engine) -> None:
    page = new_page(engine)
    with pytest.raises(ValueError, match="unknown run id '999'"):
        writes.write_page_regions(engine, run_id=999, page_id=page, regions=[])
    with pytest.raises(ValueError, match="unknown on_existing 'merge'"):
        writes.write_page_regions(engine, run_id=1, page_id=page, regions=[], on_existing="merge")  # type: ignore[arg-type]


def test_upserts_are_idempotent(engine: Engine) -> None:
    first = writes.upsert_document(
        engine, sha256=sha("x").upper(), source_uri="/a/x.pdf", media_type="application/pdf",
        size_bytes=10, page_count=3,
    )  # fmt: skip
    again = writes.upsert_document(
        engine, sha256=sha("x"), source_uri="s3://bucket/x.pdf", media_type="application/pdf",
        size_bytes=10,
    )  # fmt: skip
    assert first == again
    assert rows(engine, "SELECT source_uri, page_count, status FROM documents") == [
        ("s3://bucket/x.pdf", 3, "pending")
    ]
    page = writes.upsert_page(engine, document_id=first, page_number=1, width=10, height=20)
    assert writes.upsert_page(engine, document_id=first, page_number=1, width=10, height=20) == page
    assert count(engine, "pages") == 1


def test_page_resized_drops_its_results(engine: Engine) -> None:
    run, page = new_run(engine), new_page(engine)
    writes.write_page_regions(engine, run_id=run, page_id=page, regions=make_regions(5))
    doc = rows(engine, "SELECT document_id FROM pages")[0][0]
    same = writes.upsert_page(
        engine, document_id=doc, page_number=1, width=1000, height=1400, dpi=200
    )
    assert same == page and count(engine, "regions") == 5
    writes.upsert_page(engine, document_id=doc, page_number=1, width=500, height=700, dpi=100)
    assert (count(engine, "page_results"), count(engine, "regions")) == (0, 0)
    assert rows(engine, "SELECT width, dpi, status FROM pages") == [(500, 100, "pending")]


def test_statuses_and_errors(engine: Engine) -> None:
    page = new_page(engine)
    doc = rows(engine, "SELECT document_id FROM pages")[0][0]
    writes.record_page_error(engine, page, "decode failed")
    writes.record_document_error(engine, doc, "1 page failed")
    assert rows(engine, "SELECT status, error FROM pages") == [("failed", "decode failed")]
    row = rows(engine, "SELECT status, error, last_processed_at FROM documents")[0]
    assert row[:2] == ("failed", "1 page failed") and row[2] is not None
    writes.set_document_status(engine, doc, "done")
    assert rows(engine, "SELECT status, error FROM documents") == [("done", None)]
    with pytest.raises(ValueError, match="unknown pages id '42'"):
        writes.set_page_status(engine, 42, "done")
    with pytest.raises(ValueError):
        writes.set_page_status(engine, page, "finished")


def test_run_lifecycle_and_stale_sweep(engine: Engine) -> None:
    done, crashed, alive = new_run(engine), new_run(engine), new_run(engine)
    writes.finish_run(engine, done, "completed")
    with pytest.raises(ValueError, match="cannot finish run"):
        writes.finish_run(engine, done, "running")
    with pytest.raises(ValueError, match="unknown run id '77'"):
        writes.finish_run(engine, 77)

    later = datetime.now(UTC) + timedelta(hours=2)
    writes.heartbeat(engine, alive)
    with engine.begin() as conn:  # alive keeps beating; crashed stopped 2 hours before "later"
        conn.execute(
            writes.runs.update().where(writes.runs.c.id == alive).values(heartbeat_at=later)
        )
    assert writes.mark_stale_runs(engine, timedelta(minutes=30), now=later) == 1
    got = dict(rows(engine, "SELECT id, status FROM runs"))
    assert got == {done: "completed", crashed: "abandoned", alive: "running"}
    with engine.connect() as conn:
        run = conn.execute(sa.select(writes.runs).where(writes.runs.c.id == done)).one()
    assert run.finished_at.tzinfo is not None and run.started_at <= run.finished_at
    assert str(run.flow_run_id) == "5b0c9f4e-57a4-4d6e-9a55-3a0a1e1f2b3c"
    assert run.params == PARAMS and run.ocrflow_version


def test_constraints_forbid_a_second_copy(engine: Engine) -> None:
    run, page = new_run(engine), new_page(engine)
    writes.write_page_regions(engine, run_id=run, page_id=page, regions=make_regions(2))
    (result,) = rows(engine, "SELECT * FROM page_results")
    duplicate = "INSERT INTO page_results (page_id, run_id, params_hash, preprocess_seconds, "\
        "forward_seconds, refine_seconds, postprocess_seconds, created_at) "\
        "VALUES (:page, :run, :key, 0, 0, 0, 0, :now)"  # fmt: skip
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(duplicate), {"page": page, "run": run, "key": result.params_hash,
                                          "now": datetime.now(UTC)})  # fmt: skip
    with pytest.raises(IntegrityError), engine.begin() as conn:  # same index twice
        columns = ", ".join(writes.REGION_COLUMNS)  # not *: PostgreSQL's generated text_search
        conn.execute(
            sa.text(f"INSERT INTO regions ({columns}) SELECT {columns} FROM regions"
                    " WHERE region_index = 0")
        )  # fmt: skip
    other_page = new_page(engine, page_number=2)
    with pytest.raises(IntegrityError), engine.begin() as conn:  # region of another page
        conn.execute(sa.text("UPDATE regions SET page_id = :p"), {"p": other_page})
    with pytest.raises(IntegrityError), engine.begin() as conn:  # result under another params_hash
        conn.execute(sa.text("UPDATE page_results SET params_hash = :k"), {"k": "f" * 64})


def test_deleting_a_document_cascades(engine: Engine) -> None:
    run, page = new_run(engine), new_page(engine)
    writes.write_page_regions(engine, run_id=run, page_id=page, regions=make_regions(3))
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM documents"))
    assert [count(engine, t) for t in ("pages", "page_results", "regions", "runs")] == [0, 0, 0, 1]


def test_server_down_mid_run_is_one_clear_error() -> None:
    from db.errors import DatabaseUnavailableError
    from db.session import create_engine

    engine = create_engine("postgresql://u:pw@127.0.0.1:1/ocrflow")
    with pytest.raises(DatabaseUnavailableError, match="cannot reach"):
        writes.write_page_regions(engine, run_id=1, page_id=1, regions=make_regions(3))
    with pytest.raises(DatabaseUnavailableError):
        writes.page_done(engine, page_id=1, params_hash="0" * 64)


def test_orientation_is_stored_on_the_page(engine: Engine) -> None:
    run, page = new_run(engine), new_page(engine)
    query = "SELECT orientation FROM pages WHERE id = :page"
    assert rows(engine, query, page=page)[0][0] is None
    writes.write_page_regions(
        engine, run_id=run, page_id=page, regions=make_regions(2), orientation=270
    )
    assert rows(engine, query, page=page)[0][0] == 270
    writes.write_page_regions(engine, run_id=run, page_id=page, regions=[])  # None: kept
    assert rows(engine, query, page=page)[0][0] == 270
    with pytest.raises(ValueError, match="unknown orientation '45'"):
        writes.write_page_regions(engine, run_id=run, page_id=page, regions=[], orientation=45)
    assert rows(engine, query, page=page)[0][0] == 270


def test_every_precision_a_run_can_record_fits_its_column() -> None:
    """``precision="fast"`` records the path it picked (``craft.fast``): every label it can
    give, on any CPU or GPU, fits ``runs.precision`` (PostgreSQL refuses a longer one)."""
    from craft.fast import choose_fast_path
    from db.models import Run

    column = Run.__table__.c.precision.type
    assert isinstance(column, sa.String) and column.length is not None
    width = column.length
    flag_sets = [None, frozenset({"avx2"}), frozenset({"avx512_vnni"})]
    flag_sets += [frozenset({"avx512_bf16"}), frozenset({"avx512_bf16", "avx512_vnni"})]
    labels = {choose_fast_path("cuda", "auto", None).label, "fp32", "bf16", "fp16"}
    for flags in flag_sets:
        for backend in ("auto", "torch", "onnxruntime"):
            labels.add(choose_fast_path("cpu", backend, flags).label)
    assert "bf16/int8+crop" in labels
    assert max(len(label) for label in labels) <= width, sorted(labels)
