"""Registration leaves the content-hash check's marker of the file it stored (issue 12 item 2), on
real PandaLM data: the first evaluation run (or load) in a later process does not hash the rows
again; a file changed afterwards is still refused; a registration that finds the version already
registered, or the store already holding a file at that path, marks nothing.

The registry is created by one process and used by the next (``autorater init``, then
``autorater dataset register``): the store then hard-links what it tracks, so the stored file is
the one registration wrote and hashed. (A registration in the very process that created the store
copies the file through DVC and marks nothing: the first load checks it, as before.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.errors import IntegrityError

PANDALM = "pandalm-test"


def _settings(home: Path):
    from registry.config import Settings

    return Settings.from_env(home=str(home), db_url=f"sqlite:///{home / 'registry.db'}", store=str(home / "store"),
                             dvc_remote=str(home / "remote"))


def _opened(home: Path):
    from registry.services.app import RegistryContext, init_registry
    from registry.services.evaluators import ensure_baselines

    reg = init_registry(_settings(home))
    ensure_baselines(reg, minilm=False)
    reg.close()
    return RegistryContext.open(_settings(home))


@pytest.fixture
def reg(tmp_path):
    r = _opened(tmp_path / "home")
    yield r
    r.close()


def _register(reg, data_root) -> object:
    from registry.services import datasets as svc

    svc.register_all(reg, data_root, only={PANDALM})
    return reg.store.get_version(PANDALM)


def _markers(reg) -> list[Path]:
    return sorted((reg.artifacts.root / ".verified").glob("*"))


def _refused(*a, **k):
    raise AssertionError("the rows were hashed again")


def _new_process():
    from registry.services.store_maintenance import _VERIFIED

    _VERIFIED.clear()


def test_a_registered_file_is_not_hashed_again_by_the_first_run(reg, data_root, monkeypatch):
    import pyarrow.parquet as pq

    from registry.domain import versioning
    from registry.services import store_maintenance
    from registry.services.datasets import load_table
    from registry.services.evaluation import run_evaluation

    version = _register(reg, data_root)
    markers = _markers(reg)
    assert len(markers) == 1
    assert store_maintenance.marker_live(reg, markers[0], {version.storage_uri})
    _new_process()
    with monkeypatch.context() as m:
        for module, name in ((versioning, "row_hashes"), (store_maintenance, "version_digest")):
            m.setattr(module, name, _refused)
        run = run_evaluation(reg, "random", PANDALM, n_boot=20, chunk_rows=300)
        assert run.n_executed == 1800
        assert run.provenance["streaming"]["seconds"]["check"] < 1.0
        assert load_table(reg, version.ref).num_rows == version.row_count
    assert _markers(reg) == markers               # the runs found the marker: none added

    path = reg.artifacts.path(version.storage_uri)
    table = pq.read_table(path)
    path.chmod(0o644)
    pq.write_table(table.slice(1), path)          # a row fewer: the marker no longer matches the file
    _new_process()
    with pytest.raises(IntegrityError, match="content hash differs"):
        load_table(reg, version.ref)
    _new_process()
    with pytest.raises(IntegrityError, match="content hash differs"):
        run_evaluation(reg, "longer", PANDALM, n_boot=20, chunk_rows=300)


def test_registering_the_same_content_again_marks_nothing(reg, data_root):
    import shutil

    from registry.services import datasets as svc

    first = _register(reg, data_root)
    shutil.rmtree(reg.artifacts.root / ".verified")
    svc.register_all(reg, data_root, only={PANDALM})
    assert reg.store.get_version(PANDALM).ref == first.ref
    assert _markers(reg) == []


def test_a_file_the_store_held_already_is_not_marked(reg, data_root, tmp_path):
    """A file left at the version's path (a rolled-back try, a damaged copy) is kept by placing, not
    replaced by the rows just written: registration cannot vouch for it, the first load checks it."""
    import pyarrow.parquet as pq

    from registry.services.datasets import load_table

    other = _opened(tmp_path / "other")
    try:
        relpath = _register(other, data_root).storage_uri
        table = pq.read_table(other.artifacts.path(relpath))
    finally:
        other.close()
    left = reg.artifacts.path(relpath)
    left.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.slice(1), left)          # not the rows registered
    version = _register(reg, data_root)
    assert version.storage_uri == relpath
    assert _markers(reg) == []
    _new_process()
    with pytest.raises(IntegrityError, match="content hash differs"):
        load_table(reg, version.ref)
