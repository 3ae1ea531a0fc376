"""End to end on the real data: `autorater dataset register-all` registers the whole catalog,
and a second run registers nothing new."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_register_all_twice(cli, registry, data_root):
    first = cli("dataset", "register-all", "--data", data_root, "--json")
    assert first.exit_code == 0, first.stderr
    out = json.loads(first.stdout)
    assert not out["failed"] and not out["skipped"]
    assert len(out["registered"]) >= 30
    datasets = registry.store.list_datasets()
    assert {d.task_type for d in datasets} == {"pairwise", "pointwise", "classification"}
    assert len({d.source for d in datasets}) >= 14
    assert registry.store.counts()["dataset_versions"] == len(out["registered"])
    for d in datasets:
        v = registry.store.get_version(d.name)
        assert v.validation["success"] and v.row_count == v.statistics["rows"] > 0

    second = json.loads(cli("dataset", "register-all", "--json").stdout)
    assert second["registered"] == [] and len(second["unchanged"]) == len(out["registered"])
    assert registry.store.counts()["dataset_versions"] == len(out["registered"])


def test_register_llmbar_catalog_on_both_backends(registry, cli, data_root):
    """The LLMBar part of the catalog on SQLite and PostgreSQL alike."""
    out = json.loads(cli("dataset", "register-all", "--only", "llmbar", "--json").stdout)
    assert len(out["registered"]) == 8 and not out["failed"]
    assert sorted(d.name for d in registry.store.list_datasets()) == sorted(
        r.split("@")[0] for r in out["registered"])
    again = json.loads(cli("dataset", "register-all", "--only", "llmbar", "--json").stdout)
    assert again["registered"] == [] and len(again["unchanged"]) == 8
