"""db.claims on both backends: one live holder per (document, parameter set), takeover of dead
holders, release, the stale-run sweep freeing claims, and runs racing for one claim."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy import Engine

from db import claims, writes
from tests.db.test_db_writes import count, new_run, rows, sha

LATER = timedelta(minutes=11)  # past the default stale age of 10 minutes


def new_document(engine: Engine, name: str = "doc.pdf") -> int:
    return writes.upsert_document(
        engine, sha256=sha(name), source_uri=f"/in/{name}", media_type="application/pdf",
        size_bytes=1234, page_count=1,
    )  # fmt: skip


def holders(engine: Engine) -> list[tuple[int, int]]:
    return [
        (int(d), int(r))
        for d, r in rows(engine, "SELECT document_id, run_id FROM document_claims ORDER BY 1")
    ]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_first_claim_wins_and_the_holder_is_named(engine: Engine) -> None:
    doc, run_a, run_b = new_document(engine), new_run(engine), new_run(engine)
    first = claims.claim_document(engine, document_id=doc, run_id=run_a)
    assert first == claims.Claim(taken=True, holder_run_id=run_a)
    second = claims.claim_document(engine, document_id=doc, run_id=run_b)
    assert second == claims.Claim(taken=False, holder_run_id=run_a)
    # The holder claiming again (a retried task) still holds it; nothing changed hands.
    assert claims.claim_document(engine, document_id=doc, run_id=run_a).taken
    assert holders(engine) == [(doc, run_a)]
    row = rows(engine, "SELECT params_hash, host, pid FROM document_claims")[0]
    assert row.params_hash == writes.run_params_hash(engine, run_a)
    assert row.pid == os.getpid() and row.host


def test_release_lets_the_next_run_claim(engine: Engine) -> None:
    doc, other = new_document(engine), new_document(engine, "other.pdf")
    run_a, run_b = new_run(engine), new_run(engine)
    assert claims.claim_document(engine, document_id=doc, run_id=run_a).taken
    assert claims.claim_document(engine, document_id=other, run_id=run_a).taken
    assert not claims.release_document(engine, run_id=run_b, document_id=doc)  # not the holder
    assert claims.release_document(engine, run_id=run_a, document_id=doc)
    assert not claims.release_document(engine, run_id=run_a, document_id=doc)  # already gone
    assert claims.claim_document(engine, document_id=doc, run_id=run_b).taken
    assert claims.release_document(engine, run_id=run_a, sha256=sha("other.pdf").upper())
    assert holders(engine) == [(doc, run_b)]
    with pytest.raises(ValueError, match="not both"):
        claims.release_document(engine, run_id=run_a)


def test_claims_are_per_parameter_set(engine: Engine) -> None:
    doc = new_document(engine)
    strict, loose = new_run(engine), new_run(engine, {"preset": "default", "text_threshold": 0.5})
    assert claims.claim_document(engine, document_id=doc, run_id=strict).taken
    assert claims.claim_document(engine, document_id=doc, run_id=loose).taken
    assert count(engine, "document_claims") == 2


def test_stale_heartbeat_holder_is_taken_over(engine: Engine) -> None:
    doc, run_a = new_document(engine), new_run(engine)
    assert claims.claim_document(engine, document_id=doc, run_id=run_a).taken
    run_b = new_run(engine)
    # Within the stale age the holder is alive, whatever its heartbeat's age.
    almost = datetime.now(UTC) + timedelta(minutes=9)
    assert not claims.claim_document(engine, document_id=doc, run_id=run_b, now=almost).taken
    later = datetime.now(UTC) + LATER
    took = claims.claim_document(engine, document_id=doc, run_id=run_b, now=later)
    assert (took.taken, took.holder_run_id, took.taken_over_from) == (True, run_b, run_a)
    assert took.reason is not None and "has not beaten" in took.reason
    assert holders(engine) == [(doc, run_b)]
    # The old holder, back to life, finds the document taken and leaves it.
    assert claims.claim_document(engine, document_id=doc, run_id=run_a) == claims.Claim(
        taken=False, holder_run_id=run_b
    )
    # A shorter configured age applies too.
    run_c = new_run(engine)
    soon = datetime.now(UTC) + timedelta(minutes=4)
    took = claims.claim_document(
        engine, document_id=doc, run_id=run_c, stale_after=timedelta(minutes=3), now=soon
    )
    assert took.taken and took.taken_over_from == run_b


def test_holder_no_longer_running_is_taken_over(engine: Engine) -> None:
    doc, run_a, run_b = new_document(engine), new_run(engine), new_run(engine)
    assert claims.claim_document(engine, document_id=doc, run_id=run_a).taken
    with engine.begin() as conn:  # a run closed behind finish_run's back, its claim left
        conn.execute(
            sa.update(writes.runs)
            .where(writes.runs.c.id == run_a)
            .values(status="failed", finished_at=datetime.now(UTC))
        )
    took = claims.claim_document(engine, document_id=doc, run_id=run_b)
    assert took.taken and took.taken_over_from == run_a and took.reason == f"run {run_a} is failed"


def test_holder_whose_process_is_gone_is_taken_over_on_its_host(engine: Engine) -> None:
    doc, run_a, run_b = new_document(engine), new_run(engine), new_run(engine)
    gone = dead_pid()
    assert claims.claim_document(engine, document_id=doc, run_id=run_a, pid=gone).taken
    # From another host the pid means nothing: the fresh heartbeat says alive.
    assert not claims.claim_document(engine, document_id=doc, run_id=run_b, host="elsewhere").taken
    took = claims.claim_document(engine, document_id=doc, run_id=run_b)
    assert took.taken and took.taken_over_from == run_a
    assert took.reason is not None and f"process {gone}" in took.reason
    # A live process (this one) keeps its claim.
    run_c = new_run(engine)
    assert not claims.claim_document(engine, document_id=doc, run_id=run_c).taken


def silence(engine: Engine, run_id: int, hours: float = 1.0) -> None:
    """Pretend the run's last heartbeat was ``hours`` ago (a killed worker)."""
    with engine.begin() as conn:
        conn.execute(
            sa.update(writes.runs)
            .where(writes.runs.c.id == run_id)
            .values(heartbeat_at=datetime.now(UTC) - timedelta(hours=hours))
        )


def test_finish_and_sweep_drop_the_runs_claims(engine: Engine) -> None:
    docs = [new_document(engine, f"d{i}.pdf") for i in range(3)]
    done, killed, alive = new_run(engine), new_run(engine), new_run(engine)
    for doc, run in zip(docs, (done, killed, alive), strict=True):
        assert claims.claim_document(engine, document_id=doc, run_id=run).taken
    writes.finish_run(engine, done)
    assert holders(engine) == [(docs[1], killed), (docs[2], alive)]

    silence(engine, killed)
    assert writes.mark_stale_runs(engine, timedelta(minutes=10)) == 1
    assert holders(engine) == [(docs[2], alive)]  # the live run keeps its claim
    statuses = dict(rows(engine, "SELECT id, status FROM runs"))
    assert statuses == {done: "completed", killed: "abandoned", alive: "running"}
    assert claims.claim_document(engine, document_id=docs[1], run_id=alive).taken

    with pytest.raises(ValueError, match="abandoned: only a running run can claim"):
        claims.claim_document(engine, document_id=docs[0], run_id=killed)
    with pytest.raises(ValueError, match="unknown run id"):
        claims.claim_document(engine, document_id=docs[0], run_id=killed + 100)


def test_a_claim_waits_for_an_open_claim_then_respects_it(engine: Engine) -> None:
    """Deterministic race: B claims while A's claiming transaction is still open."""
    doc, run_a, run_b = new_document(engine), new_run(engine), new_run(engine)
    with engine.connect() as conn_a, conn_a.begin():
        now = datetime.now(UTC)
        mine = claims._claim(conn_a, doc, "all", run_a, claims.DEFAULT_STALE_AFTER, now, "h", 1)
        assert mine == claims.Claim(taken=True, holder_run_id=run_a)
        with ThreadPoolExecutor(1) as pool:  # B blocks on A's row (or SQLite's write lock)
            b = pool.submit(claims.claim_document, engine, document_id=doc, run_id=run_b)
            time.sleep(0.5)
            assert not b.done()
            conn_a.commit()
            assert b.result(timeout=30) == claims.Claim(taken=False, holder_run_id=run_a)
    assert holders(engine) == [(doc, run_a)]


RACERS = 8


def race(
    engine: Engine, document_id: int, run_ids: list[int], **kwargs: object
) -> list[claims.Claim]:
    """Every run claims the document at the same moment, each on its own connection."""
    barrier = threading.Barrier(len(run_ids))

    def claim(run_id: int) -> claims.Claim:
        barrier.wait(timeout=30)
        return claims.claim_document(engine, document_id=document_id, run_id=run_id, **kwargs)  # type: ignore[arg-type]

    with ThreadPoolExecutor(len(run_ids)) as pool:
        return list(pool.map(claim, run_ids))


def test_racing_runs_one_winner_per_document(engine: Engine) -> None:
    run_ids = [new_run(engine) for _ in range(RACERS)]
    for i in range(5):
        doc = new_document(engine, f"race{i}.pdf")
        results = race(engine, doc, run_ids)
        winners = [c.holder_run_id for c in results if c.taken]
        assert len(winners) == 1, results
        assert {c.holder_run_id for c in results} == set(winners)
        assert holders(engine)[-1] == (doc, winners[0])


def test_racing_takeover_of_a_dead_claim_has_one_winner(engine: Engine) -> None:
    doc, dead = new_document(engine), new_run(engine)
    assert claims.claim_document(engine, document_id=doc, run_id=dead).taken
    silence(engine, dead)  # its worker was killed an hour ago
    run_ids = [new_run(engine) for _ in range(RACERS)]
    results = race(engine, doc, run_ids)
    # The winner is alive (fresh heartbeat): every other racer must leave it the document.
    taken = [c for c in results if c.taken]
    assert len(taken) == 1 and taken[0].taken_over_from == dead, results
    assert all(c.holder_run_id == taken[0].holder_run_id for c in results)
    assert holders(engine) == [(doc, taken[0].holder_run_id)]


def test_heartbeat_thread_keeps_a_run_alive(engine: Engine) -> None:
    run = new_run(engine)
    before = rows(engine, "SELECT heartbeat_at FROM runs WHERE id = :r", r=run)[0][0]
    with claims.RunHeartbeat(engine, run, interval=0.05) as beat:
        deadline = time.monotonic() + 20
        while beat.beats < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert beat.beats >= 3
    after = rows(engine, "SELECT heartbeat_at FROM runs WHERE id = :r", r=run)[0][0]
    assert str(after) > str(before)
    stopped = beat.beats
    time.sleep(0.2)
    assert beat.beats == stopped  # stop() ended the thread


def test_stale_after_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCRFLOW_STALE_AFTER", raising=False)
    assert claims.get_stale_after() == timedelta(minutes=10)
    monkeypatch.setenv("OCRFLOW_STALE_AFTER", "900")
    assert claims.get_stale_after() == timedelta(minutes=15)
    monkeypatch.setenv("OCRFLOW_STALE_AFTER", "PT20M")
    assert claims.get_stale_after() == timedelta(minutes=20)
    monkeypatch.setenv("OCRFLOW_STALE_AFTER", "60")  # a couple of heartbeats: refused
    with pytest.raises(ValidationError, match="too short"):
        claims.get_stale_after()
    assert timedelta(seconds=3 * claims.HEARTBEAT_SECONDS) <= claims.MIN_STALE_AFTER


def test_page_ranges_of_one_document_are_claimed_side_by_side(engine: Engine) -> None:
    """Sibling page-range runs of one PDF each get their range; the same range stays exclusive."""
    a, b, c = new_run(engine), new_run(engine), new_run(engine)
    doc = new_document(engine)
    assert claims.claim_document(engine, document_id=doc, run_id=a, pages="1-2").taken
    assert claims.claim_document(engine, document_id=doc, run_id=b, pages="3-4").taken
    same = claims.claim_document(engine, document_id=doc, run_id=c, pages="3-4")
    assert (same.taken, same.holder_run_id) == (False, b)
    whole = claims.claim_document(engine, document_id=doc, run_id=c)
    assert whole.taken  # "all" is its own key: the inbox never overlaps ranges of one document


def open_doc(engine: Engine, run_id: int, name: str = "doc.pdf") -> tuple[int, claims.Claim]:
    return claims.open_document(
        engine, sha256=sha(name), source_uri=f"/in/{name}", media_type="application/pdf",
        size_bytes=1234, page_count=2, run_id=run_id,
    )  # fmt: skip


def status(engine: Engine, doc: int) -> tuple[str, str | None]:
    row = rows(engine, f"SELECT status, error FROM documents WHERE id = {doc}")[0]
    return row.status, row.error


def test_open_document_upserts_claims_and_marks_running_only_when_taken(engine: Engine) -> None:
    run_a, run_b = new_run(engine), new_run(engine)
    doc, claim = open_doc(engine, run_a)
    assert claim == claims.Claim(taken=True, holder_run_id=run_a)
    assert status(engine, doc) == ("running", None) and holders(engine) == [(doc, run_a)]
    writes.set_document_status(engine, doc, "pending")  # as if an operator reset it
    again, lost = open_doc(engine, run_b)
    assert again == doc and lost == claims.Claim(taken=False, holder_run_id=run_a)
    assert status(engine, doc) == ("pending", None)  # the loser leaves the status alone
    assert count(engine, "documents") == 1


def test_finish_document_sets_the_outcome_and_releases_in_one_step(engine: Engine) -> None:
    run_a, run_b = new_run(engine), new_run(engine)
    doc, _ = open_doc(engine, run_a)
    assert claims.finish_document(
        engine, run_id=run_a, document_id=doc, status="failed", error="broken page"
    )
    assert status(engine, doc) == ("failed", "broken page") and holders(engine) == []
    assert open_doc(engine, run_b)[1].taken  # released: the next run gets it
    # A run that no longer holds the claim still records its outcome; the holder keeps it.
    assert not claims.finish_document(engine, run_id=run_a, document_id=doc, status="done")
    assert status(engine, doc) == ("done", None) and holders(engine) == [(doc, run_b)]
    with pytest.raises(ValueError, match="unknown documents id"):
        claims.finish_document(engine, run_id=run_a, document_id=doc + 99, status="done")
    assert holders(engine) == [(doc, run_b)]  # the failed call changed nothing


def test_register_page_upserts_and_says_whether_it_is_done(engine: Engine) -> None:
    run = new_run(engine)
    doc, _ = open_doc(engine, run)
    key = writes.run_params_hash(engine, run)
    page, done = writes.register_page(
        engine, document_id=doc, page_number=1, width=100, height=50, dpi=150, params_hash=key
    )
    assert not done
    writes.write_page_regions(engine, run_id=run, page_id=page, regions=[])
    same = writes.register_page(
        engine, document_id=doc, page_number=1, width=100, height=50, dpi=150, params_hash=key
    )
    assert same == (page, True)
    resized = writes.register_page(
        engine, document_id=doc, page_number=1, width=200, height=100, dpi=300, params_hash=key
    )
    assert resized == (page, False)  # another size: its old results no longer apply
