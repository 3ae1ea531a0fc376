"""The SQL store on a real SQLite file and a real PostgreSQL server: the unit of work commits or
rolls back as a whole, driver errors become the product's error, a registration is one
transaction, claims exclude a second holder, the judgment cache round-trips."""

from __future__ import annotations

import pytest

from registry.adapters.store.abstract import AbstractStore
from registry.adapters.store.sqlalchemy_store import SqlAlchemyStore
from registry.domain.entities import JudgmentRecord, Protocol
from registry.domain.judgments import Verdict
from registry.errors import DatabaseError, InvalidInput, NotFound
from registry.services.datasets import register_dataset_version
from tests.conftest import db_counts, store_files

NATURAL = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/dataset.json"


def _protocol(name: str, version: int = 1, sha: str | None = None) -> Protocol:
    return Protocol(name=name, version=version, sha256=sha or f"{name}-{version}".ljust(64, "0"),
                    config={"orders": [0]})


def _builtin(uow: AbstractStore, kind: str = "random"):
    return uow.add_checkpoint(autorater=kind, kind=kind, uri=f"builtin:{kind}", sha256=kind.ljust(64, "0"),
                              format="builtin")[0]


def test_registry_store_is_the_abstract_interface(registry):
    assert isinstance(registry.store, AbstractStore)


def test_unit_of_work_commits_at_the_end(registry):
    with registry.store.unit_of_work() as uow:
        ckpt = _builtin(uow)
        uow.upsert_protocol(_protocol("probe"))
        uow.add_evaluator(name="random/probe", kind="random", checkpoint=ckpt.ref, protocol="probe@1", config={},
                          sha256="e" * 64)
    assert [e.name for e in registry.store.list_evaluators()] == ["random/probe"]
    assert registry.store.get_evaluator("random/probe").checkpoint == "random@1"


def test_unit_of_work_rolls_back_as_a_whole(registry):
    with pytest.raises(RuntimeError, match="after two writes"):
        with registry.store.unit_of_work() as uow:
            _builtin(uow)
            with registry.store.unit_of_work() as inner:  # a nested unit joins the open one
                inner.upsert_protocol(_protocol("probe"))
            raise RuntimeError("crash after two writes")
    assert registry.store.list_checkpoints() == [] and registry.store.list_protocols() == []


def test_driver_errors_become_database_errors(registry):
    registry.store.upsert_protocol(_protocol("probe", sha="s" * 64))
    with pytest.raises(DatabaseError) as err:
        with registry.store.unit_of_work() as uow:
            _builtin(uow)
            uow.upsert_protocol(_protocol("other", sha="s" * 64))  # protocols.sha256 is unique
    assert err.value.exit_code == 7 and err.value.__cause__ is not None
    assert registry.store.list_checkpoints() == []   # the checkpoint of the same unit is gone too


def test_product_errors_pass_through_and_roll_back(registry):
    with pytest.raises(NotFound, match="did you mean 'probe@1'"):
        with registry.store.unit_of_work() as uow:
            uow.upsert_protocol(_protocol("probe"))
            uow.get_protocol("prob")
    assert registry.store.list_protocols() == []


def test_registration_is_one_transaction(registry, data_root, monkeypatch):
    """A crash after the source, dataset and version rows were written (before the commit)
    leaves none of them, and no file."""
    before_files, before_rows = store_files(registry), db_counts(registry)
    original = SqlAlchemyStore.add_version

    def then_crash(self, **fields):
        original(self, **fields)
        assert self.counts()["dataset_versions"] == before_rows["dataset_versions"] + 1  # written, not committed
        raise RuntimeError("crash before the commit")

    monkeypatch.setattr(SqlAlchemyStore, "add_version", then_crash)
    with pytest.raises(RuntimeError, match="before the commit"):
        register_dataset_version(registry, name="llmbar-natural", source="llmbar", path=data_root / NATURAL)
    assert db_counts(registry) == before_rows == {"sources": 0, "datasets": 0, "dataset_versions": 0}
    assert store_files(registry) == before_files
    monkeypatch.undo()
    r = register_dataset_version(registry, name="llmbar-natural", source="llmbar", path=data_root / NATURAL)
    assert r.created and r.version.ref == "llmbar-natural@1"
    assert db_counts(registry) == {"sources": 1, "datasets": 1, "dataset_versions": 1}
    assert [d.source for d in registry.store.list_datasets()] == ["llmbar"]
    with pytest.raises(InvalidInput, match="is a pairwise dataset"):
        registry.store.latest_version("llmbar-natural", task_type="pointwise")


def test_runs_start_finish_fail_and_abandon(registry, data_root):
    register_dataset_version(registry, name="llmbar-natural", source="llmbar", path=data_root / NATURAL)
    with registry.store.unit_of_work() as uow:
        ckpt = _builtin(uow)
        uow.upsert_protocol(_protocol("probe"))
        uow.add_evaluator(name="random/probe", kind="random", checkpoint=ckpt.ref, protocol="probe@1", config={},
                          sha256="e" * 64)
    store = registry.store
    dead = store.start_run("random/probe", "llmbar-natural", seed=3)
    failed = store.start_run("random/probe", "llmbar-natural@1", seed=0)
    store.fail_run(failed.id, error="RuntimeError: boom", seconds=0.5)
    assert (dead.status, dead.seed, dead.dataset) == ("running", 3, "llmbar-natural@1")
    assert store.abandon_running("random/probe", "llmbar-natural@1", error="abandoned") == [dead.id]
    assert [(r.id, r.status, r.error) for r in store.list_runs(status="failed")] == [
        (failed.id, "failed", "RuntimeError: boom"), (dead.id, "failed", "abandoned")]
    assert store.latest_runs() == []
    assert store.latest_runs(status="failed", datasets=["llmbar-natural@1"])[0].id == failed.id


def test_claims_exclude_a_second_holder(registry):
    other = SqlAlchemyStore(registry.settings.db_url)  # another engine: as another process would
    try:
        with registry.store.claim_pair("random", "llmbar-natural@1") as got:
            assert got
            with other.claim_pair("random", "llmbar-natural@1") as second:
                assert not second
            with other.claim_pair("random", "llmbar-natural@2") as elsewhere:
                assert elsewhere
        with other.claim_pair("random", "llmbar-natural@1") as released:
            assert released
    finally:
        other.close()


def test_judgment_cache_round_trips_and_replaces(registry):
    store = registry.store
    keys = [f"{i:032x}" for i in range(1000)]  # more than one query's worth of hashes
    judged = Verdict(label="A", score=0.5, prob_a=0.75, raw="A", prompt_tokens=3, completion_tokens=1, seconds=0.25)
    store.save_judgments(JudgmentRecord(key="k" * 64, example_hash=h, order=1, sample=0, verdict=judged)
                         for h in keys)
    store.save_judgments([JudgmentRecord(key="k" * 64, example_hash=keys[0], order=1, sample=0,
                                         verdict=Verdict(label=None, parsed=False, raw="?"))])
    found = store.cached_judgments("k" * 64, keys + ["f" * 32], 1, 0)
    assert len(found) == 1000 and store.count_judgments("k" * 64) == 1000
    assert found[keys[1]] == JudgmentRecord(key="k" * 64, example_hash=keys[1], order=1, sample=0, verdict=judged)
    assert (found[keys[0]].verdict.label, found[keys[0]].verdict.parsed) == (None, False)
    assert store.cached_judgments("k" * 64, keys, 0, 0) == {} and store.count_judgments("x" * 64) == 0
