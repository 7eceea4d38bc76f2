"""Document claims: at most one live run processes a document under a parameter set.

Several workers may be handed the same inbox (a deployment scaled out, a cron run overlapping
the previous one, an operator starting ``ocrflow run`` twice). Before a run detects a document's
pages it *claims* the document for its ``params_hash`` in ``document_claims``, whose primary key
(``document_id``, ``params_hash``) lets one row, so one run, hold it:

- :func:`claim_document` inserts the claim (``INSERT ... ON CONFLICT DO NOTHING``, the same on
  SQLite and PostgreSQL). If another run holds it, the holder is checked under a row lock
  (``SELECT ... FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` serialises writers anyway) and the
  claim is taken over only if that run is no longer alive:

  - its status is not ``running`` (it finished, failed, or was swept as ``abandoned``);
  - its heartbeat is older than ``stale_after`` (``OCRFLOW_STALE_AFTER``, default 10 minutes;
    a live run beats every :data:`HEARTBEAT_SECONDS` from :class:`RunHeartbeat`);
  - or it runs on this host and its process is gone (killed, crashed), which frees the claims
    of a SIGKILLed run at once instead of after ``stale_after``. Host names must then tell
    machines (and containers) apart; where they do not, the worst case is one document
    processed twice, which the idempotent writes of :mod:`db.writes` absorb.

  Otherwise the caller gets ``taken=False`` and the holder's run id, and must leave the
  document alone (no status, no pages): the holder owns them.
- :func:`release_document` deletes the claim when the document is finished (done, partial or
  failed); :func:`db.writes.finish_run` and :func:`db.writes.mark_stale_runs` delete whatever a
  run still holds, in the same transaction that closes it.
- A page stream opens and finishes many documents per second on a GPU, so it uses the
  one-transaction forms: :func:`open_document` (upsert, claim, ``running``) and
  :func:`finish_document` (final status, release).

A claim does not replace the "already done" check: a run that gets a released document checks
its pages' results first (``skip_processed``), so a document finished a moment ago by another
run is skipped, not detected again. Timestamps compare the claimer's clock with the holder's
heartbeats, so worker clocks must agree to well within ``stale_after``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Connection, Engine, Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError

from db import writes
from db.errors import sqlstate
from db.models import Base, DocumentStatus, RunStatus
from db.session import connect

__all__ = [
    "DEFAULT_STALE_AFTER",
    "HEARTBEAT_SECONDS",
    "MIN_STALE_AFTER",
    "Claim",
    "ClaimSettings",
    "RunHeartbeat",
    "claim_document",
    "finish_document",
    "get_stale_after",
    "open_document",
    "release_document",
]

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0
"""How often :class:`RunHeartbeat` marks a run alive, whatever the run is busy with."""
DEFAULT_STALE_AFTER = timedelta(minutes=10)
MIN_STALE_AFTER = timedelta(seconds=6 * HEARTBEAT_SECONDS)
"""Shortest accepted ``OCRFLOW_STALE_AFTER``: several missed beats, never one slow one."""

claims: Table = Base.metadata.tables["document_claims"]
runs: Table = Base.metadata.tables["runs"]

_HOST = socket.gethostname()
_MAX_ATTEMPTS = 5
# Serialization failure and deadlock (PostgreSQL); a claim is one short transaction to redo.
_RETRY_SQLSTATES = {"40001", "40P01"}


class ClaimSettings(BaseSettings):
    """Claim settings; every field reads ``OCRFLOW_<FIELD>`` from the environment."""

    model_config = SettingsConfigDict(env_prefix="OCRFLOW_", extra="ignore")

    stale_after: timedelta = Field(
        DEFAULT_STALE_AFTER,
        description="A running run with no heartbeat for this long is dead: swept as "
        "abandoned at the start of every run, its claims taken over. Seconds or ISO 8601.",
    )

    @field_validator("stale_after", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        """A bare number in the environment means seconds."""
        if isinstance(value, str):
            try:
                return timedelta(seconds=float(value))
            except ValueError:
                return value  # ISO 8601, e.g. PT15M
        return value

    @field_validator("stale_after")
    @classmethod
    def _long_enough(cls, value: timedelta) -> timedelta:
        """Refuse an age a live run could reach between two heartbeats."""
        if value < MIN_STALE_AFTER:
            raise ValueError(
                f"{value.total_seconds():g} s is too short: runs beat every "
                f"{HEARTBEAT_SECONDS:g} s, so use at least {MIN_STALE_AFTER.total_seconds():g} s "
                f"(default {DEFAULT_STALE_AFTER.total_seconds():g} s)"
            )
        return value


def get_stale_after() -> timedelta:
    """``OCRFLOW_STALE_AFTER``, read now (not cached, so tests can change it)."""
    return ClaimSettings().stale_after


@dataclass(frozen=True, slots=True)
class Claim:
    """Outcome of :func:`claim_document`.

    Attributes:
        taken: the caller holds the document now and must process (then release) it.
        holder_run_id: the run holding it: the caller when ``taken``, else the live run that
            does (report it: "claimed by run N").
        taken_over_from: the dead run the claim was taken from, if any.
        reason: why that run counted as dead.
    """

    taken: bool
    holder_run_id: int
    taken_over_from: int | None = None
    reason: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def claim_document(
    engine: Engine,
    *,
    document_id: int,
    run_id: int,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    now: datetime | None = None,
    host: str | None = None,
    pid: int | None = None,
    pages: str = "all",
) -> Claim:
    """Claim ``document_id`` (or one page range of it) for ``run_id`` (under its ``params_hash``).

    Idempotent for the holder (claiming again returns ``taken=True``), so a retried task is
    safe. One short transaction, retried on deadlock or serialization failure.

    Args:
        engine: from :func:`db.session.open_database`.
        document_id: from :func:`db.writes.upsert_document`.
        run_id: the claiming run, which must be ``running``.
        stale_after: a holder whose heartbeat is older than this is dead.
        now: the time to judge heartbeats by (default: now).
        host, pid: the claiming process (default: this one); kept so a claimer on the same
            host can tell when the holder's process is gone.
        pages: "all", or "first-last" for a run given one page range: the ranges of a long
            PDF that the inbox hands to sibling child runs are claimed separately, so the
            siblings run side by side instead of leaving each other's pages undone.

    Raises:
        ValueError: unknown ``run_id``, or that run is no longer ``running``.
    """
    host = _HOST if host is None else host
    pid = os.getpid() if pid is None else pid

    def attempt(conn: Connection) -> tuple[int, Claim | None]:
        claim = _claim(conn, document_id, pages, run_id, stale_after, now or _now(), host, pid)
        return document_id, claim

    return _until_settled(engine, attempt, str(document_id))[1]


def open_document(
    engine: Engine,
    *,
    sha256: str,
    source_uri: str,
    media_type: str,
    size_bytes: int,
    page_count: int | None,
    run_id: int,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    pages: str = "all",
) -> tuple[int, Claim]:
    """A page stream's one call per document: upsert it (:func:`db.writes.upsert_document`),
    claim it (:func:`claim_document`) and, if the claim is taken, mark it ``running``, in one
    transaction. Returns the document's id and the claim."""
    host, pid = _HOST, os.getpid()

    def attempt(conn: Connection) -> tuple[int, Claim | None]:
        doc_id = writes.upsert_document_in(
            conn, sha256, source_uri, media_type, size_bytes, page_count
        )
        claim = _claim(conn, doc_id, pages, run_id, stale_after, _now(), host, pid)
        if claim is not None and claim.taken:
            writes.set_document_status_in(conn, doc_id, DocumentStatus.RUNNING)
        return doc_id, claim

    return _until_settled(engine, attempt, sha256)


def _until_settled(
    engine: Engine, attempt: Callable[[Connection], tuple[int, Claim | None]], name: str
) -> tuple[int, Claim]:
    """Run ``attempt`` in a transaction until it settles the claim: again when the holder
    changed under it (None), or on a deadlock or serialization failure."""
    for n in range(1, _MAX_ATTEMPTS + 1):
        try:
            with connect(engine) as conn, conn.begin():
                doc_id, claim = attempt(conn)
        except (IntegrityError, OperationalError) as error:
            if n == _MAX_ATTEMPTS or sqlstate(error) not in _RETRY_SQLSTATES:
                raise
            continue
        if claim is not None:
            return doc_id, claim
    raise RuntimeError(  # pragma: no cover - needs the holder to change five times in a row
        f"the claim on document {name} kept changing hands; gave up after {_MAX_ATTEMPTS} attempts"
    )


def _claim(
    conn: Connection,
    document_id: int,
    pages: str,
    run_id: int,
    stale_after: timedelta,
    now: datetime,
    host: str,
    pid: int,
) -> Claim | None:
    """One attempt; ``None`` when the holder changed under it (try again)."""
    query = select(runs.c.params_hash, runs.c.status).where(runs.c.id == run_id)
    run = conn.execute(query).one_or_none()
    if run is None:
        raise ValueError(f"unknown run id '{run_id}'")
    if run.status != RunStatus.RUNNING.value:
        raise ValueError(f"run {run_id} is {run.status}: only a running run can claim documents")
    key = (
        claims.c.document_id == document_id,
        claims.c.params_hash == run.params_hash,
        claims.c.pages == pages,
    )
    mine = {"run_id": run_id, "claimed_at": now, "host": host, "pid": pid}
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = conn.execute(
        dialect.insert(claims)
        .values(document_id=document_id, params_hash=run.params_hash, pages=pages, **mine)
        .on_conflict_do_nothing(
            index_elements=[claims.c.document_id, claims.c.params_hash, claims.c.pages]
        )
        .returning(claims.c.run_id)
    ).scalar()
    if inserted is not None:
        return Claim(taken=True, holder_run_id=run_id)
    # Lock the claim row alone: with a join, PostgreSQL would recheck a row updated meanwhile
    # against the old holder's runs row and return nothing.
    holder = conn.execute(
        select(claims.c.run_id, claims.c.host, claims.c.pid).where(*key).with_for_update()
    ).one_or_none()
    if holder is None:  # released between the insert and the select
        return None
    if holder.run_id == run_id:
        return Claim(taken=True, holder_run_id=run_id)
    state = conn.execute(
        select(runs.c.status, runs.c.heartbeat_at).where(runs.c.id == holder.run_id)
    ).one()
    reason = _why_dead(holder, state, now, stale_after, host)
    if reason is None:
        return Claim(taken=False, holder_run_id=int(holder.run_id))
    moved = conn.execute(update(claims).where(*key, claims.c.run_id == holder.run_id).values(mine))
    if moved.rowcount != 1:
        return None
    return Claim(
        taken=True, holder_run_id=run_id, taken_over_from=int(holder.run_id), reason=reason
    )


def _why_dead(
    holder: Any, state: Any, now: datetime, stale_after: timedelta, host: str
) -> str | None:
    """Why the holding run is dead, or ``None`` while it is alive."""
    if state.status != RunStatus.RUNNING.value:
        return f"run {holder.run_id} is {state.status}"
    if state.heartbeat_at < now - stale_after:
        return f"run {holder.run_id} has not beaten since {state.heartbeat_at:%Y-%m-%d %H:%M:%S}"
    if holder.host == host and holder.pid is not None and not _process_alive(holder.pid):
        return f"run {holder.run_id}'s process {holder.pid} on {host} is gone"
    return None


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (a zombie does not); unsure means alive."""
    if os.name != "posix":  # pragma: no cover - ocrflow's workers are Linux
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def release_document(
    engine: Engine, *, run_id: int, document_id: int | None = None, sha256: str | None = None
) -> bool:
    """Give up ``run_id``'s claim on a document, named by id or by sha256.

    Returns False if the run held no claim on it (never claimed, or taken over meanwhile).
    """
    if (document_id is None) == (sha256 is None):
        raise ValueError("name the document by document_id or by sha256, not both")
    documents = Base.metadata.tables["documents"]
    target = (
        claims.c.document_id == document_id
        if document_id is not None
        else claims.c.document_id.in_(
            select(documents.c.id).where(documents.c.sha256 == str(sha256).lower())
        )
    )
    with connect(engine) as conn, conn.begin():
        result = conn.execute(delete(claims).where(target, claims.c.run_id == run_id))
        return bool(result.rowcount)


def finish_document(
    engine: Engine,
    *,
    run_id: int,
    document_id: int,
    status: DocumentStatus | str,
    error: str | None = None,
) -> bool:
    """A finished document's final status (:func:`db.writes.set_document_status`) and the
    release of ``run_id``'s claim on it (:func:`release_document`), in one transaction: no
    reader sees one without the other. Returns whether the run still held the claim."""
    with connect(engine) as conn, conn.begin():
        writes.set_document_status_in(conn, document_id, status, error=error)
        mine = (claims.c.document_id == document_id, claims.c.run_id == run_id)
        return bool(conn.execute(delete(claims).where(*mine)).rowcount)


class RunHeartbeat:
    """Marks a run alive every ``interval`` seconds on a daemon thread, until :meth:`stop`.

    The flow also beats between slices and documents, but a page can take longer than any
    fixed age (a huge scan on a CPU, Tesseract on a dense page): this thread keeps a live run
    from ever looking dead to :func:`db.writes.mark_stale_runs` and :func:`claim_document`.
    A killed process stops beating, which is the point. Beats are best effort: a database blip
    costs one beat, logged, never the run.
    """

    def __init__(self, engine: Engine, run_id: int, interval: float = HEARTBEAT_SECONDS) -> None:
        self.engine, self.run_id, self.interval = engine, run_id, interval
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"ocrflow-heartbeat-{run_id}", daemon=True
        )

    def start(self) -> RunHeartbeat:
        """Start beating (the first beat after ``interval``); returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating and wait for the thread (at most one beat's time)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def __enter__(self) -> RunHeartbeat:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                writes.heartbeat(self.engine, self.run_id)
                self.beats += 1
            except Exception as exc:  # best effort: the next beat may land
                logger.warning("run %s: heartbeat skipped: %s", self.run_id, exc)
