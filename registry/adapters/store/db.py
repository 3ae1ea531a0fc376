"""Engines, the schema check and the one managed-session helper.

* :func:`create_engine_for` turns a URL into an engine (SQLite gets foreign keys, WAL and a busy
  timeout: a writer that finds the database locked retries for :func:`sqlite_busy_timeout` seconds,
  then fails with a :class:`DatabaseError` that says so).
* :func:`upgrade` / :func:`downgrade` run the Alembic revisions in ``migrations/``.
* :func:`check_schema` refuses a database that is not at the head revision and prints the
  command that fixes it.
* :func:`managed_session` commits on success, rolls back otherwise, and re-raises driver
  errors as :class:`registry.errors.DatabaseError` with the cause chained.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from registry.config import PROJECT_ROOT
from registry.errors import DatabaseError, RegistryError, SchemaOutOfDate

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported by the functions that use it (~0.25 s): opening a registry whose schema is
# current does not need it (see SqlAlchemyStore's schema check).
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


SQLITE_BUSY_TIMEOUT_S = 60.0
"""Default of :func:`sqlite_busy_timeout`."""


def sqlite_busy_timeout() -> float:
    """Seconds a SQLite statement keeps retrying while another process holds the write lock
    (``AUTORATER_SQLITE_BUSY_TIMEOUT``, default 60)."""
    try:
        return max(0.0, float(os.environ.get("AUTORATER_SQLITE_BUSY_TIMEOUT", SQLITE_BUSY_TIMEOUT_S)))
    except ValueError:
        return SQLITE_BUSY_TIMEOUT_S


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={int(sqlite_busy_timeout() * 1000)}")  # first: the others may wait
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


def _locked_message(exc: SQLAlchemyError) -> str | None:
    """A clear message for SQLite's "database is locked" (the busy timeout ran out), else None."""
    if "database is locked" not in str(getattr(exc, "orig", exc)):
        return None
    return (f"database error: the SQLite database stayed locked by another writer for over "
            f"{sqlite_busy_timeout():.0f} s (busy timeout); nothing was written — try again, raise "
            "AUTORATER_SQLITE_BUSY_TIMEOUT, or use PostgreSQL for many concurrent writers")


def create_engine_for(url: str) -> Engine:
    """An engine for ``url``; a SQLite file's folder is created on demand."""
    sa_url = sa.engine.make_url(url)
    if sa_url.get_backend_name() == "sqlite":
        if sa_url.database and sa_url.database != ":memory:":
            Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(sa_url, connect_args={"timeout": sqlite_busy_timeout()})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(sa_url, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    """Alembic config pointing at ``migrations/`` and at ``url``."""
    from alembic.config import Config

    cfg = Config(str(PROJECT_ROOT / "alembic.ini")) if (PROJECT_ROOT / "alembic.ini").exists() else Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@cache
def head_revision() -> str:
    """The single head revision of ``migrations/``."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    if len(heads) != 1:
        raise RegistryError(f"migrations have {len(heads)} heads ({heads}); merge them with `alembic merge`")
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Revert migrations down to ``revision`` (``base`` for an empty schema)."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def check_schema(engine: Engine) -> None:
    """Raise :class:`SchemaOutOfDate` unless the database is at the head revision."""
    from alembic.script import ScriptDirectory

    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        raise SchemaOutOfDate(f"the registry database {where} is not initialised; run `autorater init`")
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    known = {rev.revision for rev in script.walk_revisions()}
    if current not in known:
        raise SchemaOutOfDate(f"the registry database {where} is at revision {current}, newer than this code "
                              f"(head {head}); upgrade the autorater-registry package")
    raise SchemaOutOfDate(f"the registry database {where} is at revision {current}, this code needs {head}; "
                          f"run `autorater db upgrade` (back it up first)")


@contextmanager
def managed_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error; driver errors become
    :class:`DatabaseError` (the product's own errors pass through unchanged)."""
    session = factory()
    try:
        yield session
        session.commit()
    except RegistryError:
        session.rollback()
        raise
    except SQLAlchemyError as exc:
        session.rollback()
        raise DatabaseError(_locked_message(exc) or f"database error: {str(exc).splitlines()[0]}") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
