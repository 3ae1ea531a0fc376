"""Perturbation probes as derived datasets on real LLMBar Natural: lineage recorded, idempotence,
errors that leave the registry unchanged, and robustness of heuristics whose answer is known."""

from __future__ import annotations

import pytest

from registry import api
from registry.errors import InvalidInput, NotFound
from tests.conftest import store_files
from tests.services.conftest import NATURAL


@pytest.fixture(scope="module")
def reg(tmp_path_factory, data_root):
    """LLMBar Natural registered, probes derived, heuristics run on parent and probes (one registry
    for the module: registering and running take seconds)."""
    home = tmp_path_factory.mktemp("probes-home")
    r = api.init(f"sqlite:///{home / 'registry.db'}", home=home, store=home / "store", dvc_remote=home / "remote",
                 data_root=data_root)
    r.register_dataset("llmbar-natural", source="llmbar", path=data_root / NATURAL)
    r.create_evaluator(checkpoint=r.register_checkpoint("longer", kind="longer").entity.ref, name="longer")
    first = r.register_checkpoint("always-first", kind="always-first").entity.ref
    r.create_evaluator(checkpoint=first, name="first-both")
    r.create_evaluator(checkpoint=first, protocol="score-single-order", name="first-single")
    for t in ("swap", "pad-worse"):
        r.derive_dataset(f"natural-{t}", source_ref="llmbar-natural@1", transform=t)
    for e in ("longer", "first-single", "first-both"):
        for d in ("llmbar-natural@1", "natural-swap@1", "natural-pad-worse@1"):
            r.evaluate(e, d, n_boot=200)
    yield r
    r.close()


def _snapshot(r):
    return ([v.ref for d in r.datasets() for v in r.versions(d.name)], store_files(r._ctx))


def test_lineage_recorded_and_rows_kept(reg):
    d = reg.dataset("natural-pad-worse@1")
    parent = reg.dataset("llmbar-natural@1").version
    lineage = d.version.provenance["derived_from"]
    assert lineage["parent"] == "llmbar-natural@1" and lineage["parent_content_hash"] == parent.content_hash
    assert lineage["transform"] == "pad-worse" and lineage["params"] == {"ratio": 1.5, "min_chars": 100}
    assert lineage["seed"] == 0 and lineage["rows_changed"] == 100 and lineage["source"] == "llmbar"
    assert d.source == "derived" and d.version.validation["failed"] == 0
    a, b = reg.load_table("llmbar-natural@1"), reg.load_table("natural-pad-worse@1")
    assert a.column("example_id").to_pylist() == b.column("example_id").to_pylist()
    assert a.column("label").to_pylist() == b.column("label").to_pylist()
    assert a.column("instruction").to_pylist() == b.column("instruction").to_pylist()
    for ra, rb, pa_, pb, y in zip(a.column("response_a").to_pylist(), a.column("response_b").to_pylist(),
                                  b.column("response_a").to_pylist(), b.column("response_b").to_pylist(),
                                  a.column("label").to_pylist(), strict=True):
        worse_old, worse_new = (rb, pb) if y == "A" else (ra, pa_)
        assert worse_new.startswith(worse_old) and len(worse_new) > len(worse_old)
    swapped = reg.load_table("natural-swap@1")
    assert swapped.column("response_a").to_pylist() == a.column("response_b").to_pylist()
    flip = {"A": "B", "B": "A"}
    assert swapped.column("label").to_pylist() == [flip[y] for y in a.column("label").to_pylist()]


def test_derive_is_idempotent_and_new_params_make_a_new_version(reg):
    before = _snapshot(reg)
    again = reg.derive_dataset("natural-swap", source_ref="llmbar-natural@1", transform="swap")
    assert not again.created and again.version.ref == "natural-swap@1"
    assert _snapshot(reg) == before
    other = reg.derive_dataset("natural-pad-worse", source_ref="llmbar-natural", transform="pad-worse",
                               params={"ratio": "2"}, seed=1)
    assert other.created and other.version.ref == "natural-pad-worse@2"
    assert other.version.provenance["derived_from"]["params"]["ratio"] == 2.0
    assert other.to_dict()["lineage"]["seed"] == 1
    assert not reg.derive_dataset("natural-pad-worse", source_ref="llmbar-natural@1", transform="pad-worse",
                                  params={"ratio": 2.0}, seed=1).created


@pytest.mark.parametrize(("name", "kwargs", "error", "message"), [
    ("p", {"source_ref": "llmbar-natural@1", "transform": "shuffle"}, InvalidInput, "unknown probe transform"),
    ("p", {"source_ref": "llmbar-natural@1", "transform": "pad-worse", "params": {"ratio": 0}}, InvalidInput,
     "ratio must be in [1, 100]"),
    ("p", {"source_ref": "llmbar-natural@1", "transform": "swap", "params": {"keep": 0.5}}, InvalidInput,
     "swap has no parameter 'keep'"),
    ("p", {"source_ref": "llmbar-natural@1", "transform": "swap", "seed": -2}, InvalidInput, "seed must be"),
    ("p", {"source_ref": "no-such-set@1", "transform": "swap"}, NotFound, "no-such-set"),
    ("p", {"source_ref": "llmbar-natural@9", "transform": "swap"}, NotFound, "llmbar-natural"),
    ("natural-swap", {"source_ref": "llmbar-natural@1", "transform": "pad-worse"}, InvalidInput,
     "natural-swap holds swap probes of llmbar-natural@1, not pad-worse probes"),
    ("llmbar-natural", {"source_ref": "llmbar-natural@1", "transform": "swap"}, InvalidInput,
     "already exists and is not a probe"),
    ("bad name!", {"source_ref": "llmbar-natural@1", "transform": "swap"}, InvalidInput, "name"),
])
def test_bad_derivations_leave_the_registry_unchanged(reg, name, kwargs, error, message):
    before = _snapshot(reg)
    with pytest.raises(error) as err:
        reg.derive_dataset(name, **kwargs)
    assert message in str(err.value)
    assert _snapshot(reg) == before


def test_non_pairwise_parent_is_refused(tmp_path, data_root):
    r = api.init(f"sqlite:///{tmp_path / 'r.db'}", home=tmp_path, store=tmp_path / "store",
                 dvc_remote=tmp_path / "remote", data_root=data_root)
    try:
        r.register_all(only=["bagel-quality"])
        ref = r.versions("bagel-quality")[0].ref
        before = _snapshot(r)
        with pytest.raises(InvalidInput) as err:
            r.derive_dataset("bagel-swap", source_ref=ref, transform="swap")
        assert "is a pointwise dataset; probes derive from pairwise datasets" in str(err.value)
        assert _snapshot(r) == before
    finally:
        r.close()


def test_longer_collapses_on_pad_worse(reg):
    r = reg.robustness("longer", parent="llmbar-natural@1", probe="natural-pad-worse@1", n_boot=200)
    row = r.rows[0]
    assert r.transform == "pad-worse" and r.metric == "accuracy" and row.n_shared == 100
    assert row.probe_value == 0.0          # the padded worse response is always the longer one
    assert row.drop == pytest.approx(row.parent_value) and row.parent_value > 0.5
    assert row.ci_low > 0 and row.p_value < 0.01
    assert row.parent_value <= row.flip_rate <= 1   # every example it did not get wrong now is wrong


def test_first_inverts_on_swap_and_both_orders_is_immune(reg):
    labels = reg.load_table("llmbar-natural@1").column("label").to_pylist()
    p = labels.count("A") / len(labels)
    r = reg.robustness(["first-single", "first-both"], parent="llmbar-natural@1", probe="natural-swap@1", n_boot=200)
    single, both = r.rows
    assert single.evaluator == "first-single" and both.evaluator == "first-both"
    assert single.parent_value == pytest.approx(p) and single.probe_value == pytest.approx(1 - p)
    assert single.drop == pytest.approx(2 * p - 1) and single.flip_rate == 1.0   # every verdict flips
    assert both.flip_rate == 0.0
    assert both.parent_value == both.probe_value == 0.5 and both.drop == 0 and both.p_value == 1.0


def test_robustness_all_and_missing_runs(reg):
    r = reg.robustness(None, parent="llmbar-natural@1", probe="natural-swap@1", n_boot=100)
    assert [x.evaluator for x in r.rows] == ["first-both", "first-single", "longer"]
    d = r.to_dict()
    assert set(d) >= {"parent", "probe", "metric", "transform", "lineage", "rows", "skipped"}
    assert set(d["rows"][0]) >= {"evaluator", "parent_run", "probe_run", "drop", "ci_low", "ci_high", "p_value"}
    fresh = reg.derive_dataset("natural-pad-worse", source_ref="llmbar-natural@1", transform="pad-worse",
                               seed=9).version.ref  # a version no evaluator has run on
    with pytest.raises(NotFound) as err:
        reg.robustness("longer", parent="llmbar-natural@1", probe=fresh)
    assert f"evaluator longer has no successful run on {fresh}; run " \
           f"`autorater eval run --evaluator longer --dataset {fresh}`" in str(err.value)
    with pytest.raises(NotFound, match="no evaluator has successful runs on both"):
        reg.robustness(None, parent="llmbar-natural@1", probe=fresh)
    with pytest.raises(NotFound):
        reg.robustness("nobody", parent="llmbar-natural@1", probe="natural-swap@1")
    with pytest.raises(InvalidInput, match="same version"):
        reg.robustness("longer", parent="llmbar-natural@1", probe="llmbar-natural@1")
    with pytest.raises(InvalidInput, match="kendall_tau_x"):
        reg.robustness("longer", parent="llmbar-natural@1", probe="natural-swap@1", metric="kendall_tau_x")


@pytest.mark.slow
def test_ties_and_annotator_labels_on_pandalm(tmp_path, data_root):
    """PandaLM's test set has ties and three annotators per pair: swap flips every annotator's label,
    the better/worse transforms leave the tie rows as they were, and robustness reports the drop on
    the changed rows beside the drop on all of them (headline accuracy_3way on a set with ties)."""
    r = api.init(f"sqlite:///{tmp_path / 'r.db'}", home=tmp_path, store=tmp_path / "store",
                 dvc_remote=tmp_path / "remote", data_root=data_root)
    try:
        r.register_all(only=["pandalm-test"])
        parent = r.versions("pandalm-test")[0].ref
        t = r.load_table(parent)
        labels, votes = t.column("label").to_pylist(), t.column("annotator_labels").to_pylist()
        swap = r.load_table(r.derive_dataset("pandalm-swap", source_ref=parent, transform="swap").version.ref)
        flip = {"A": "B", "B": "A", "tie": "tie"}
        assert swap.column("annotator_labels").to_pylist() == [[flip[x] for x in v] for v in votes]
        pad = r.derive_dataset("pandalm-pad", source_ref=parent, transform="pad-worse")
        assert pad.lineage["rows_changed"] == sum(y != "tie" for y in labels) < len(labels)
        padded = r.load_table(pad.version.ref)
        for col in ("response_a", "response_b"):
            old, new = t.column(col).to_pylist(), padded.column(col).to_pylist()
            assert all(o == n for o, n, y in zip(old, new, labels, strict=True) if y == "tie")
        r.create_evaluator(checkpoint=r.register_checkpoint("longer", kind="longer").entity.ref, name="longer")
        for ref in (parent, pad.version.ref):
            r.evaluate("longer", ref, n_boot=50)
        rob = r.robustness("longer", parent=parent, probe=pad.version.ref, n_boot=100)
        (row,) = rob.rows
        assert rob.metric == "accuracy_3way" and row.n_shared == len(labels)
        assert row.changed_drop is not None and row.changed_drop > row.drop > 0
    finally:
        r.close()
