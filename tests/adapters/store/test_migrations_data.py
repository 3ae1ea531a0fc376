"""Migrations with data: every revision down and up on a populated registry, SQLite and PostgreSQL.

The registry is filled once per backend by real work on real data (LLMBar Natural registered from
the catalog and a relabelled second version of it, the heuristic baselines as evaluators, their
runs on both versions, an imported GPT-4 run, a recorded and acknowledged regression, a champion
alias, a safetensors checkpoint with a child, leaderboards read) so that every table holds rows.
Then, with the revisions discovered from the Alembic script directory (a new revision is covered
without editing this file):

1. down one step at a time from head to the second revision: every table the step keeps keeps
   every row, and, unless the revision is a data migration (:data:`DATA_MIGRATIONS`), every value
   of every column it keeps; what a step drops is exactly what the revision created
   (:data:`DROPPED`, and the schema of an empty database walked up);
2. up one step at a time back to head: no table loses or gains a row, no value changes except by a
   data migration;
3. at head the registry answers as before: the leaderboards are equal, every row of every table
   that no walked revision created is equal, a run's judgments come from the cache, and the
   regression that 0004's downgrade dropped is found again;
4. the last step down, to the first revision (base + 1), and back to head keeps the datasets.

On SQLite the table rebuilds of batch operations (0003's downgrade rebuilds ``dataset_versions``)
used to cascade-delete every evaluation run and metric; migrations/env.py now runs them with
foreign-key enforcement off and checks every key before committing (the last test here).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import Script, ScriptDirectory

from registry.adapters.store import db
from registry.config import Settings
from registry.services.app import init_registry
from registry.services.datasets import register_all, register_dataset_version
from registry.services.evaluation import run_evaluation
from registry.services.evaluators import create_evaluator, ensure_baselines, register_checkpoint, set_alias
from registry.services.imports import import_predictions
from registry.services.queries import best_evaluator, leaderboard
from registry.services.regressions import acknowledge, detect_regressions, list_regressions
from tests.conftest import _pg_admin_url
from tests.services.conftest import NATURAL, register_rows, relabelled

pytestmark = pytest.mark.slow

LLMBAR_VANILLA = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/evaluators/GPT-4/Vanilla/result.json"
HEURISTICS = ("random", "longer", "shorter", "always-first")

DROPPED = {
    "0002": "the meta-evaluation tables it creates (autoraters, checkpoints, checkpoint_aliases, protocols, "
            "evaluators, evaluation_runs, metrics, judgments): their rows are lost",
    "0003": "dataset_versions.input_fingerprint: registrations re-hash their input instead of skipping it",
    "0004": "the regressions table: recorded regressions are lost (detect_regressions finds them again)",
    "0006": "the standings tables it creates (standings, run_examples, standing_tests, standing_generations, "
            "standing_rankings): precomputed, rebuilt by its upgrade and by later runs and queries",
    "0007": "standings.changed, the rows' change stamps: its upgrade stamps every row with its task type's "
            "current generation again (a cached ranking then reads every row once)",
}
"""What each revision's downgrade drops, and why that is acceptable: exactly what its upgrade
created (checked against the schema). A revision not listed drops nothing it did not create."""

DATA_MIGRATIONS = {
    "0005": ({"metrics", "regressions"}, "renames metric rows (llmbar_kappa_* <-> kappa_*, accuracy_3way) and "
             "their regressions both ways, and adds or removes a note in coverage rows' extra; row counts "
             "are kept because the registry here has no tie-labelled set (on one, the downgrade deletes the "
             "ReIFE accuracy rows that older code never stored: test_migration_metric_names.py)"),
}
"""Revisions that rewrite values of existing tables (row counts are still checked)."""


# ------------------------------------------------------------------ helpers
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(db.alembic_config("sqlite://"))


def _revisions() -> list[Script]:
    """Every revision, oldest first."""
    return list(reversed(list(_script().walk_revisions())))


def _schema(engine: sa.Engine) -> dict[str, set[str]]:
    insp = sa.inspect(engine)
    return {t: {c["name"] for c in insp.get_columns(t)} for t in insp.get_table_names() if t != "alembic_version"}


def _norm(value):
    if isinstance(value, (dict, list)):  # JSON: a dict on PostgreSQL, text on SQLite
        return json.dumps(value, sort_keys=True)
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.dumps(json.loads(value), sort_keys=True)
        except ValueError:
            pass
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def _snapshot(engine: sa.Engine) -> dict[str, tuple[list[str], list[tuple]]]:
    """Every table's columns and rows."""
    out = {}
    with engine.connect() as conn:
        for table, cols in _schema(engine).items():
            names = sorted(cols)
            rows = conn.execute(sa.text(f'SELECT {", ".join(f"{chr(34)}{c}{chr(34)}" for c in names)} '
                                        f'FROM "{table}"')).all()
            out[table] = (names, [tuple(_norm(v) for v in row) for row in rows])
    return out


def _counts(snap) -> dict[str, int]:
    return {t: len(rows) for t, (_, rows) in snap.items()}


def _rows(snap, table: str, columns: set[str]) -> Counter:
    """The rows of ``table`` projected on ``columns`` (a multiset, order-free)."""
    names, rows = snap[table]
    keep = [i for i, c in enumerate(names) if c in columns]
    return Counter(repr(tuple(row[i] for i in keep)) for row in rows)


def _schema_steps() -> dict[str, dict[str, set[str]]]:
    """The schema after each revision, walked up on an empty SQLite database."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        engine = db.create_engine_for(f"sqlite:///{Path(tmp) / 'schema.db'}")
        try:
            out = {}
            for rev in _revisions():
                db.upgrade(engine, rev.revision)
                out[rev.revision] = _schema(engine)
            return out
        finally:
            engine.dispose()


def _created(schemas, rev: Script) -> tuple[set[str], set[tuple[str, str]]]:
    """Tables and (table, column)s that ``rev``'s upgrade creates."""
    before = schemas.get(rev.down_revision, {}) if rev.down_revision else {}
    after = schemas[rev.revision]
    tables = set(after) - set(before)
    columns = {(t, c) for t in set(after) & set(before) for c in after[t] - before[t]}
    return tables, columns


def _assert_kept(before, after, rev: Script, *, direction: str) -> None:
    """Every table and column in both snapshots kept its rows (and values, unless ``rev`` migrates data)."""
    changed_ok = DATA_MIGRATIONS.get(rev.revision, (set(), ""))[0]
    for table in set(before) & set(after):
        assert len(after[table][1]) == len(before[table][1]), (
            f"{direction} {rev.revision} changed the row count of {table}: "
            f"{len(before[table][1])} -> {len(after[table][1])}")
        if table in changed_ok:
            continue
        cols = set(before[table][0]) & set(after[table][0])
        assert _rows(after, table, cols) == _rows(before, table, cols), (
            f"{direction} {rev.revision} changed values in {table}")


# ------------------------------------------------------------------ the populated registry
def _safetensors_folder(folder: Path, seed: float) -> Path:
    import numpy as np
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    save_file({"head.weight": np.full((2, 4), seed, dtype=np.float32)}, str(folder / "model.safetensors"))
    return folder


def _populate(reg, data_root: Path, work: Path) -> dict:
    result = register_all(reg, data_root, only={"llmbar-natural"})
    assert not result.failed and result.registered
    v1 = reg.store.get_version("llmbar-natural@1")
    rows = json.loads((data_root / NATURAL).read_text())
    v2 = register_rows(reg, "llmbar-natural", relabelled(rows, 30), work / "v2")  # parent: v1
    ensure_baselines(reg, minilm=False)
    runs = {(name, v.ref): run_evaluation(reg, name, v.ref, n_boot=100) for name in HEURISTICS for v in (v1, v2)}
    import_predictions(reg, "llmbar", data_root / LLMBAR_VANILLA, v1.ref, evaluator="gpt-4/llmbar-vanilla",
                       n_boot=50)
    [regression] = detect_regressions(reg, runs[("longer", v2.ref)].id, n_boot=200)
    acknowledge(reg, regression.id, note="relabelled on purpose", by="test")
    set_alias(reg, "longer@1", "champion")
    tiny, _ = register_checkpoint(reg, "tiny-scorer", kind="encoder-scorer",
                                  path=_safetensors_folder(work / "tiny1", 0.5), tags={"trained": False})
    child, _ = register_checkpoint(reg, "tiny-scorer", kind="encoder-scorer",
                                   path=_safetensors_folder(work / "tiny2", 0.25), parent=tiny.ref)
    create_evaluator(reg, checkpoint=child.ref, protocol="score-single-order", name="tiny-scorer")
    boards = {v.ref: leaderboard(reg, v.ref, n_boot=200) for v in (v1, v2)}
    boards["pairwise"] = best_evaluator(reg, task_type="pairwise", n_boot=200)  # a task-type ranking
    return {"v1": v1, "v2": v2, "runs": runs, "regression": regression, "boards": boards}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def populated(request, tmp_path_factory, data_root):
    """A registry filled by real work, once per backend (the walk below runs on it in one test)."""
    home = tmp_path_factory.mktemp(f"populated-{request.param}")
    admin = None
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'registry.db'}"
    else:
        admin = _pg_admin_url()
        if not admin:
            pytest.skip("AUTORATER_TEST_PG_URL not set (`make test` / .ci/run start PostgreSQL and set it)")
        name = f"t_{uuid.uuid4().hex[:12]}"
        admin_engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
        with admin_engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = sa.engine.make_url(admin).set(database=name).render_as_string(hide_password=False)
    settings = Settings.from_env(home=str(home), db_url=url, store=str(home / "store"),
                                 dvc_remote=str(home / "remote"), data_root=str(data_root))
    reg = init_registry(settings)
    started = time.monotonic()
    state = _populate(reg, data_root, home / "work")
    state["populate_s"] = time.monotonic() - started
    yield reg, state
    reg.close()
    if admin:
        with admin_engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


# ------------------------------------------------------------------ the walk
def test_every_revision_down_and_up_keeps_the_data(populated):
    reg, state = populated
    engine = reg.store.engine
    revs = _revisions()
    by_id = {r.revision: r for r in revs}
    head = db.head_revision()
    assert db.current_revision(engine) == head == revs[-1].revision
    schemas = _schema_steps()
    for rev in revs:  # what a downgrade may drop is documented, and is what the upgrade created
        tables, columns = _created(schemas, rev)
        if rev.down_revision and (tables or columns):
            assert rev.revision in DROPPED, (
                f"revision {rev.revision} creates {sorted(tables)} {sorted(columns)}: say in DROPPED what its "
                "downgrade loses and why that is acceptable")

    original = _snapshot(engine)
    empty = sorted(t for t, n in _counts(original).items() if n == 0)
    assert not empty, f"the populated registry leaves tables empty (fill them in _populate): {empty}"

    # 1. down, one step at a time, to the second revision
    walked = [r for r in reversed(revs) if r.down_revision is not None and by_id[r.down_revision].down_revision
              is not None]
    before = original
    for rev in walked:
        db.downgrade(engine, "-1")
        assert db.current_revision(engine) == rev.down_revision
        after = _snapshot(engine)
        tables, columns = _created(schemas, rev)
        assert set(before) - set(after) == tables, f"downgrade of {rev.revision} dropped other tables"
        lost = {(t, c) for t in set(before) & set(after) for c in set(before[t][0]) - set(after[t][0])}
        assert lost == columns, f"downgrade of {rev.revision} dropped other columns: {lost - columns}"
        _assert_kept(before, after, rev, direction="downgrade of")
        before = after

    # 2. up, one step at a time, back to head
    for rev in reversed(walked):
        db.upgrade(engine, rev.revision)
        assert db.current_revision(engine) == rev.revision
        after = _snapshot(engine)
        assert set(before) <= set(after)
        _assert_kept(before, after, rev, direction="upgrade to")
        before = after

    # 3. at head the registry answers as before
    db.check_schema(engine)
    now = _snapshot(engine)
    recreated = set().union(*(_created(schemas, r)[0] for r in walked))
    refilled = set().union(*(_created(schemas, r)[1] for r in walked))
    assert set(now) == set(original)
    for table in set(original) - recreated:
        cols = {c for c in original[table][0] if (table, c) not in refilled}
        assert _rows(now, table, cols) == _rows(original, table, cols), f"{table} differs after the round trip"
    for ref, board in state["boards"].items():
        answer = (best_evaluator(reg, task_type=ref, n_boot=200) if ref == "pairwise"
                  else leaderboard(reg, ref, n_boot=200))
        assert answer == board, f"the ranking of {ref} changed"
    v2 = state["v2"]
    again = run_evaluation(reg, "longer", v2.ref, n_boot=100)
    assert again.n_executed == 0 and again.n_cached == state["runs"][("longer", v2.ref)].n_judgments
    assert list_regressions(reg) == []  # 0004's downgrade dropped them ...
    [found] = detect_regressions(reg, state["runs"][("longer", v2.ref)].id, n_boot=200)  # ... found again
    want = state["regression"]
    assert (found.metric, found.slice, found.delta, found.baseline_run_id) == (
        want.metric, want.slice, want.delta, want.baseline_run_id)

    # 4. the last step down, to the first revision, keeps the datasets; back at head they load
    first, second = revs[0], revs[1]
    before = _snapshot(engine)
    db.downgrade(engine, second.revision)
    db.downgrade(engine, first.revision)
    after = _snapshot(engine)
    assert set(after) == set(schemas[first.revision])
    for table in after:
        cols = set(after[table][0])
        assert _rows(after, table, cols) == _rows(before, table, cols), f"downgrade to {first.revision}: {table}"
    db.upgrade(engine)
    db.check_schema(engine)
    assert reg.store.get_version(v2.ref).content_hash == v2.content_hash
    assert reg.store.get_version(v2.ref).parent_version == 1
    kept = register_dataset_version(reg, name="llmbar-natural", source="llmbar",
                                    path=reg.store.get_version(state["v1"].ref).provenance["path"])
    assert not kept.created
    print(f"\n[{engine.dialect.name}] populated in {state['populate_s']:.1f} s: {_counts(original)}")


# ------------------------------------------------------------------ the foreign-key check
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_migration_that_leaves_a_dangling_key_is_rolled_back(db_url):
    """With enforcement off during migrations, env.py checks every key before the commit: a
    dangling reference (here one planted before the step) fails the step and changes nothing."""
    engine = db.create_engine_for(db_url)
    try:
        db.upgrade(engine)
        head = db.head_revision()
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.exec_driver_sql("INSERT INTO metrics (run_id, name, slice, n, extra) "
                                 "VALUES (424242, 'accuracy', 'all', 1, '{}')")
            conn.commit()
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        tables = set(sa.inspect(engine).get_table_names())
        with pytest.raises(RuntimeError, match=r"foreign-key violation.*metrics"):
            db.downgrade(engine, "-1")
        assert db.current_revision(engine) == head
        assert set(sa.inspect(engine).get_table_names()) == tables
        with engine.connect() as conn:  # the pool hands out connections that enforce keys again
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("SELECT count(*) FROM metrics").scalar() == 1
    finally:
        engine.dispose()
