"""Every catalog dataset of every source adapter, read from the real data, passes its spec's
validation (empty judged responses included: the specs allow ``""`` there)."""

from __future__ import annotations

import pytest

from registry.adapters.sources import SOURCES, get_adapter
from registry.adapters.validation.gx import Rules, validate
from registry.adapters.validation.spec import load_spec
from registry.config import PROJECT_ROOT

ADAPTERS = sorted(name for name in SOURCES.names() if name != "generic")


def test_catalog_covers_many_sources_and_every_task_type():
    defs = {name: get_adapter(name).catalog() for name in ADAPTERS}
    datasets = [d for ds in defs.values() for d in ds]
    assert len(datasets) >= 30
    assert {d.task_type for d in datasets} == {"pairwise", "pointwise", "classification"}
    assert sum(1 for ds in defs.values() if ds) >= 14
    assert len({d.name for d in datasets}) == len(datasets)  # dataset names are unique


@pytest.mark.slow
@pytest.mark.parametrize("source", ADAPTERS)
def test_every_catalog_dataset_validates(source, data_root):
    adapter = get_adapter(source)
    catalog = adapter.catalog()
    assert catalog, f"{source} has no datasets"
    for d in catalog:
        df = adapter.read(data_root / d.path, **d.options)
        spec = load_spec(PROJECT_ROOT / "dataset_specs", d.task_type)
        table, report = validate(df, spec, Rules(labels=d.labels), file=d.path)
        assert report["success"], (d.name, [c for c in report["expectations"] if not c["success"]])
        assert table.num_rows == len(df) > 0, d.name
