"""Perturbation probes as derived datasets, and a judge's robustness to them (issue 15).

``derive_dataset`` applies a transform of :mod:`registry.domain.probes` to a registered pairwise
version and registers the result through the ordinary registration path (cast, GX validation,
content hash, canonical Parquet, DVC, SQL — :func:`registry.services.ingest.ingest` and
:func:`registry.services.datasets._register_ingested`), with the lineage in the version's
provenance (``provenance["derived_from"]``: parent ``name@version`` and content hash, transform,
parameters, seed, code version). The probe keeps the parent's example ids, so an evaluator's runs on
parent and probe pair up by example id.

``robustness`` gathers each evaluator's latest successful runs on the parent and on the probe and
calls the paired machinery of :mod:`registry.domain.metrics.per_example` (paired bootstrap of the
per-example metric, McNemar where it applies): the drop is parent − probe.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry import __version__
from registry.domain.probes import apply_probe, check_params, check_seed, transform_info
from registry.errors import InvalidInput, NotFound
from registry.results import Derivation, Robustness, RobustnessRow
from registry.services.app import RegistryContext

if TYPE_CHECKING:
    import pandas as pd

    from registry.domain.entities import DatasetVersion

DERIVED = "derived"
"""The ``adapter`` a derived version's provenance names (``dataset list`` shows it as its source)."""


class _DerivedRows:
    """A source adapter in memory: the probe's rows, read once by the ingest."""

    def __init__(self, frame: pd.DataFrame, info: Any) -> None:
        self._frame, self.info = frame, info

    def read(self, path: Path, **options: Any) -> pd.DataFrame:
        frame, self._frame = self._frame, None
        return frame


def lineage_of(version: DatasetVersion) -> dict[str, Any] | None:
    """The lineage of a derived version (``None`` for a version read from a file)."""
    lineage = version.provenance.get("derived_from") if version.provenance else None
    return lineage if isinstance(lineage, dict) else None


def _probe_code_sha256() -> str:
    from registry.domain import probes

    return hashlib.sha256(Path(probes.__file__).read_bytes()).hexdigest()


def _check_name(reg: RegistryContext, name: str, parent: DatasetVersion, transform: str) -> None:
    """``name`` is a new valid dataset name, or an existing dataset of probes of the same parent
    dataset by the same transform (a new version of it)."""
    from registry.domain.names import validate_new_name

    validate_new_name("dataset", name, lambda n: reg.store.latest_version(n) is not None, field="name")
    latest = reg.store.latest_version(name)
    if latest is None:
        return
    lineage = lineage_of(latest)
    if lineage is None:
        raise InvalidInput(f"dataset {name} already exists and is not a probe (its latest version {latest.ref} was "
                           f"read by adapter {latest.provenance.get('adapter')!r}); choose another name",
                           field="name")
    was_parent = str(lineage.get("parent", "")).rpartition("@")[0]
    if was_parent != parent.dataset or lineage.get("transform") != transform:
        raise InvalidInput(f"dataset {name} holds {lineage.get('transform')} probes of {lineage.get('parent')}, not "
                           f"{transform} probes of {parent.dataset}; choose another name", field="name")


def _pairwise_parent(reg: RegistryContext, ref: str) -> DatasetVersion:
    parent = reg.store.get_version(ref)
    if parent.task_type != "pairwise":
        raise InvalidInput(f"{parent.ref} is a {parent.task_type} dataset; probes derive from pairwise datasets "
                           "(two responses and a preference)", field="from")
    return parent


def _root_source(parent: DatasetVersion) -> str | None:
    """The source adapter the parent's rows came from (through any chain of probes)."""
    lineage = lineage_of(parent)
    return lineage.get("source") if lineage else parent.provenance.get("adapter")


def _source_info(source: str | None) -> Any:
    from registry.adapters.sources import get_adapter

    if source is None or source in ("generic", DERIVED):
        return None
    try:
        return get_adapter(source).info
    except Exception:  # noqa: BLE001 - an adapter no longer installed: no source recorded
        return None


def _probe_frame(parent_table, probe) -> pd.DataFrame:
    """The parent's rows with the probe's columns in place of theirs."""
    frame = parent_table.to_pandas()
    frame["response_a"] = list(probe.response_a)
    frame["response_b"] = list(probe.response_b)
    frame["label"] = list(probe.label)
    if probe.annotator_labels is not None:
        frame["annotator_labels"] = probe.annotator_labels
    elif "annotator_labels" in frame:
        frame["annotator_labels"] = [None if v is None else list(v) for v in frame["annotator_labels"]]
    return frame


def derive_dataset(reg: RegistryContext, name: str, *, source_ref: str, transform: str,
                   params: Mapping[str, Any] | None = None, seed: int = 0) -> Derivation:
    """Register ``transform`` (with ``params`` and ``seed``) of pairwise version ``source_ref`` as
    the next version of dataset ``name``; the same derivation again returns the version it made
    (``created`` False). Everything is checked before anything is written: on an error the
    registry is unchanged."""
    from registry.adapters.sources.base import reading_inputs
    from registry.adapters.validation.spec import load_spec
    from registry.services.datasets import _register_ingested, load_table
    from registry.services.ingest import ingest

    info = transform_info(transform)
    resolved = check_params(transform, params)
    seed = check_seed(seed)
    parent = _pairwise_parent(reg, source_ref)
    _check_name(reg, name, parent, transform)
    source = _root_source(parent)
    lineage = {"parent": parent.ref, "parent_content_hash": parent.content_hash, "transform": transform,
               "bias": info.bias, "params": resolved, "seed": seed, "source": source,
               "code_version": __version__, "probe_code_sha256": _probe_code_sha256()}
    fingerprint = hashlib.sha256(json.dumps({"derived_from": lineage}, sort_keys=True).encode()).hexdigest()
    store = reg.store
    known = store.find_version_by_fingerprint(name, fingerprint)
    if known is not None:
        return Derivation(version=known, created=False, lineage=lineage_of(known) or lineage)
    table = load_table(reg, parent.ref)
    votes = table.column("annotator_labels").to_pylist() if "annotator_labels" in table.column_names else None
    if votes is not None and all(v is None for v in votes):
        votes = None
    probe = apply_probe(transform, table.column("response_a").to_pylist(), table.column("response_b").to_pylist(),
                        table.column("label").to_pylist(), params=resolved, seed=seed, annotator_labels=votes)
    lineage |= {"rows_changed": probe.n_changed, "rows": table.num_rows}
    provenance = _derived_provenance(lineage)
    src_info = _source_info(source)
    adapter = _DerivedRows(_probe_frame(table, probe), src_info)
    spec = load_spec(reg.settings.specs_dir, "pairwise")
    path = Path(f"{parent.ref} ({transform})")  # named in validation messages only; nothing is read from it
    with reading_inputs(reg.settings.max_input_mb):
        done = ingest(reg.artifacts, adapter, path, {}, spec=spec, task_type="pairwise", labels=None,
                      max_text_chars=reg.settings.max_text_chars, memory_mb=reg.settings.memory_mb)
    try:
        r = _register_ingested(reg, done, name=name, source=source if src_info is not None else "generic",
                               path=path, opts={}, adapter=adapter, ddef=None, task_type="pairwise", spec=spec,
                               description=f"{transform} probe ({info.bias} bias) of {parent.ref}",
                               report=done.report, fingerprint=fingerprint, provenance=provenance)
    finally:
        done.parquet.unlink(missing_ok=True)
    return Derivation(version=r.version, created=r.created, lineage=lineage_of(r.version) or lineage)


def _derived_provenance(lineage: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd
    import pyarrow

    return {"adapter": DERIVED, "path": None, "options": {}, "derived_from": lineage, "code_version": __version__,
            "python": platform.python_version(),
            "libraries": {"pyarrow": pyarrow.__version__, "pandas": pd.__version__, "numpy": _numpy_version()}}


def _numpy_version() -> str:
    import numpy

    return numpy.__version__


# ----------------------------------------------------------------------------- robustness
def robustness(reg: RegistryContext, evaluators: Sequence[str] | None, *, parent: str, probe: str,
               metric: str | None = None, n_boot: int = 1000, seed: int = 0) -> Robustness:
    """Each evaluator's ``metric`` (default: the parent's headline) on its latest successful runs on
    ``parent`` and on ``probe``, the drop parent − probe on the examples both judged, with a paired
    bootstrap CI and p-value and McNemar's p where the metric is 0/1 correctness. ``evaluators``
    ``None``: every evaluator with runs on both (those with a run on one only are listed as skipped)."""
    from registry.domain.metrics.catalog import require_metric
    from registry.domain.metrics.per_example import mcnemar_test, paired_test, untestable_reason
    from registry.services.queries import _Runs
    from registry.services.scoring import headline_for

    if n_boot < 1:
        raise InvalidInput(f"n_boot must be at least 1, got {n_boot}", field="n_boot")
    pv, qv = reg.store.get_version(parent), reg.store.get_version(probe)
    if pv.ref == qv.ref:
        raise InvalidInput(f"parent and probe are the same version {pv.ref}; name a probe derived from it",
                           field="probe")
    if pv.task_type != qv.task_type:
        raise InvalidInput(f"{pv.ref} is {pv.task_type} and {qv.ref} is {qv.task_type}; a probe has its parent's task "
                           "type", field="probe")
    metric = metric or headline_for(pv)
    require_metric(pv.task_type, metric)
    reason = untestable_reason(metric)
    if reason:
        raise InvalidInput(f"{metric} has no paired test: {reason}", field="metric")
    latest = {(r.evaluator, r.dataset): r for r in reg.store.latest_runs(datasets=[pv.ref, qv.ref])}
    pairs, skipped = _run_pairs(reg, evaluators, latest, pv.ref, qv.ref)
    judged_p, judged_q = _Runs(reg, pv), _Runs(reg, qv)
    changed = _changed_ids(judged_p.table, judged_q.table)
    rows = []
    for name, rp, rq in pairs:
        dp, dq = judged_p.decomposition(rp, metric), judged_q.decomposition(rq, metric)
        t = paired_test(dp, dq, n_boot=n_boot, seed=seed)
        if t is None:
            if evaluators is not None:
                raise InvalidInput(f"{name}'s runs {rp.id} on {pv.ref} and {rq.id} on {qv.ref} share fewer than two "
                                   "judged examples; the probe must keep the parent's example ids", field="probe")
            skipped.append((name, "its runs share fewer than two judged examples"))
            continue
        mc = mcnemar_test(dp, dq)
        rows.append(RobustnessRow(
            evaluator=name, parent_run=rp.id, probe_run=rq.id, n_shared=t.extra["n_shared"],
            parent_value=t.extra["value_a"], probe_value=t.extra["value_b"], drop=t.difference, ci_low=t.ci_low,
            ci_high=t.ci_high, p_value=t.p_value, test=t.extra["test"], mcnemar_p=mc.p_value if mc else None,
            changed_drop=_changed_drop(dp, dq, changed), flip_rate=_flip_rate(dp, dq)))
    if not rows:
        raise NotFound(f"no evaluator has successful runs on both {pv.ref} and {qv.ref}"
                       + (f" ({'; '.join(f'{e}: {why}' for e, why in skipped)})" if skipped else "")
                       + f"; run `autorater eval run --evaluator E --dataset {pv.ref}` and "
                         f"`autorater eval run --evaluator E --dataset {qv.ref}` first")
    lineage = lineage_of(qv)
    return Robustness(parent=pv.ref, probe=qv.ref, metric=metric, lineage=lineage, rows=tuple(rows),
                      transform=lineage.get("transform") if lineage else None, skipped=tuple(skipped))


def _run_pairs(reg: RegistryContext, evaluators: Sequence[str] | None, latest: dict, parent: str,
               probe: str) -> tuple[list, list[tuple[str, str]]]:
    """(evaluator, parent run, probe run) of the evaluators named (each must have both runs: a
    clear error naming the command that makes a missing one) or, ``None``, of every evaluator with
    both; and (evaluator, reason) of those left out."""
    if evaluators is None:
        names = sorted({e for e, _ in latest})
    else:
        names = list(dict.fromkeys(evaluators))
        if not names:
            raise InvalidInput("name at least one evaluator, or ask for all of them", field="evaluator",
                               hint="--evaluator NAME (repeatable) or --all")
        for e in names:
            reg.store.get_evaluator(e)  # NotFound: unknown evaluator
    pairs, skipped = [], []
    for e in names:
        missing = [ref for ref in (parent, probe) if (e, ref) not in latest]
        if not missing:
            pairs.append((e, latest[(e, parent)], latest[(e, probe)]))
        elif evaluators is not None:
            raise NotFound(f"evaluator {e} has no successful run on {' nor '.join(missing)}; run "
                           + " and ".join(f"`autorater eval run --evaluator {e} --dataset {ref}`" for ref in missing))
        else:
            skipped.append((e, f"no successful run on {' nor '.join(missing)}"))
    return pairs, skipped


def _changed_ids(parent_table, probe_table) -> set[str]:
    """Example ids whose row differs between the parent and the probe."""
    from registry.domain.versioning import row_hashes

    before = dict(zip(parent_table.column("example_id").to_pylist(), row_hashes(parent_table).tolist(), strict=True))
    after = zip(probe_table.column("example_id").to_pylist(), row_hashes(probe_table).tolist(), strict=True)
    return {e for e, h in after if e in before and before[e] != h}


def _flip_rate(dp, dq) -> float | None:
    """:func:`~registry.domain.probes.flip_rate` of the per-example values on the shared examples."""
    from registry.domain.metrics.per_example import on_shared
    from registry.domain.probes import flip_rate

    if dp.kind != "mean":
        return None
    a, b = on_shared(dp, dq)
    return flip_rate(a.values(a.columns), b.values(b.columns))


def _changed_drop(dp, dq, changed: set[str]) -> float | None:
    """The drop on the changed examples only, where some but not all shared examples changed."""
    import numpy as np

    from registry.domain.metrics.per_example import on_shared

    a, b = on_shared(dp, dq)
    keep = np.array([i for i, e in enumerate(a.ids) if e in changed], dtype=np.int64)
    if len(keep) == 0 or len(keep) == a.n:
        return None
    return a.take(keep).value() - b.take(keep).value()
