"""Claims: at most one live process evaluates a given (evaluator, dataset version) pair.

A claim is an advisory lock held for the length of the evaluation — on PostgreSQL
``pg_try_advisory_lock`` on a connection of its own, on SQLite an ``flock`` on a file beside the
database file. The database server or the operating system releases it when the holder dies, even
on SIGKILL or a lost machine, so:

* a run row still ``running`` when its pair is claimed belongs to a process that died; it is
  marked ``failed`` with the error :data:`ABANDONED` and the pair runs again (the dead run's
  cached judgments are reused, so only the rest is computed);
* a pair whose claim is held elsewhere is ``busy``: the holder is alive and will finish it.

Runs started outside the flows (``autorater eval run``) take no claim.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select, text

from registry.services.app import Registry

ABANDONED = "abandoned: the process running it ended without finishing (found when the pair was claimed again)"


def _key(evaluator: str, dataset: str) -> int:
    digest = hashlib.sha256(f"{evaluator}\0{dataset}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def claim(reg: Registry, evaluator: str, dataset: str) -> Iterator[bool]:
    """Hold the claim of ``evaluator`` on ``dataset`` (``name@version``) for the block; yields
    ``False`` (and holds nothing) when another live process holds it."""
    engine = reg.store.engine
    backend = engine.url.get_backend_name()
    key = _key(evaluator, dataset)
    if backend == "postgresql":
        with engine.connect() as conn:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            conn.commit()
            try:
                yield got
            finally:
                if got:  # the pooled connection outlives the block: release explicitly
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
        return
    database = engine.url.database
    if backend != "sqlite" or database in (None, "", ":memory:"):
        yield True  # one process owns an in-memory database: nothing to coordinate
        return
    import fcntl

    folder = Path(f"{database}.claims")
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{key & 0xFFFFFFFFFFFFFFFF:016x}", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def abandon_running(reg: Registry, evaluator: str, dataset: str) -> list[int]:
    """Mark the pair's ``running`` rows failed as :data:`ABANDONED`; call only under its claim."""
    from registry.adapters.store.orm import SqlEvaluationRun, utcnow

    store = reg.store
    with store.session() as s:
        ev = store.evaluator_row(s, evaluator)
        dv = store.version_row(s, dataset)
        rows = s.scalars(select(SqlEvaluationRun).where(SqlEvaluationRun.evaluator_id == ev.id,
                                                        SqlEvaluationRun.dataset_version_id == dv.id,
                                                        SqlEvaluationRun.status == "running")).all()
        for row in rows:
            row.status, row.finished_at, row.error = "failed", utcnow(), ABANDONED
        return [row.id for row in rows]
