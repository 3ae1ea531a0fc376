"""Juries of judges (issue 15): an evaluator computed from its members' stored judgments.

* :func:`create_jury` — an evaluator of kind ``jury`` under the ``jury`` protocol whose config records
  the members (names and hashes), the combiner, the folds and the seed; its hash changes when any does.
* :func:`run_jury` — what ``eval run`` does with a jury (dispatched from
  :func:`registry.services.evaluation.run_evaluation`): each member's latest succeeded run on the
  dataset version (a runnable member without one is run first; an external one must be imported),
  combined by :mod:`registry.domain.jury` on the examples every member judged, in the orders every
  member judged (pairwise with every combiner, classification by majority); the predictions are stored per order and scored through the normal path, so the
  run appears in leaderboards, ``best``, standings and the web app. Cost and time are the members'
  sums: tokens and seconds per example, ``price_per_1000`` when every member's is known (a local
  member without a price counts $0). The same member runs and config give the existing run back.
* :func:`analyze_jury` — ``analyze jury``: the best subset of candidate evaluators under a cost budget,
  with its out-of-fold accuracy, bootstrap CI and the paired test against the best single candidate.
* :func:`store_derived_run` — stores a run computed from other runs (a predictions table and its
  provenance): the writer a cascade or any other derived evaluator can reuse.
* :func:`run_derived` — the frame shared by juries and cascades (:mod:`registry.services.cascade`):
  member runs, idempotency key and claim, the members gathered, then the evaluator's own computation
  and :func:`store_derived_run`.

Only the gathering is here; the combination math lives in :mod:`registry.domain.jury`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from registry.domain import jury as J
from registry.domain.entities import EvaluationRun, Evaluator, MetricRecord
from registry.domain.judgments import FAIL
from registry.errors import InvalidInput, NotFound
from registry.hashing import sha256_json
from registry.services.app import RegistryContext

JURY_KIND = "jury"
JURY_PROTOCOL = "jury"
PAIRWISE_CLASSES = ("A", "B", "tie")
"""Pairwise verdicts in code order (A=0, B=1, tie=2; :mod:`registry.domain.judgments`)."""


# ----------------------------------------------------------------------------- creating
def _member_task_types(reg: RegistryContext, ev: Evaluator) -> set[str]:
    """The task types member ``ev`` can give verdicts on: its plugin's, or (an imported evaluator)
    those of the datasets it has runs on."""
    from registry.adapters.evaluators import EVALUATORS

    if ev.kind in EVALUATORS:
        return set(EVALUATORS.get(ev.kind).task_types)
    return {reg.store.get_version(r.dataset).task_type for r in reg.store.latest_runs(evaluator=ev.name)}


def resolve_members(reg: RegistryContext, members: Sequence[str], *, folds: int, seed: int,
                    kind: str) -> list[Evaluator]:
    """The member evaluators of a new ``kind`` (jury, cascade) evaluator, with its folds and seed checked.
    Errors: fewer than two folds, a seed that is no integer, fewer than two members, a member named
    twice, an unknown one (with "did you mean"), one of the same kind."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise InvalidInput(f"cross-fitting needs an integer of at least 2 folds, got {folds!r}", field="folds")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidInput(f"the seed must be an integer, got {seed!r}", field="seed")
    names = [str(m).strip() for m in members if str(m).strip()]
    if len(names) < 2:
        raise InvalidInput(f"a {kind} needs at least two member evaluators, got {names}", field=kind)
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InvalidInput(f"member(s) named twice: {', '.join(twice)}", field=kind)
    known = [e.name for e in reg.store.list_evaluators()]
    evs = []
    for n in names:
        if n not in known:
            raise NotFound.named("evaluator", n, known)
        ev = reg.store.get_evaluator(n)
        if ev.kind == kind:
            raise InvalidInput(f"member {n!r} is itself a {kind}; list its members instead", field=kind)
        evs.append(ev)
    return evs


def create_jury(reg: RegistryContext, *, members: Sequence[str], combine: str = "majority",
                folds: int = J.DEFAULT_FOLDS, seed: int = 0, name: str | None = None) -> tuple[Evaluator, bool]:
    """An evaluator of kind ``jury`` over ``members`` (idempotent on its hash; module docstring).
    Errors: an unknown member, fewer than two, a member named twice or itself a jury, an unknown
    combiner, fewer than two folds, members with no task type in common (or not pairwise)."""
    from registry.services.evaluators import create_evaluator

    if combine not in J.COMBINERS:
        raise InvalidInput(f"unknown combiner {combine!r}; choose from {', '.join(J.COMBINERS)}", field="combine")
    evs = resolve_members(reg, members, folds=folds, seed=seed, kind=JURY_KIND)
    J.jury_task_types({ev.name: _member_task_types(reg, ev) for ev in evs}, combine)
    config = {"members": [{"name": ev.name, "sha256": ev.sha256} for ev in evs], "combine": combine,
              "folds": folds, "seed": seed}
    default = f"jury-{combine}/{sha256_json(config)[:10]}"
    return create_evaluator(reg, checkpoint=None, protocol=JURY_PROTOCOL, name=name or default, config=config,
                            kind=JURY_KIND)


# ----------------------------------------------------------------------------- members' verdicts
@dataclass(frozen=True)
class MemberRuns:
    """Members' aligned verdicts on the examples all of them judged (in the orders all of them judged)."""

    names: tuple[str, ...]
    runs: tuple[EvaluationRun, ...]
    rows: np.ndarray
    """Dataset rows of the common examples."""
    orders: tuple[int, ...]
    classes: tuple[str, ...]
    """The verdicts in code order: :data:`PAIRWISE_CLASSES`, or the classification labels."""
    verdicts: np.ndarray
    """(members, orders, examples) int8 codes (FAIL −1: no verdict)."""
    prob_a: np.ndarray
    """(members, orders, examples) float64, NaN where a member gave none."""
    labels: np.ndarray
    """(examples,) int8 codes of the human labels."""
    costs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    """Per member: (prompt tokens, completion tokens, seconds) per common example, all orders and samples."""


def _per_example_costs(table: pa.Table, predictions: pa.Table, rows: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from registry.services.scoring import PredictionArrays

    pos = PredictionArrays.from_predictions(table, predictions).pos
    known = pos >= 0
    out = []
    for col in ("prompt_tokens", "completion_tokens", "seconds"):
        values = np.asarray(predictions.column(col).cast(pa.float64()).fill_null(0.0)
                            .to_numpy(zero_copy_only=False), dtype=np.float64)
        out.append(np.bincount(pos[known], weights=values[known], minlength=table.num_rows)[rows])
    return out[0], out[1], out[2]


def gather_members(reg: RegistryContext, version, runs: Sequence[EvaluationRun], table: pa.Table | None = None
                   ) -> MemberRuns:
    """The members' verdicts of ``runs`` (one per member, all on ``version``), aligned on the examples
    every run judged in every order all of them judged."""
    from registry.services.datasets import load_table
    from registry.services.evaluation import load_predictions, task_context
    from registry.services.scoring import align

    table = load_table(reg, version.ref) if table is None else table
    classes = PAIRWISE_CLASSES if version.task_type == "pairwise" else tuple(task_context(version).labels or ())
    index = {c: i for i, c in enumerate(classes)}

    def encode(values) -> np.ndarray:
        return np.array([index.get(v, FAIL) if v is not None else FAIL for v in values], dtype=np.int8)

    preds = [load_predictions(reg, r) for r in runs]
    aligned = [align(table, p) for p in preds]
    member_orders = [sorted(set(np.unique(p.column("order").to_numpy(zero_copy_only=False)).tolist())) for p in preds]
    orders = sorted(set.intersection(*(set(o) for o in member_orders)))
    if not orders:
        shown = ", ".join(f"{r.evaluator}: {o}" for r, o in zip(runs, member_orders))
        raise InvalidInput(f"the members judged no order in common on {version.ref} ({shown})", field="jury")
    rows = aligned[0].rows
    for al in aligned[1:]:
        rows = np.intersect1d(rows, al.rows)
    if len(rows) == 0:
        raise InvalidInput(f"the members judged no example of {version.ref} in common", field="jury")
    n_m, n_o = len(runs), len(orders)
    verdicts = np.full((n_m, n_o, len(rows)), FAIL, dtype=np.int8)
    prob = np.full((n_m, n_o, len(rows)), np.nan)
    for m, (al, mo) in enumerate(zip(aligned, member_orders)):
        at = np.searchsorted(al.rows, rows)
        for j, o in enumerate(orders):
            k = mo.index(o)
            verdicts[m, j] = encode(np.asarray(al.verdict[k], dtype=object)[at].tolist())
            prob[m, j] = np.asarray(al.prob_a[k], dtype=np.float64)[at]
    labels = encode(np.asarray(table.column("label").to_pylist(), dtype=object)[rows].tolist())
    if (labels == FAIL).any():
        raise InvalidInput(f"{int((labels == FAIL).sum())} example(s) of {version.ref} have no label of "
                           f"{list(classes)}", field="label")
    costs = {r.evaluator: _per_example_costs(table, p, rows) for r, p in zip(runs, preds)}
    return MemberRuns(names=tuple(r.evaluator for r in runs), runs=tuple(runs), rows=rows, orders=tuple(orders),
                      classes=classes, verdicts=verdicts, prob_a=prob, labels=labels, costs=costs)


def member_price(reg: RegistryContext, run: EvaluationRun, ev: Evaluator | None = None) -> float | None:
    """Dollars per 1000 examples of a member's run: its ``price_per_1000`` metric, $0 for a local
    evaluator without a price, else unknown (None) — the rule of ``best --max-cost-per-1000``."""
    from registry.services.queries import known_price_per_1k

    ev = ev or reg.store.get_evaluator(run.evaluator)
    m = run.metric("price_per_1000")
    return known_price_per_1k(ev, m.value if m else None)


def member_runs(reg: RegistryContext, ev: Evaluator, version, *, seed: int, n_boot: int) -> list[EvaluationRun]:
    """Each member's latest succeeded run on ``version``; a runnable member without one is run now."""
    from registry.adapters.evaluators import EVALUATORS
    from registry.services.evaluation import run_evaluation

    found: list[tuple[str, EvaluationRun | None]] = []
    for member in ev.config.get("members") or []:  # every member checked before any is run
        name = member["name"]
        try:
            m_ev = reg.store.get_evaluator(name)
        except NotFound:
            raise NotFound(f"{ev.kind} {ev.name!r}: its member {name!r} no longer exists") from None
        if m_ev.sha256 != member.get("sha256"):
            raise InvalidInput(f"{ev.kind} {ev.name!r}: member {name!r} is not the evaluator the {ev.kind} was "
                               f"created with (hash {str(member.get('sha256'))[:12]} → {m_ev.sha256[:12]}); create the "
                               f"{ev.kind} again", field=ev.kind)
        runs = reg.store.list_runs(dataset=version.ref, evaluator=name, status="succeeded", limit=1)
        if not runs and m_ev.kind not in EVALUATORS:
            raise InvalidInput(f"{ev.kind} member {name!r} ({m_ev.kind}) has no run on {version.ref} and cannot be run "
                               f"here: import its predictions first (`autorater eval import … --dataset "
                               f"{version.ref} --evaluator {name}`)", field=ev.kind)
        found.append((name, runs[0] if runs else None))
    return [run if run is not None else run_evaluation(reg, name, version.ref, seed=seed, n_boot=n_boot)
            for name, run in found]


# ----------------------------------------------------------------------------- writing a derived run
def store_derived_run(reg: RegistryContext, *, evaluator: Evaluator, version, predictions: pa.Table,
                      provenance: dict[str, Any], seed: int, n_boot: int, seconds: float,
                      extra_metrics: Sequence[MetricRecord] = (), cost_usd: float | None = None,
                      slice_by: Sequence[str] | None = None, min_slice_size: int = 10) -> EvaluationRun:
    """Store a run computed from other runs (no judgments executed): its predictions as
    content-addressed Parquet, its metrics through :func:`registry.services.scoring.compute_metrics`
    (plus ``extra_metrics``, replacing same-named ones), the run row, its standings — one transaction."""
    import pyarrow.compute as pc

    from registry.services.datasets import load_table
    from registry.services.evaluation import _store_predictions, task_context
    from registry.services.scoring import compute_metrics

    table = load_table(reg, version.ref)
    uri, digest = _store_predictions(reg, predictions)
    metrics = compute_metrics(version.task_type, table, predictions, ctx=task_context(version), seed=seed,
                              n_boot=n_boot, slice_by=list(slice_by) if slice_by else None,
                              min_slice_size=min_slice_size)
    replaced = {(m.name, m.slice) for m in extra_metrics}
    metrics[:] = [m for m in metrics if (m.name, m.slice) not in replaced] + list(extra_metrics)
    n_examples = len(set(predictions.column("example_id").to_pylist()))
    tokens = [int(pc.sum(predictions.column(c)).as_py() or 0) for c in ("prompt_tokens", "completion_tokens")]
    store = reg.store
    with store.unit_of_work() as uow:
        run_id = uow.start_run(evaluator.name, version.ref, seed=seed).id
        uow.finish_run(run_id, seconds=seconds, n_examples=n_examples, n_judgments=predictions.num_rows, n_executed=0,
                       n_cached=0, prompt_tokens=tokens[0], completion_tokens=tokens[1], cost_usd=cost_usd,
                       predictions_uri=uri, predictions_sha256=digest, provenance=provenance)
        uow.record_metrics(run_id, metrics)
    return store.get_run(run_id)


# ----------------------------------------------------------------------------- running
def derived_predictions(version_table: pa.Table, members: MemberRuns, verdicts: np.ndarray,
                        prob_a: np.ndarray | None, costs: tuple[np.ndarray, np.ndarray, np.ndarray],
                        raw: Sequence[list[str]]) -> pa.Table:
    """The predictions table of a run derived from ``members``: per order the ``verdicts`` codes
    ``(orders, examples)`` (FAIL −1: none) and ``prob_a``; the per-example (prompt tokens, completion
    tokens, seconds) ``costs`` on the first order's row; ``raw[j]``: order ``j``'s raw text per example."""
    from registry.services.evaluation import PREDICTION_SCHEMA

    names = np.array([*members.classes, None], dtype=object)  # code → verdict (FAIL −1 → the last: None)
    ids = np.asarray(version_table.column("example_id").to_pylist(), dtype=object)[members.rows]
    n = len(members.rows)
    cols: dict[str, list] = {k: [] for k in PREDICTION_SCHEMA.names}
    for j, o in enumerate(members.orders):
        first = j == 0  # the per-example costs (all orders) sit on the first order's row
        cols["example_id"] += ids.tolist()
        cols["order"] += [o] * n
        cols["sample"] += [0] * n
        cols["verdict"] += names[verdicts[j]].tolist()
        cols["score"] += [None] * n
        cols["prob_a"] += ([None] * n if prob_a is None else prob_a[j].tolist())
        cols["parsed"] += (verdicts[j] != FAIL).tolist()
        cols["raw"] += raw[j]
        cols["prompt_tokens"] += (costs[0].astype(np.int64) if first else np.zeros(n, np.int64)).tolist()
        cols["completion_tokens"] += (costs[1].astype(np.int64) if first else np.zeros(n, np.int64)).tolist()
        cols["seconds"] += (costs[2] if first else np.zeros(n)).tolist()
    return pa.Table.from_pydict(cols, schema=PREDICTION_SCHEMA)


def _jury_predictions(version_table: pa.Table, members: MemberRuns, result: J.JuryVerdicts) -> pa.Table:
    import json

    names = np.array([*members.classes, None], dtype=object)
    raw = [[json.dumps({"votes": dict(zip(members.names, names[members.verdicts[:, j, i]].tolist()))},
                       sort_keys=True) for i in range(len(members.rows))] for j in range(len(members.orders))]
    costs = tuple(sum(c[x] for c in members.costs.values()) for x in range(3))
    return derived_predictions(version_table, members, result.verdicts, result.prob_a, costs, raw)


def _summed_price(reg: RegistryContext, runs: Sequence[EvaluationRun], n: int, shares: Sequence[float] | None = None,
                  rule: str = "sum of the members' price_per_1000 (CI bounds summed)"
                  ) -> tuple[MetricRecord | None, float | None]:
    """A derived run's ``price_per_1000`` when every member's is known: Σ share × the member's price
    (CI bounds likewise; ``shares``: of the examples each member judged, default all), and its cost in
    dollars (the price × examples)."""
    parts = []
    for r in runs:
        price = member_price(reg, r)
        if price is None:
            return None, None
        m = r.metric("price_per_1000")
        lo = m.ci_low if m is not None and m.ci_low is not None else price
        hi = m.ci_high if m is not None and m.ci_high is not None else price
        parts.append((price, lo, hi))
    w = np.ones(len(parts)) if shares is None else np.asarray(shares, dtype=np.float64)
    total, lo, hi = (float(np.dot(w, [p[i] for p in parts])) for i in range(3))
    record = MetricRecord(name="price_per_1000", value=total, ci_low=lo, ci_high=hi, n=n,
                          extra={"rule": rule, "derived": True})
    return record, total * n / 1000.0


@dataclass(frozen=True)
class Derived:
    """What a derived evaluator (jury, cascade) computed from its members' runs, for :func:`run_derived`."""

    predictions: pa.Table
    provenance: dict[str, Any]
    """Its own provenance fields (:func:`run_derived` adds the common ones)."""
    seconds: float
    price: MetricRecord | None = None
    cost_usd: float | None = None


def run_derived(reg: RegistryContext, ev: Evaluator, version, compute, *, seed: int, n_boot: int,
                slice_by: Sequence[str] | None, min_slice_size: int) -> EvaluationRun:
    """The frame of a run derived from its members' runs: the members' runs (:func:`member_runs`), an
    idempotency key (provenance ``<kind>_key``: the evaluator's hash, the member runs, the dataset content,
    the scoring settings) under the pair's claim, the members gathered (:func:`gather_members`), then
    ``compute(table, members) -> Derived`` and :func:`store_derived_run`."""
    from registry.services.claims import abandon_running, claim
    from registry.services.datasets import load_table
    from registry.services.evaluation import code_revision

    t0 = time.perf_counter()
    runs = member_runs(reg, ev, version, seed=seed, n_boot=n_boot)
    slicing = {"slice_by": list(slice_by) if slice_by is not None else None, "min_slice_size": min_slice_size}
    key = sha256_json({ev.kind: ev.sha256, "member_runs": [r.id for r in runs], "dataset": version.content_hash,
                       "seed": seed, "n_boot": n_boot, "slicing": slicing})
    with claim(reg, ev.name, version.ref, wait=None):
        abandon_running(reg, ev.name, version.ref)
        existing = reg.store.find_run_by_provenance(ev.name, version.ref, f"{ev.kind}_key", key)
        if existing is not None:
            return existing
        table = load_table(reg, version.ref)
        members = gather_members(reg, version, runs, table)
        out = compute(table, members)
        provenance = {"evaluator_sha256": ev.sha256, "dataset_sha256": version.content_hash, "protocol": ev.protocol,
                      f"{ev.kind}_key": key, "member_runs": {r.evaluator: r.id for r in runs}, **out.provenance,
                      "orders": list(members.orders), "n_examples_common": len(members.rows),
                      "n_examples_dataset": version.row_count, "n_boot": n_boot, "slicing": slicing,
                      "code_revision": code_revision(), "combine_seconds": time.perf_counter() - t0}
        return store_derived_run(reg, evaluator=ev, version=version, predictions=out.predictions,
                                 provenance=provenance, seed=seed, n_boot=n_boot, seconds=out.seconds,
                                 extra_metrics=[out.price] if out.price is not None else [], cost_usd=out.cost_usd,
                                 slice_by=slice_by, min_slice_size=min_slice_size)


def run_jury(reg: RegistryContext, ev: Evaluator, version, *, seed: int = 0, n_boot: int = 1000,
             slice_by: Sequence[str] | None = None, min_slice_size: int = 10) -> EvaluationRun:
    """Run jury ``ev`` on dataset version ``version`` (module docstring); idempotent on the member
    runs, the jury's hash, the dataset content and the scoring settings."""
    try:
        J.check_combinable([version.task_type], ev.config.get("combine", "majority"))
    except InvalidInput as exc:
        raise InvalidInput(f"jury {ev.name!r} cannot judge {version.ref}: {exc.detail}", field=exc.field) from None
    cfg = ev.config

    def compute(table: pa.Table, members: MemberRuns) -> Derived:
        result = J.combine_verdicts(members.verdicts, combine=cfg["combine"], labels=members.labels,
                                    prob_a=members.prob_a, folds=int(cfg.get("folds", J.DEFAULT_FOLDS)),
                                    seed=int(cfg.get("seed", 0)),
                                    n_classes=None if version.task_type == "pairwise" else len(members.classes))
        price, cost = _summed_price(reg, members.runs, len(members.rows))
        provenance = {"combine": result.combine, "folds": result.k, "fold_seed": int(cfg.get("seed", 0)),
                      "uses_confidences": result.uses_confidences, "notes": list(result.notes)}
        if result.weights is not None:
            provenance["weights"] = {n: w for n, w in zip(members.names, result.weights.mean(axis=0).tolist())}
        return Derived(_jury_predictions(table, members, result), provenance,
                       seconds=float(sum(r.seconds or 0.0 for r in members.runs)), price=price, cost_usd=cost)

    return run_derived(reg, ev, version, compute, seed=seed, n_boot=n_boot, slice_by=slice_by,
                       min_slice_size=min_slice_size)


# ----------------------------------------------------------------------------- subset search
def _percentile_ci(boot, credit: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(boot.means(credit), [2.5, 97.5])
    return float(lo), float(hi)


def analyze_jury(reg: RegistryContext, dataset: str, *, budget: float | None = None,
                 members: Sequence[str] | None = None, combine: str = "majority", max_size: int = 5,
                 folds: int = J.DEFAULT_FOLDS, seed: int = 0, n_boot: int = 1000, top: int = 5):
    """The best jury of the candidates on ``dataset`` under a cost ``budget`` (dollars per 1000
    examples; see :class:`registry.results.JuryAnalysis` for what is reported and how unknown costs count).

    Candidates: every non-jury evaluator with a succeeded run on the version (or the ``members``
    named), their latest runs, on the examples all of them judged; at most
    :data:`~registry.domain.jury.SEARCH_MAX_CANDIDATES` of them (the most accurate alone) enter the
    exhaustive search over juries of 2..``max_size`` members (odd sizes for ``majority``)."""
    from registry.domain.metrics import Bootstrap, paired_bootstrap
    from registry.results import JuryAnalysis, JuryCandidate, JuryExclusion, JurySubset

    if combine not in J.COMBINERS:
        raise InvalidInput(f"unknown combiner {combine!r}; choose from {', '.join(J.COMBINERS)}", field="combine")
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 2:
        raise InvalidInput(f"a jury has at least 2 members; --max-size {max_size!r}", field="max_size")
    if budget is not None and not (np.isfinite(budget) and budget >= 0):
        raise InvalidInput(f"the budget must be a finite number of dollars per 1000 examples ≥ 0, got {budget}",
                           field="budget")
    version = reg.store.get_version(dataset)
    if version.task_type != "pairwise":
        raise InvalidInput(f"juries combine pairwise verdicts; {version.ref} is {version.task_type}", field="dataset")
    evaluators = {e.name: e for e in reg.store.list_evaluators()}
    latest = {r.evaluator: r for r in reg.store.latest_runs(datasets=[version.ref])}
    if members:
        for name in members:
            if name not in evaluators:
                raise NotFound.named("evaluator", name, evaluators)
            if name not in latest:
                raise InvalidInput(f"candidate {name!r} has no succeeded run on {version.ref}; run it (or import "
                                   f"its predictions) first", field="candidates")
        names = list(dict.fromkeys(members))
    else:
        names = sorted(n for n in latest if evaluators[n].kind != JURY_KIND)
    excluded: list[JuryExclusion] = []
    names_in, prices = [], {}
    for n in names:
        if evaluators[n].kind == JURY_KIND:
            excluded.append(JuryExclusion(n, "a jury itself: its members are candidates"))
            continue
        price = member_price(reg, latest[n], evaluators[n])
        if budget is not None and price is None:
            excluded.append(JuryExclusion(n, "cost unknown (no price_per_1000; imported predictions carry none): "
                                             "left out under a budget"))
        elif budget is not None and price > budget:
            excluded.append(JuryExclusion(n, f"alone costs ${price:g} per 1000, over the budget"))
        else:
            names_in.append(n)
            prices[n] = price
    if len(names_in) < 2:
        raise InvalidInput(f"{len(names_in)} candidate(s) on {version.ref} within the budget; a jury needs at least 2"
                           + (f" (left out: {', '.join(e.evaluator for e in excluded)})" if excluded else ""),
                           field="budget" if budget is not None else "candidates")
    gathered = gather_members(reg, version, [latest[n] for n in names_in])
    n = len(gathered.rows)
    if combine in J.FITTED:
        J.fold_assignment(n, folds, seed)  # too few examples for the folds: that error first
    alone = np.stack([J.example_credit(gathered.labels, gathered.verdicts[m]) for m in range(len(names_in))])
    order = sorted(range(len(names_in)), key=lambda m: (-alone[m].mean(), names_in[m]))
    notes = []
    if len(order) > J.SEARCH_MAX_CANDIDATES:
        dropped = [names_in[m] for m in order[J.SEARCH_MAX_CANDIDATES:]]
        excluded += [JuryExclusion(d, f"not among the {J.SEARCH_MAX_CANDIDATES} most accurate candidates searched")
                     for d in dropped]
        order = order[:J.SEARCH_MAX_CANDIDATES]
    pool = [names_in[m] for m in order]
    costs = [prices[p] for p in pool]
    subsets = J.candidate_subsets(costs, max_size=max_size, combine=combine, budget=budget)
    if not subsets:
        raise InvalidInput(f"no {combine} jury of 2..{max_size} of the {len(pool)} candidates fits"
                           + (f" the budget of ${budget:g} per 1000" if budget is not None else "")
                           + (" (majority juries have an odd size, at least 3)" if combine == "majority" else ""),
                           field="budget" if budget is not None else "max_size")
    v, p = gathered.verdicts[order], gathered.prob_a[order]
    credits = J.subset_credits(v, gathered.labels, subsets, combine=combine, prob_a=p, folds=folds, seed=seed)
    boot = Bootstrap.draw(n, n_boot, seed)

    def subset_cost(subset) -> float | None:
        c = [costs[i] for i in subset]
        return None if any(x is None for x in c) else float(sum(c))

    ranked = sorted(range(len(subsets)), key=lambda s: (-credits[s].mean(), subset_cost(subsets[s]) or 0.0,
                                                        len(subsets[s]), subsets[s]))

    def as_subset(s: int) -> JurySubset:
        lo, hi = _percentile_ci(boot, credits[s])
        return JurySubset(members=tuple(pool[i] for i in subsets[s]), accuracy=float(credits[s].mean()),
                          ci_low=lo, ci_high=hi, price_per_1000=subset_cost(subsets[s]))

    single_alone = alone[order]
    candidates = []
    for i, name in enumerate(pool):
        lo, hi = _percentile_ci(boot, single_alone[i])
        candidates.append(JuryCandidate(evaluator=name, run=latest[name].id, accuracy=float(single_alone[i].mean()),
                                        ci_low=lo, ci_high=hi, price_per_1000=costs[i]))
    best_single = candidates[0]  # the pool is sorted by accuracy alone
    best = as_subset(ranked[0])
    test = paired_bootstrap(credits[ranked[0]], single_alone[0], boot=boot, name="accuracy (jury − best single)")
    if n < version.row_count:
        notes.append(f"{n} of the {version.row_count} examples were judged by every candidate; all figures are on them")
    fitted = f"out-of-fold ({folds} folds)" if combine in J.FITTED else "unfitted"
    notes.append(f"each jury's verdicts are {fitted}, but the best of {len(subsets)} juries is chosen on the same "
                 "examples: its accuracy is optimistic (selection)")
    if combine == "stacked" and np.isnan(p).all():
        notes.append("stacked on the candidates' verdicts only: none has confidences (prob_a)")
    if budget is not None and any(c is None for c in prices.values()):
        notes.append("candidates of unknown cost are left out under a budget")
    return JuryAnalysis(dataset=version.ref, combine=combine, budget=budget, folds=folds, seed=seed, n_examples=n,
                        orders=gathered.orders, candidates=tuple(candidates), excluded=tuple(excluded),
                        n_subsets=len(subsets), best=best, best_single=best_single, test=test,
                        top=tuple(as_subset(s) for s in ranked[:max(1, top)]), notes=tuple(notes))
