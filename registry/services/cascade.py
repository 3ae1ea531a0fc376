"""Cascades as stored evaluators (issue 15, item 7): an evaluator of kind ``cascade`` whose verdicts
route each example through its members' stored judgments, cheap to expensive.

* :func:`create_cascade` — kind ``cascade`` under the ``jury`` protocol (one protocol for every
  evaluator combined from stored runs); its config records the members (names and hashes), the
  target accuracy, δ, the confidence kind, the folds and the seed, so its hash changes when any does.
* :func:`run_cascade` — what ``eval run`` does with a cascade: the members' latest succeeded runs on
  the dataset version (as a jury's: a runnable member without one is run first, an imported one must
  exist), each member's confidence (:mod:`registry.services.selective`), cross-fitted thresholds and
  the out-of-fold routing of :mod:`registry.domain.cascade`: an example takes every order's verdict of
  the first member whose confidence reaches its threshold, else the last member's. Tokens and seconds
  per example are the sum over the members it reached; ``price_per_1000`` likewise (each member's
  price × the share of the examples that reached it) when every member's price is known. Stored
  through :func:`registry.services.jury.store_derived_run`, so it ranks in leaderboards and ``best``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import numpy as np

from registry.domain import cascade as C
from registry.domain import selective as S
from registry.domain.entities import EvaluationRun, Evaluator, MetricRecord
from registry.errors import InvalidInput
from registry.hashing import sha256_json
from registry.services.app import RegistryContext
from registry.services.jury import (
    JURY_PROTOCOL,
    _member_task_types,
    derived_predictions,
    gather_members,
    member_price,
    member_runs,
    resolve_members,
    store_derived_run,
)
from registry.services.selective import CONFIDENCES, LABELLED, judged

CASCADE_KIND = "cascade"


def create_cascade(reg: RegistryContext, *, members: Sequence[str], target: float = 0.9, delta: float = 0.1,
                   confidence: str = "auto", folds: int = 5, seed: int = 0,
                   name: str | None = None) -> tuple[Evaluator, bool]:
    """An evaluator of kind ``cascade`` over ``members``, cheapest first (idempotent on its hash).
    Errors: target or δ outside (0, 1), an unknown confidence, those of
    :func:`registry.services.jury.resolve_members`, members with no labelled task type in common."""
    from registry.services.evaluators import create_evaluator

    try:
        S.check_levels(target, delta)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="target") from None
    if confidence not in ("auto", *CONFIDENCES):
        raise InvalidInput(f"unknown confidence {confidence!r}; choose auto or one of {', '.join(CONFIDENCES)}",
                           field="confidence")
    evs = resolve_members(reg, members, folds=folds, seed=seed, kind=CASCADE_KIND)
    common = set(LABELLED).intersection(*(_member_task_types(reg, ev) for ev in evs))
    if not common:
        raise InvalidInput("the members judge no pairwise or classification data in common (a cascade needs labels "
                           f"to calibrate on): {', '.join(ev.name for ev in evs)}", field=CASCADE_KIND)
    config = {"members": [{"name": ev.name, "sha256": ev.sha256} for ev in evs], "target": float(target),
              "delta": float(delta), "confidence": confidence, "folds": folds, "seed": seed}
    default = f"cascade/{sha256_json(config)[:10]}"
    return create_evaluator(reg, checkpoint=None, protocol=JURY_PROTOCOL, name=name or default, config=config,
                            kind=CASCADE_KIND)


def _levels(reg: RegistryContext, version, runs: Sequence[EvaluationRun], rows: np.ndarray, confidence: str
            ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(confidence, correct) ``(members, len(rows))`` and each member's confidence kind, on ``rows``
    (NaN / wrong where a member's run lacks a row)."""
    conf = np.full((len(runs), len(rows)), np.nan)
    correct = np.zeros((len(runs), len(rows)), bool)
    kinds = []
    for m, run in enumerate(runs):
        j, _ = judged(reg, run.evaluator, version.ref)
        if j.run != run.id:
            raise InvalidInput(f"member {run.evaluator!r}: its newest run on {version.ref} changed while the cascade "
                               f"ran ({run.id} → {j.run}); run the cascade again", field=CASCADE_KIND)
        kind = j.confidence_kind(confidence)     # names the member and the kinds it has
        kinds.append(kind)
        verdict, c = j.votes[kind]
        have = np.isin(rows, j.rows)
        at = np.searchsorted(j.rows, rows[have])
        conf[m, have] = c[at]
        correct[m, have] = verdict[at] == j.labels[at]
    return conf, correct, kinds


def _price(reg: RegistryContext, runs: Sequence[EvaluationRun], reached: np.ndarray,
           n: int) -> tuple[MetricRecord | None, float | None]:
    """``price_per_1000``: each member's price × the share of the examples that reached it (CI bounds
    likewise), when every member's price is known; and the cost in dollars."""
    parts = []
    for r in runs:
        price = member_price(reg, r)
        if price is None:
            return None, None
        m = r.metric("price_per_1000")
        parts.append((price, m.ci_low if m is not None and m.ci_low is not None else price,
                      m.ci_high if m is not None and m.ci_high is not None else price))
    value, lo, hi = (float(np.dot(reached, [p[i] for p in parts])) for i in range(3))
    record = MetricRecord(name="price_per_1000", value=value, ci_low=lo, ci_high=hi, n=n,
                          extra={"rule": "sum over the members of price_per_1000 × share of the examples reaching "
                                         "the member (CI bounds likewise)", "derived": True})
    return record, value * n / 1000.0


def run_cascade(reg: RegistryContext, ev: Evaluator, version, *, seed: int = 0, n_boot: int = 1000,
                slice_by: Sequence[str] | None = None, min_slice_size: int = 10) -> EvaluationRun:
    """Run cascade ``ev`` on dataset version ``version`` (module docstring); idempotent on the member
    runs, the cascade's hash, the dataset content and the scoring settings."""
    from registry.services.claims import abandon_running, claim
    from registry.services.datasets import load_table
    from registry.services.evaluation import code_revision

    if version.task_type not in LABELLED:
        raise InvalidInput(f"cascade {ev.name!r} cannot judge {version.ref}: a cascade calibrates on labels, and "
                           f"{version.task_type} data has none (pairwise and classification do)", field="dataset")
    t0 = time.perf_counter()
    runs = member_runs(reg, ev, version, seed=seed, n_boot=n_boot)
    slicing = {"slice_by": list(slice_by) if slice_by is not None else None, "min_slice_size": min_slice_size}
    key = sha256_json({"cascade": ev.sha256, "member_runs": [r.id for r in runs], "dataset": version.content_hash,
                       "seed": seed, "n_boot": n_boot, "slicing": slicing})
    with claim(reg, ev.name, version.ref, wait=None):
        abandon_running(reg, ev.name, version.ref)
        existing = reg.store.find_run_by_provenance(ev.name, version.ref, "cascade_key", key)
        if existing is not None:
            return existing
        cfg = ev.config
        table = load_table(reg, version.ref)
        members = gather_members(reg, version, runs, table)
        conf, correct, kinds = _levels(reg, version, runs, members.rows, cfg.get("confidence", "auto"))
        folds, fold_seed = int(cfg.get("folds", 5)), int(cfg.get("seed", 0))
        fit = C.cross_fit_cascade(conf, correct, target=float(cfg["target"]), delta=float(cfg["delta"]),
                                  folds=folds, seed=fold_seed)
        n, cols = len(members.rows), np.arange(len(members.rows))
        verdicts = members.verdicts[fit.level, :, cols].T            # (orders, n): the deciding member's
        prob_a = members.prob_a[fit.level, :, cols].T
        costs = tuple(C.reached_cost(fit.level, np.stack([members.costs[r.evaluator][x] for r in runs]))
                      for x in range(3))
        decided, reached = C.level_shares(fit.level, len(runs))
        raw = [json.dumps({"level": members.names[lv], "fold": int(f)}) for lv, f in zip(fit.level, fit.folds)]
        predictions = derived_predictions(table, members, verdicts, prob_a, costs, [raw] * len(members.orders))
        price, cost = _price(reg, runs, reached, n)
        thresholds = {str(f): {name: None if np.isnan(t) else float(t) for name, t in zip(members.names, row)}
                      for f, row in enumerate(fit.thresholds)}
        provenance = {"evaluator_sha256": ev.sha256, "dataset_sha256": version.content_hash, "protocol": ev.protocol,
                      "cascade_key": key, "member_runs": {r.evaluator: r.id for r in runs},
                      "confidences": dict(zip(members.names, kinds)), "target": float(cfg["target"]),
                      "delta": float(cfg["delta"]), "folds": folds, "fold_seed": fold_seed,
                      "thresholds": thresholds,
                      "decided": dict(zip(members.names, decided.tolist())),
                      "reached": dict(zip(members.names, reached.tolist())),
                      "orders": list(members.orders), "n_examples_common": n,
                      "n_examples_dataset": version.row_count, "n_boot": n_boot, "slicing": slicing,
                      "code_revision": code_revision(), "combine_seconds": time.perf_counter() - t0}
        return store_derived_run(reg, evaluator=ev, version=version, predictions=predictions, provenance=provenance,
                                 seed=seed, n_boot=n_boot, seconds=float(costs[2].sum()),
                                 extra_metrics=[price] if price is not None else [], cost_usd=cost,
                                 slice_by=slice_by, min_slice_size=min_slice_size)
