"""Advisory locks that die with their holder: the claims of (evaluator, dataset version) pairs.

A claim is held for the length of an evaluation — on PostgreSQL ``pg_try_advisory_lock`` on a
connection of its own, on SQLite an ``flock`` on a file beside the database file. The database
server or the operating system releases it when the holder dies, even on SIGKILL or a lost
machine (see :mod:`registry.services.claims` for what the services make of that).

A claim is taken at once or not at all (``wait=0``), or waited for: ``wait`` seconds, or for as
long as the holder (alive, by construction) keeps it (``wait=None``).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine


def claim_key(evaluator: str, dataset: str) -> int:
    """The signed 64-bit lock key of a pair."""
    digest = hashlib.sha256(f"{evaluator}\0{dataset}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _polling(wait: float | None) -> Iterator[None]:
    """Yield once per try: once for ``wait=0``, until ``wait`` seconds have passed, or forever
    (``None``), pausing between tries (10 ms at first, then up to half a second)."""
    deadline = None if wait is None else time.monotonic() + max(wait, 0.0)
    pause = 0.01
    while True:
        yield
        if deadline is not None and time.monotonic() >= deadline:
            return
        time.sleep(pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic())))
        pause = min(pause * 2, 0.5)


@contextmanager
def advisory_lock(engine: Engine, key: int, *, wait: float | None = 0) -> Iterator[bool]:
    """Hold lock ``key`` for the block; yields ``False`` (holding nothing) when another live
    process holds it (after waiting up to ``wait`` seconds for it; ``None``: until it is free)."""
    backend = engine.url.get_backend_name()
    if backend == "postgresql":
        with engine.connect() as conn:
            got = False
            for _ in _polling(wait):
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
                conn.commit()
                if got:
                    break
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
        got = False
        for _ in _polling(wait):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            got = True
            break
        if not got:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
