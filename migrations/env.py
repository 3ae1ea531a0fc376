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
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
