"""Alembic environment: migrates the database named by the caller's config (``sqlalchemy.url``
set by :mod:`registry.adapters.store.db`), ``-x db_url=...``, or ``AUTORATER_DB_URL``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from registry.adapters.store.orm import Base
from registry.config import Settings

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return (context.get_x_argument(as_dictionary=True).get("db_url")
            or config.get_main_option("sqlalchemy.url")
            or Settings.from_env().db_url)


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        section = config.get_section(config.config_ini_section, {})
        section["sqlalchemy.url"] = _url()
        engine = engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)
        with engine.connect() as connection:
            _run(connection)
    else:
        _run(connectable)


def _run(connection) -> None:
    # render_as_batch: SQLite has no ALTER for most changes; batch mode rebuilds the table
    steps = []
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True, compare_type=True,
                      on_version_apply=lambda **kw: steps.append(kw["step"]))
    fk_were_on = _sqlite_foreign_keys_off(connection)
    try:
        with context.begin_transaction():
            context.run_migrations()
            if fk_were_on and steps:
                _check_foreign_keys(connection)
    finally:
        if fk_were_on:
            _restore_foreign_keys(connection)


# ------------------------------------------------------------------ SQLite: rebuilds without cascades
# A batch operation that rebuilds a table on SQLite (copy into a new table, DROP the old one, rename)
# runs an implicit DELETE of the old table's rows when foreign keys are enforced: ON DELETE CASCADE
# then empties the tables that refer to it (a downgrade to 0002 used to delete every evaluation run and
# metric), and SET NULL rewrites their references. So, as SQLite's "generalized ALTER TABLE procedure"
# and Alembic's batch documentation prescribe, enforcement is off while migrations run, and every
# foreign key is checked before the transaction commits. The pragma is a no-op inside a transaction:
# it is set before the first statement of the migrations (pysqlite opens its transaction at the first
# INSERT/UPDATE/DELETE, so a connection from ``engine.begin()`` is not in one yet). Only connections
# that enforce foreign keys (the registry's engines: ``db.create_engine_for``) need any of this.

def _dbapi(connection):
    return connection.connection.dbapi_connection  # sqlite3.Connection; no SQLAlchemy autobegin


def _sqlite_foreign_keys_off(connection) -> bool:
    """Turn SQLite's foreign-key enforcement off for the migrations; True when it was on."""
    if connection.dialect.name != "sqlite" or (connection.engine.url.database or ":memory:") == ":memory:":
        return False  # an in-memory database lives in its one connection, which cannot be detached
    raw = _dbapi(connection)
    if not raw.execute("PRAGMA foreign_keys").fetchone()[0]:
        return False  # e.g. Alembic's own engine (env.py's engine_from_config): never enforced
    if raw.in_transaction:
        raise RuntimeError("SQLite migrations must start outside a transaction: foreign keys cannot be "
                           "switched off inside one, and a table rebuild would cascade-delete rows")
    raw.execute("PRAGMA foreign_keys=OFF")
    if raw.execute("PRAGMA foreign_keys").fetchone()[0]:
        raise RuntimeError("could not switch SQLite foreign keys off for the migrations")
    # one real transaction from here on, DDL included (pysqlite would run a revision's leading DDL in
    # autocommit mode), so a failed check below rolls every step back; the caller's commit ends it
    raw.execute("BEGIN")
    return True


def _check_foreign_keys(connection) -> None:
    """Fail (and roll back) if the migrations left a row whose reference points nowhere."""
    bad = _dbapi(connection).execute("PRAGMA foreign_key_check").fetchall()
    if bad:
        rows = "; ".join(f"{table} rowid {rowid} -> {parent}" for table, rowid, parent, _ in bad[:10])
        raise RuntimeError(f"the migrations left {len(bad)} foreign-key violation(s): {rows}")


def _restore_foreign_keys(connection) -> None:
    """Enforcement back on. A caller's transaction (``db.upgrade``'s ``engine.begin()``) is still
    open here, where the pragma would be ignored: that connection is detached from the pool instead,
    so it is closed after the caller commits and no later checkout gets it with enforcement off."""
    raw = _dbapi(connection)
    if raw.in_transaction:
        connection.detach()
    else:
        raw.execute("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
