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
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from registry.domain import cascade as C
from registry.domain import selective as S
from registry.domain.entities import EvaluationRun, Evaluator
from registry.errors import InvalidInput
from registry.hashing import sha256_json
from registry.services.app import RegistryContext
from registry.services.jury import (
    JURY_PROTOCOL,
    Derived,
    MemberRuns,
    _member_task_types,
    _summed_price,
    derived_predictions,
    resolve_members,
    run_derived,
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


def run_cascade(reg: RegistryContext, ev: Evaluator, version, *, seed: int = 0, n_boot: int = 1000,
                slice_by: Sequence[str] | None = None, min_slice_size: int = 10) -> EvaluationRun:
    """Run cascade ``ev`` on dataset version ``version`` (module docstring); idempotent on the member
    runs, the cascade's hash, the dataset content and the scoring settings."""
    if version.task_type not in LABELLED:
        raise InvalidInput(f"cascade {ev.name!r} cannot judge {version.ref}: a cascade calibrates on labels, and "
                           f"{version.task_type} data has none (pairwise and classification do)", field="dataset")
    cfg = ev.config

    def compute(table: pa.Table, members: MemberRuns) -> Derived:
        runs = members.runs
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
        price, cost = _summed_price(reg, runs, n, reached, "sum over the members of price_per_1000 × the share of "
                                    "the examples reaching the member (CI bounds likewise)")
        thresholds = {str(f): {name: None if np.isnan(t) else float(t) for name, t in zip(members.names, row)}
                      for f, row in enumerate(fit.thresholds)}
        provenance = {"confidences": dict(zip(members.names, kinds)), "target": float(cfg["target"]),
                      "delta": float(cfg["delta"]), "folds": folds, "fold_seed": fold_seed, "thresholds": thresholds,
                      "decided": dict(zip(members.names, decided.tolist())),
                      "reached": dict(zip(members.names, reached.tolist()))}
        return Derived(derived_predictions(table, members, verdicts, prob_a, costs, [raw] * len(members.orders)),
                       provenance, seconds=float(costs[2].sum()), price=price, cost_usd=cost)

    return run_derived(reg, ev, version, compute, seed=seed, n_boot=n_boot, slice_by=slice_by,
                       min_slice_size=min_slice_size)
