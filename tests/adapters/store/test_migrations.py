"""Migration tests (pytest-alembic's four, written against Alembic's API) plus the schema check.

Every test runs on a fresh SQLite file and on a fresh PostgreSQL database (``db_url``). The
migrations in ``migrations/`` are what users run on their data, so they are tested like code:
one head, every revision up and down, the result equal to the ORM models, and an upgrade of a
database that already holds a registered dataset.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory

from registry.adapters.store import db
from registry.adapters.store.orm import Base
from registry.errors import SchemaOutOfDate
from registry.services.app import RegistryContext
from registry.services.datasets import register_dataset_version

LLMBAR_NATURAL = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/dataset.json"


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(db.alembic_config("sqlite://"))


def _revisions() -> list[Script]:
    """Every revision, oldest first (``walk_revisions`` goes from head down to base)."""
    return list(reversed(list(_script().walk_revisions())))


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


@pytest.fixture
def engine(db_url) -> Iterator[sa.Engine]:
    eng = db.create_engine_for(db_url)
    yield eng
    eng.dispose()


# ------------------------------------------------------------------ pytest-alembic's four
def test_single_head():
    heads = _script().get_heads()
    assert len(heads) == 1, f"migrations have {len(heads)} heads {heads}; merge them with `alembic merge`"
    assert db.head_revision() == heads[0]


def test_upgrade_from_empty_step_by_step(engine):
    assert db.current_revision(engine) is None
    for rev in _revisions():
        db.upgrade(engine, rev.revision)
        assert db.current_revision(engine) == rev.revision
    assert db.current_revision(engine) == db.head_revision()
    assert set(Base.metadata.tables) <= _tables(engine)
    db.check_schema(engine)  # at head: no error


def test_models_match_migrations(engine, db_url):
    db.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], f"ORM models and migrations differ; write a revision for: {diff}"
    # the real `alembic check` through env.py (no connection handed over: env.py opens its own)
    command.check(db.alembic_config(db_url))


def test_up_down_round_trip(engine):
    for rev in _revisions():
        db.upgrade(engine, rev.revision)
        db.downgrade(engine, "-1")
        assert db.current_revision(engine) == rev.down_revision
        db.upgrade(engine, rev.revision)
        assert db.current_revision(engine) == rev.revision
    db.downgrade(engine, "base")
    assert db.current_revision(engine) is None
    assert _tables(engine) == {"alembic_version"}
    if engine.dialect.name == "postgresql":  # SERIAL sequences must go with their tables
        assert sa.inspect(engine).get_sequence_names() == []


# ------------------------------------------------------------------ a populated database
def test_upgrade_populated_database(registry, data_root):
    reg = registry
    r = register_dataset_version(reg, name="llmbar-natural", source="llmbar", path=data_root / LLMBAR_NATURAL)
    assert r.created and r.version.row_count == 100
    counts = reg.store.counts()
    assert counts == {"sources": 1, "datasets": 1, "dataset_versions": 1}
    engine = reg.store.engine

    # upgrading a database already at head is a no-op that keeps every row
    db.upgrade(engine)
    assert reg.store.counts() == counts
    assert reg.store.get_version("llmbar-natural@1").content_hash == r.version.content_hash

    # each downgrade step runs on real rows; the schema comes back and works again
    revs = _revisions()
    for rev in reversed(revs):
        db.downgrade(engine, "-1")
        assert db.current_revision(engine) == rev.down_revision
    assert _tables(engine) == {"alembic_version"}
    with pytest.raises(SchemaOutOfDate, match="autorater init"):
        db.check_schema(engine)
    db.upgrade(engine)
    db.check_schema(engine)
    assert reg.store.counts() == {"sources": 0, "datasets": 0, "dataset_versions": 0}  # base drops the data
    again = register_dataset_version(reg, name="llmbar-natural", source="llmbar", path=data_root / LLMBAR_NATURAL)
    assert again.created and again.version.version == 1
    assert again.version.content_hash == r.version.content_hash


# ------------------------------------------------------------------ the schema check
def _stamp(engine: sa.Engine, revision: str) -> None:
    """Write ``revision`` into ``alembic_version`` the way a newer/older program would have."""
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM alembic_version"))
        conn.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": revision})


def test_check_schema_refuses_empty_database(engine, settings):
    with pytest.raises(SchemaOutOfDate, match="not initialised; run `autorater init`"):
        db.check_schema(engine)
    with pytest.raises(SchemaOutOfDate, match="autorater init"):
        RegistryContext.open(settings)
    assert _tables(engine) == set()  # refusing must not create anything


def test_check_schema_refuses_unknown_revision(engine, settings):
    db.upgrade(engine)
    _stamp(engine, "ffffffffffff")
    with pytest.raises(SchemaOutOfDate) as err:
        db.check_schema(engine)
    msg = str(err.value)
    # a revision this code does not know was written by newer code: `db upgrade` cannot help
    assert "ffffffffffff" in msg and "newer than this code" in msg and "upgrade the autorater-registry" in msg
    with pytest.raises(SchemaOutOfDate, match="ffffffffffff"):
        RegistryContext.open(settings)


_NEXT_REVISION = '''"""probe: a later revision than the database has

Revision ID: {rev}
Revises: {down}
"""

import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("migration_probe", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("migration_probe")
'''


@pytest.fixture
def newer_code(tmp_path, monkeypatch) -> Iterator[str]:
    """Pretend the code gained a revision after the database was migrated: a copy of
    ``migrations/`` with one more revision on top of today's head. Yields the new head."""
    old_head = db.head_revision()
    migrations = tmp_path / "migrations"
    shutil.copytree(db.MIGRATIONS_DIR, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    new_head = "9999probe"
    (migrations / "versions" / f"{new_head}.py").write_text(_NEXT_REVISION.format(rev=new_head, down=old_head))
    monkeypatch.setattr(db, "MIGRATIONS_DIR", Path(migrations))
    db.head_revision.cache_clear()
    yield new_head
    db.head_revision.cache_clear()


def test_check_schema_refuses_older_revision(engine, settings, newer_code):
    old_head = _revisions()[-1].down_revision
    db.upgrade(engine, old_head)  # the database as today's code leaves it
    assert db.head_revision() == newer_code
    with pytest.raises(SchemaOutOfDate) as err:
        db.check_schema(engine)
    assert f"at revision {old_head}, this code needs {newer_code}" in str(err.value)
    assert "autorater db upgrade" in str(err.value)
    with pytest.raises(SchemaOutOfDate, match="autorater db upgrade"):
        RegistryContext.open(settings)
    db.upgrade(engine)  # what `autorater db upgrade` does
    db.check_schema(engine)
    assert "migration_probe" in _tables(engine)
    db.downgrade(engine, old_head)
    assert "migration_probe" not in _tables(engine)


# ------------------------------------------------------------------ naming convention
def test_every_constraint_and_index_is_named():
    unnamed = [f"{t.name}: {type(c).__name__}({', '.join(col.name for col in c.columns)})"
               for t in Base.metadata.sorted_tables
               for c in [*t.constraints, *t.indexes] if c.name is None]
    assert unnamed == [], f"constraints without a name (naming convention not applied): {unnamed}"


def test_database_names_equal_model_names(engine):
    """The names the migrations create are the ones the models expect, so a later revision can
    drop or alter them by name on both backends."""
    db.upgrade(engine)
    insp = sa.inspect(engine)
    for table in Base.metadata.sorted_tables:
        want_uq = {c.name for c in table.constraints if isinstance(c, sa.UniqueConstraint)}
        want_fk = {c.name for c in table.constraints if isinstance(c, sa.ForeignKeyConstraint)}
        want_ix = {i.name for i in table.indexes}
        assert {u["name"] for u in insp.get_unique_constraints(table.name)} == want_uq, table.name
        assert {f["name"] for f in insp.get_foreign_keys(table.name)} == want_fk, table.name
        assert {i["name"] for i in insp.get_indexes(table.name)} >= want_ix, table.name
        assert insp.get_pk_constraint(table.name)["name"] == table.primary_key.name, table.name
