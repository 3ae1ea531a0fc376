"""Sorted runs stay in memory while the process has room for them within the memory setting
(issue 12 item 1: no spill when the rows fit): with a setting far above the process's memory, an input
in many chunks is merged from runs that were never spilled, and stored exactly as the whole-table
functions store it; with a setting below it, every run of such an input is spilled (as the tests of
test_bounded_registration.py see with 1 MB)."""

from __future__ import annotations

import dataclasses

import pytest

from registry.services import datasets as svc
from registry.services import ingest as ingest_mod
from tests.services.test_bounded_registration import (  # noqa: F401  (counted: a fixture)
    PANDALM, assert_stored_as_whole, counted, whole_table)


@pytest.fixture
def spills(counted, monkeypatch):
    """Chunks of 64 KB whatever the setting; counts of chunks and spilled runs."""
    monkeypatch.setattr(ingest_mod, "chunk_bytes", lambda memory_mb: ingest_mod.MIN_CHUNK_BYTES)
    return counted


@pytest.mark.parametrize("memory_mb,spilled", [(1 << 20, False), (64, True)])
def test_runs_held_while_they_fit(sqlite_registry, spills, data_root, memory_mb, spilled):
    reg = sqlite_registry
    reg.settings = dataclasses.replace(reg.settings, memory_mb=memory_mb)
    assert ingest_mod.resident_bytes() > 64 * 2**20  # the process alone is above the smaller setting
    path = data_root / PANDALM
    r = svc.register_dataset_version(reg, name="pandalm-test", source="pandalm", path=path)
    assert spills["chunks"] >= 5
    # (a spill still queued when the last chunk is done is called off: that run stays in memory)
    if spilled:
        assert spills["spills"] >= spills["chunks"] - 1, spills
    else:
        assert spills["spills"] == 0, spills
    assert_stored_as_whole(reg, r.version, whole_table(reg, "pandalm", path, "pandalm-test"))
