"""The evaluator × dataset-version matrix: which pairs are due, running one pair exactly once,
and ReIFE-style matrix runs (every checkpoint × protocol on every dataset version).

Pairs (what the flows fan out, :mod:`flows.metaeval`): :func:`missing_pairs` lists the due pairs
— active evaluators × the latest version of every dataset (or the ones named), compatible (the
evaluator kind, and for generative judges the protocol's ``task_types``, can judge the task type),
without a succeeded run; :func:`evaluate_pair` runs one pair under its claim
(:mod:`registry.services.claims`: an advisory lock that dies with its holder, even on SIGKILL) unless
it already succeeded (``already-done``) or another live process holds the claim (``busy``); a
``running`` run found under the claim is a dead process's and is marked failed as abandoned
(``abandoned_run_ids``) before the pair runs again.

Matrix runs: :func:`run_matrix` creates the evaluators (idempotent: :func:`create_evaluator` returns the
existing one for the same checkpoint, protocol and config), then runs
:func:`registry.services.evaluation.run_evaluation` for every cell — except cells that already
have a succeeded run of that evaluator on that dataset version (they are reported as ``cached``
with that run's metrics) and cells whose protocol cannot judge the dataset's task type
(``incompatible``). A failing cell is recorded (``failed``, with its error) and the others still
run. Judgments and protocol stages are shared through the durable caches, so cells that share a
stage (a generated reference, a per-response analysis) or a vote's members compute them once.

Evaluator names: ``<autorater>@<version>/<protocol>`` as :func:`create_evaluator` names them; when
the matrix passes a config (e.g. ``max_tokens``) the name gets it as a suffix,
``…/pairwise-base[max_tokens=8]``, so evaluators of different configs never collide.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from registry.domain.serialization import Serializable, to_jsonable
from registry.errors import InvalidInput, RegistryError
from registry.services.app import RegistryContext

log = logging.getLogger(__name__)
CellStatus = Literal["ran", "cached", "failed", "incompatible"]
CellProgress = Callable[[int, int, str], None]
"""``(cells done, cells total, description of the next cell)``."""
JudgmentProgress = Callable[[int, int], None]


PairStatus = Literal["succeeded", "already-done", "busy"]


@dataclass(frozen=True)
class Pair:
    """One evaluator × dataset version of the matrix."""

    evaluator: str
    dataset: str
    """``name@version``."""
    task_type: str


@dataclass(frozen=True)
class PairOutcome:
    """What :func:`evaluate_pair` did."""

    status: PairStatus
    run_id: int | None = None
    """The new run (``succeeded``) or the existing succeeded one (``already-done``)."""
    abandoned_run_ids: tuple[int, ...] = ()


def can_judge(evaluator, task_type: str, protocol_config: dict | None = None) -> bool:
    """Whether an evaluator (kind, and protocol ``task_types`` when it has them) judges ``task_type``."""
    from registry.adapters.evaluators import EVALUATORS

    if evaluator.kind == "external" or evaluator.kind not in EVALUATORS:
        return False
    if task_type not in EVALUATORS.get(evaluator.kind).task_types:
        return False
    judged = (protocol_config or {}).get("task_types")
    return not judged or task_type in judged


def _latest_versions(reg: RegistryContext, datasets: Sequence[str] | None) -> list:
    store = reg.store
    if datasets:
        return [store.get_version(d) for d in datasets]
    return [store.get_version(d.name) for d in store.list_datasets()]


def missing_pairs(reg: RegistryContext, *, evaluators: Sequence[str] | None = None,
                  checkpoints: Sequence[str] | None = None, datasets: Sequence[str] | None = None) -> list[Pair]:
    """The due pairs (module docstring), evaluators by name then datasets in the given order."""
    store = reg.store
    chosen = [e for e in store.list_evaluators(active_only=True)
              if (not evaluators or e.name in evaluators)
              and (not checkpoints or e.checkpoint in checkpoints)]
    versions = _latest_versions(reg, datasets)
    protocols = {p.ref: p.config for p in store.list_protocols()}
    done = {(r.evaluator, r.dataset) for r in store.latest_runs()}
    out = []
    juries = sorted(e.name for e in chosen if e.kind == "jury")
    if juries:  # computed from their members' runs: a flow runs the members; `eval run` makes the jury's run
        log.info("skipping jury evaluator(s) %s: a jury is run with `autorater eval run --evaluator JURY` once its "
                 "members have runs", ", ".join(juries))
    for e in chosen:
        config = protocols.get(e.protocol) or {}
        for v in versions:
            if can_judge(e, v.task_type, config) and (e.name, v.ref) not in done:
                out.append(Pair(e.name, v.ref, v.task_type))
    return out


def evaluate_pair(reg: RegistryContext, pair: Pair, *, seed: int = 0, n_boot: int = 1000, batch_size: int = 64,
                  on_progress=None) -> PairOutcome:
    """Run one pair unless it is done or claimed by another live process (module docstring)."""
    from registry.services.claims import abandon_running, claim
    from registry.services.evaluation import run_evaluation

    with claim(reg, pair.evaluator, pair.dataset) as got:
        if not got:
            return PairOutcome("busy", None)
        abandoned = tuple(abandon_running(reg, pair.evaluator, pair.dataset))
        done = reg.store.latest_runs(evaluator=pair.evaluator, status="succeeded")
        previous = next((r for r in done if r.dataset == pair.dataset), None)
        if previous is not None:
            return PairOutcome("already-done", previous.id, abandoned)
        run = run_evaluation(reg, pair.evaluator, pair.dataset, seed=seed, n_boot=n_boot, batch_size=batch_size,
                             on_progress=on_progress)
        return PairOutcome("succeeded", run.id, abandoned)


@dataclass(frozen=True)
class MatrixCell(Serializable):
    """One evaluator × dataset version of a matrix."""

    checkpoint: str
    protocol: str
    """``name@version``."""
    dataset: str
    """``name@version`` of the dataset version."""
    evaluator: str
    status: CellStatus
    run_id: int | None = None
    metric: str | None = None
    """The dataset's headline metric (pairwise ``accuracy`` — ``accuracy_3way`` on sets with tie
    labels —, pointwise ``spearman``, …; see ``scoring.headline_for``)."""
    value: float | None = None
    n_executed: int = 0
    """Judgments computed by this cell's run (0 when it came from the cache)."""
    error: str | None = None


@dataclass(frozen=True)
class MatrixResult(Serializable):
    """Every cell of a matrix run, in checkpoint, protocol, dataset order."""

    checkpoints: tuple[str, ...]
    protocols: tuple[str, ...]
    datasets: tuple[str, ...]
    cells: tuple[MatrixCell, ...] = field(default_factory=tuple)

    def cell(self, evaluator: str, dataset: str) -> MatrixCell:
        """The cell of ``evaluator`` on ``dataset`` (``name@version``)."""
        for c in self.cells:
            if c.evaluator == evaluator and c.dataset == dataset:
                return c
        raise KeyError((evaluator, dataset))

    def count(self, status: CellStatus) -> int:
        """How many cells ended with ``status``."""
        return sum(c.status == status for c in self.cells)

    @property
    def evaluators(self) -> tuple[str, ...]:
        """The evaluators (grid rows), in order."""
        return tuple(dict.fromkeys(c.evaluator for c in self.cells))

    @property
    def n_executed(self) -> int:
        """Judgments computed over the whole matrix."""
        return sum(c.n_executed for c in self.cells)

    def to_dict(self) -> dict[str, Any]:
        """What ``eval matrix --json`` prints: the axes, the judgments executed and every cell."""
        return to_jsonable({"checkpoints": self.checkpoints, "protocols": self.protocols, "datasets": self.datasets,
                            "n_executed": self.n_executed, "cells": self.cells})


def _split(values: str | Sequence[str]) -> list[str]:
    items = values.split(",") if isinstance(values, str) else list(values)
    return [v.strip() for v in items if v and v.strip()]


def resolve_protocols(reg: RegistryContext, protocols: str | Sequence[str], task_types: set[str]) -> list[str]:
    """Protocol references (``name@version``): the given ones, or with ``all`` every generative-judge
    protocol (one with ``task_types``) that can judge one of ``task_types`` (latest version of
    each name; votes last, so that their members' cells run first)."""
    from registry.services.evaluators import sync_protocols

    known = sync_protocols(reg)
    names = _split(protocols)
    if names == ["all"]:
        latest: dict[str, Any] = {}
        for p in known:
            if p.config.get("task_types") and set(p.config["task_types"]) & task_types:
                if p.name not in latest or p.version > latest[p.name].version:
                    latest[p.name] = p
        chosen = sorted(latest.values(), key=lambda p: (bool(p.config.get("vote")), p.name))
        if not chosen:
            raise InvalidInput(f"no generative-judge protocol judges {sorted(task_types)} data", field="protocols")
        return [f"{p.name}@{p.version}" for p in chosen]
    if not names:
        raise InvalidInput("name at least one protocol, or 'all'", field="protocols")
    return [reg.store.get_protocol(n).ref for n in names]


def evaluator_name(checkpoint_ref: str, protocol_name: str, config: dict[str, Any]) -> str:
    """The matrix's name for a checkpoint × protocol evaluator with ``config`` (module docstring)."""
    suffix = ",".join(f"{k}={config[k]}" for k in sorted(config))
    return f"{checkpoint_ref}/{protocol_name}" + (f"[{suffix}]" if suffix else "")


def run_matrix(reg: RegistryContext, checkpoints: str | Sequence[str], protocols: str | Sequence[str],
               datasets: str | Sequence[str], *, config: dict[str, Any] | None = None, seed: int = 0,
               n_boot: int = 1000, batch_size: int = 64, on_cell: CellProgress | None = None,
               on_progress: JudgmentProgress | None = None) -> MatrixResult:
    """Run every checkpoint × protocol on every dataset version (see the module docstring).

    ``checkpoints``/``protocols``/``datasets`` are lists or comma-separated strings (``protocols``
    may be ``all``); ``config`` is the evaluators' config (e.g. ``{"max_tokens": 8}``; the backend
    defaults to ``transformers`` for llm-judge checkpoints); ``on_cell`` and ``on_progress`` report
    cells and the current cell's judgments."""
    from registry.services.evaluation import run_evaluation
    from registry.services.evaluators import create_evaluator
    from registry.services.scoring import headline_for

    store = reg.store
    ckpts = [store.get_checkpoint(c) for c in _split(checkpoints)]
    versions = [store.get_version(d) for d in _split(datasets)]
    if not ckpts:
        raise InvalidInput("name at least one checkpoint", field="checkpoints")
    if not versions:
        raise InvalidInput("name at least one dataset", field="datasets")
    protocol_refs = resolve_protocols(reg, protocols, {v.task_type for v in versions})
    config = dict(config or {})

    plan = []
    for ckpt in ckpts:
        for ref in protocol_refs:
            proto = store.get_protocol(ref)
            ev, _ = create_evaluator(reg, checkpoint=ckpt.ref, protocol=ref, config=config,
                                     name=evaluator_name(ckpt.ref, proto.name, config), derived_name=True)
            done = {r.dataset: r for r in store.latest_runs(evaluator=ev.name)}
            for version in versions:
                plan.append((ckpt.ref, ref, ev.name, version, can_judge(ev, version.task_type, proto.config),
                             done.get(version.ref)))

    cells: list[MatrixCell] = []
    for i, (ckpt_ref, ref, ev_name, version, compatible, previous) in enumerate(plan):
        if on_cell:
            on_cell(i, len(plan), f"{ev_name} on {version.ref}")
        metric = headline_for(version)
        base = {"checkpoint": ckpt_ref, "protocol": ref, "dataset": version.ref, "evaluator": ev_name}
        if not compatible:
            cells.append(MatrixCell(**base, status="incompatible"))
            continue
        if previous is not None:
            m = previous.metric(metric)
            cells.append(MatrixCell(**base, status="cached", run_id=previous.id, metric=metric,
                                    value=m.value if m else None))
            continue
        try:
            run = run_evaluation(reg, ev_name, version.ref, seed=seed, n_boot=n_boot, batch_size=batch_size,
                                 on_progress=on_progress)
        except RegistryError as exc:
            cells.append(MatrixCell(**base, status="failed", metric=metric, error=str(exc)))
            continue
        m = run.metric(metric)
        cells.append(MatrixCell(**base, status="ran", run_id=run.id, metric=metric, value=m.value if m else None,
                                n_executed=run.n_executed))
    if on_cell:
        on_cell(len(plan), len(plan), "done")
    return MatrixResult(checkpoints=tuple(c.ref for c in ckpts), protocols=tuple(protocol_refs),
                        datasets=tuple(v.ref for v in versions), cells=tuple(cells))
