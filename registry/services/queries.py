"""Questions users ask of the registry: leaderboards, "which evaluator is best here?", and
"is run A better than run B?".

* On one dataset version, evaluators are ranked by a metric (default: the version's headline,
  :func:`registry.services.scoring.headline_for`) of their latest successful run; an evaluator
  is *statistically tied* with the best when the paired test of that same metric on the shared
  examples cannot tell them apart (p ≥ α). Every metric has its test
  (:mod:`registry.domain.metrics.per_example`): a paired bootstrap of per-example values for a
  mean (accuracy, correct-in-both, …), or a paired bootstrap that recomputes the statistic of
  both runs on the same resamples (κ, α, F1, AUC, correlations). The ranking says which test it
  used, or why a metric (cost, coverage) has none.
* Over a task type, each evaluator's score is the macro average of the metric over a set of
  dataset versions (latest of each dataset unless named), chosen by an explicit coverage policy:
  ``common`` — the datasets × evaluators block that is largest (evaluators missing one of its
  datasets are left out); ``all`` — every dataset, and only evaluators with runs on all of them.
  The answer lists the datasets used and skipped (and why) and the evaluators left out (and
  which datasets they miss). Ties: a paired bootstrap over the datasets.

Where the answers come from (issue 12): the store keeps *standings* as runs finish — per (evaluator,
dataset version) the latest succeeded run's leaderboard row, and each run's per-example judgments
(:mod:`registry.services.standings`) — so a leaderboard reads one version's rows instead of every run's
predictions. The paired tests against the best are computed from the stored judgments and cached
until a run on the version lands; on a board of more than :data:`FULL_TESTS_UP_TO` candidates only
those that can be tied with the best are tested (:func:`_can_tie`: the others' 95% CIs do not overlap
the best's). Task-type rankings are cached under their task type's generation, which every finished
run and every registered version moves on; a process also keeps its last answers
(:data:`MEMO_SIZE`) while that generation is unchanged. ``fresh=True`` computes an answer the way
it was computed before, from the runs' predictions; tests/services/test_standings.py compares both.
Rankings (and leaderboards) are cached as a head document and parts of :data:`RANKING_PART` standings,
so an answer with a ``limit`` (a new process: every CLI call) reads what it shows, not every standing; a
task-type ranking recomputed after a run lands keeps the CIs and paired tests of the evaluators whose
runs did not change (tests/services/test_ranking_parts.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Literal

import numpy as np

from registry.domain.entities import DatasetVersion, EvaluationRun
from registry.domain.serialization import Serializable, to_jsonable
from registry.domain.metrics import Bootstrap, paired_bootstrap
from registry.domain.metrics.catalog import MetricInfo, check_task_type, headline_metric, metrics_for, require_metric
from registry.domain.metrics.per_example import (
    ClassificationJudgments,
    Decomposition,
    Judgments,
    PairwiseJudgments,
    PointwiseJudgments,
    binary_metrics,
    decompose,
    mcnemar_test,
    paired_test,
    untestable_reason,
)
from registry.errors import DatabaseError, InvalidInput, NotFound
from registry.adapters.store.abstract import CachedTest, StandingRecord, StandingsBoard
from registry.services.app import RegistryContext
from registry.services.scoring import headline_for
from registry.services.standings import RunExamples

log = logging.getLogger(__name__)
ALPHA = 0.05
Coverage = Literal["common", "all"]
COVERAGES: tuple[str, ...] = ("common", "all")


@dataclass(frozen=True)
class Standing(Serializable):
    """One evaluator's place on a leaderboard."""

    evaluator: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    runs: tuple[int, ...]
    tied_with_best: bool = False
    p_value: float | None = None
    """p-value of the paired test against the best (None for the best itself, or without a test)."""
    difference: float | None = None
    """Best minus this evaluator on the shared examples (or datasets)."""
    metrics: dict[str, float | None] = field(default_factory=dict)
    test: str | None = None
    """The paired test against the best (e.g. ``paired_bootstrap(per-example correct_both)``), or
    why there is none (``no paired test: …``); None for the best itself."""
    kind: str | None = None
    """The evaluator's kind (``longer``, ``llm-judge``, ``external``, ``jury``, …): juries and single
    evaluators rank together, and this tells them apart."""


def _with_kinds(reg: RegistryContext, standings) -> tuple[Standing, ...]:
    """``standings`` with each evaluator's kind (one read of every evaluator's kind)."""
    kinds = reg.store.evaluator_kinds()
    return tuple(replace(s, kind=kinds.get(s.evaluator)) for s in standings)


@dataclass(frozen=True)
class SkippedDataset(Serializable):
    """A dataset version of the task type that a ranking did not average over, and why."""

    dataset: str
    reason: str


@dataclass(frozen=True)
class LeftOut(Serializable):
    """An evaluator with runs on the task type that a ranking did not rank, and the datasets it misses."""

    evaluator: str
    missing: tuple[str, ...]


@dataclass(frozen=True)
class EvaluatorFilter:
    """Which evaluators a ranking may rank (``best`` and ``leaderboard`` with filters; the web API's
    ``/best``). An empty filter ranks every evaluator, as the command line does.

    * ``kinds`` — keep evaluators whose kind (``longer``, ``encoder-scorer``, ``llm-judge``,
      ``external``, …) or, for an ``llm-judge``, whose backend (``transformers``, ``vllm``,
      ``vllm-server``, ``openai``) is one of them;
    * ``exclude_imported`` — leave out evaluators of imported predictions (kind ``external``);
    * ``max_cost_per_1k`` — keep an evaluator's run on a dataset version only when its cost per 1000
      judged examples is known and at most this many dollars: the run's ``price_per_1000`` metric,
      or $0 for an evaluator that runs locally with no price (heuristics, encoder scorers, local
      judges: neither ``external`` nor the ``openai`` backend, no ``price_per_1k_tokens``; a jury's
      ``price_per_1000`` is its members' sum, stored only when all are known). A run
      over the cap, or of unknown cost, counts as missing (a task-type ranking then leaves the
      evaluator out, or chooses its datasets without it, by its coverage policy)."""

    kinds: tuple[str, ...] = ()
    exclude_imported: bool = False
    max_cost_per_1k: float | None = None

    @property
    def active(self) -> bool:
        return bool(self.kinds) or self.exclude_imported or self.max_cost_per_1k is not None

    def key(self) -> list:
        """The filter as JSON data (part of the cache keys of the answers it changes)."""
        return [sorted(self.kinds), self.exclude_imported, self.max_cost_per_1k] if self.active else []


def _backend(ev) -> str | None:
    return str(ev.config.get("backend") or "transformers") if ev.kind == "llm-judge" else None


def known_price_per_1k(ev, price: float | None) -> float | None:
    """Dollars per 1000 examples of a run of ``ev`` whose ``price_per_1000`` metric is ``price``: that
    price, else $0 for an evaluator that runs locally with no price (see :class:`EvaluatorFilter`), else
    unknown (``None``) — an imported evaluator, the ``openai`` backend, a priced one, or a jury whose
    members' prices are not all known."""
    if price is not None:
        return price
    local = ev.kind not in ("external", "jury", "cascade") and _backend(ev) != "openai" and ev.price_per_1k_tokens is None
    return 0.0 if local else None


def _filter_rows(reg: RegistryContext, rows: list[StandingRecord], only: EvaluatorFilter | None) -> list[StandingRecord]:
    """The standing rows ``only`` keeps (each row must carry its metrics when a cost cap is set)."""
    if only is None or not only.active:
        return rows
    if only.max_cost_per_1k is not None and not (only.max_cost_per_1k >= 0 and math.isfinite(only.max_cost_per_1k)):
        raise InvalidInput(f"max_cost_per_1k must be a finite number >= 0, got {only.max_cost_per_1k}",
                           field="max_cost_per_1k")
    evaluators = {e.name: e for e in reg.store.list_evaluators()}
    kinds = set(only.kinds)

    def keep(r: StandingRecord) -> bool:
        ev = evaluators.get(r.evaluator)
        if ev is None:
            return False
        if kinds and ev.kind not in kinds and _backend(ev) not in kinds:
            return False
        if only.exclude_imported and ev.kind == "external":
            return False
        if only.max_cost_per_1k is not None:
            price = known_price_per_1k(ev, (r.metrics or {}).get("price_per_1000"))
            return price is not None and math.isfinite(price) and price <= only.max_cost_per_1k
        return True

    return [r for r in rows if keep(r)]


@dataclass(frozen=True)
class Ranking(Serializable):
    """A ranked answer: scope, metric and standings (best first)."""

    scope: str
    metric: str
    standings: tuple[Standing, ...]
    datasets: tuple[str, ...] = ()
    """The dataset versions the ranking is on."""
    skipped: tuple[SkippedDataset, ...] = ()
    """Dataset versions of the task type not used (task-type rankings)."""
    left_out: tuple[LeftOut, ...] = ()
    """Evaluators not ranked because they miss a used dataset (task-type rankings)."""
    coverage: str | None = None
    """The coverage policy of a task-type ranking (``common`` or ``all``)."""
    test: str | None = None
    """The paired test used against the best, or why there is none."""
    standings_total: int | None = None
    """How many evaluators were ranked when ``standings`` holds only the first of them (:meth:`head`);
    ``None``: ``standings`` is the whole ranking."""
    all_tied: tuple[str, ...] | None = None
    """Every evaluator tied with the best when ``standings`` is cut (:meth:`head`); ``None``: see :attr:`tied`."""

    @property
    def best(self) -> Standing | None:
        return self.standings[0] if self.standings else None

    @property
    def tied(self) -> tuple[Standing, ...]:
        """The standings tied with the best (of those kept: :attr:`all_tied` names all of a cut ranking's)."""
        return tuple(s for s in self.standings[1:] if s.tied_with_best)

    def head(self, limit: int | None) -> Ranking:
        """This ranking with only its first ``limit`` standings (``None``, or at least as many as there are:
        itself). Its JSON still names every evaluator tied with the best and counts every standing
        (``standings_total``). Kept per limit on this ranking: a memoised answer hands back the same cut one,
        so its encoded JSON can be kept too (the web API's ``/best``)."""
        if limit is None or limit >= len(self.standings):
            return self
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}", field="limit")
        heads = self.__dict__.setdefault("_heads", {})   # not a field: frozen, equal and serialized as before
        cut = heads.get(limit)
        if cut is None:
            cut = replace(self, standings=self.standings[:limit], standings_total=len(self.standings),
                          all_tied=tuple(s.evaluator for s in self.tied))
            if len(heads) < _HEADS_KEPT:
                heads[limit] = cut
        return cut

    def to_dict(self) -> dict:
        """What ``leaderboard --json`` and ``best --json`` print: the fields, the best standing, the names
        of the evaluators tied with it and how many standings there are (``standings`` may hold fewer)."""
        tied = list(self.all_tied) if self.all_tied is not None else [s.evaluator for s in self.tied]
        total = self.standings_total if self.standings_total is not None else len(self.standings)
        return to_jsonable({"scope": self.scope, "metric": self.metric, "datasets": self.datasets,
                            "coverage": self.coverage, "skipped": self.skipped, "left_out": self.left_out,
                            "test": self.test, "best": self.best,
                            "tied_with_best": tied, "standings": self.standings, "standings_total": total})


_HEADS_KEPT = 8
"""Cut copies (:meth:`Ranking.head`) kept per ranking, one per limit asked for."""


# ----------------------------------------------------------------------------- per-example judgments
class _Columns:
    """A dataset version's table, each column read into Python once (shared by the runs of a query)."""

    def __init__(self, table) -> None:
        self.table = table
        self._cols: dict[str, list] = {}

    def at(self, name: str, rows: np.ndarray) -> list:
        """The values of column ``name`` at ``rows`` (``None`` for each when there is no such column)."""
        if name not in self.table.column_names:
            return [None] * len(rows)
        if name not in self._cols:
            self._cols[name] = self.table.column(name).to_pylist()
        values = self._cols[name]
        return [values[int(i)] for i in rows]


def examples_judgments(columns: _Columns, ex: RunExamples, *, classes: tuple[str, ...] | None = None) -> Judgments:
    """A run's judgments on the examples it judged, as the metric decompositions take them, from
    its per-example judgments (:class:`~registry.services.standings.RunExamples`) and the version's table."""
    from registry.domain.judgments import encode_verdicts
    from registry.domain.metrics.builtin import annotator_votes

    rows = ex.rows
    ids = [str(i) for i in columns.at("example_id", rows)]
    if ex.task_type == "pairwise":
        return PairwiseJudgments(ids, encode_verdicts(columns.at("label", rows)), tuple(ex.verdicts), seed=ex.seed,
                                 logprob=ex.logprob, annotators=annotator_votes(columns.at("annotator_labels", rows)))
    if ex.task_type == "classification":
        positive = classes[0] if classes and len(classes) == 2 else None
        scores = ex.scores if ex.scores is not None and positive is not None else None
        return ClassificationJudgments(ids, columns.at("label", rows), list(ex.predictions),
                                       classes=list(classes) if classes else None, scores=scores, positive=positive)
    systems = columns.at("system_id", rows)
    has_systems = len({s for s in systems if s is not None}) >= 3
    return PointwiseJudgments(ids, np.array(columns.at("score", rows), dtype=float), ex.scores,
                              np.array([s if s is not None else "" for s in systems], dtype=object)
                              if has_systems else None)


def run_judgments(task_type: str, table, predictions, *, seed: int = 0,
                  classes: tuple[str, ...] | None = None) -> Judgments:
    """A run's judgments on the examples it judged, as the metric decompositions take them
    (aligned as :func:`registry.services.scoring.compute_metrics` aligns them)."""
    from registry.services.scoring import align

    ex = RunExamples.from_aligned(task_type, table.num_rows, align(table, predictions), seed)
    return examples_judgments(_Columns(table), ex, classes=classes)


class _Runs:
    """One dataset version's table, loaded once, and each run's metric decompositions (from its
    predictions: today's computation, ``fresh=True``)."""

    def __init__(self, reg: RegistryContext, version: DatasetVersion) -> None:
        from registry.services.datasets import load_table

        self.reg, self.version = reg, version
        self.table = load_table(reg, version.ref)
        self._judgments: dict[int, Judgments] = {}

    def judgments(self, run: EvaluationRun) -> Judgments:
        from registry.services.evaluation import load_predictions, task_context

        if run.id not in self._judgments:
            self._judgments[run.id] = run_judgments(self.version.task_type, self.table, load_predictions(self.reg, run),
                                                    seed=run.seed, classes=task_context(self.version).labels)
        return self._judgments[run.id]

    def decomposition(self, run: EvaluationRun, metric: str) -> Decomposition:
        return decompose(metric, self.judgments(run))


class _StoredRuns:
    """One dataset version's table, loaded once, and runs' decompositions from their stored
    per-example judgments (a run without them — scored before revision 0006, or by a path that did not
    keep them — gets them computed from its predictions once, and stored)."""

    def __init__(self, reg: RegistryContext, version: DatasetVersion, run_ids: list[int]) -> None:
        from registry.services.datasets import load_table
        from registry.services.evaluation import load_predictions, task_context
        from registry.services.scoring import align

        self.version = version
        table = load_table(reg, version.ref)
        self.columns = _Columns(table)
        self.classes = task_context(version).labels
        self._examples: dict[int, RunExamples] = {}
        for run_id, data in reg.store.run_examples(run_ids).items():
            try:
                ex = RunExamples.decode(data)
            except InvalidInput:
                continue
            if ex.n_rows == table.num_rows and ex.task_type == version.task_type:
                self._examples[run_id] = ex
        for run_id in run_ids:
            if run_id not in self._examples:
                run = reg.store.get_run(run_id)
                ex = RunExamples.from_aligned(version.task_type, table.num_rows,
                                              align(table, load_predictions(reg, run)), run.seed)
                _keep(reg.store.save_run_examples, run_id, ex.encode())
                self._examples[run_id] = ex

    def decomposition(self, run_id: int, metric: str) -> Decomposition:
        return decompose(metric, examples_judgments(self.columns, self._examples[run_id], classes=self.classes))


def _latest_versions(reg: RegistryContext, task_type: str) -> dict[str, DatasetVersion]:
    """The latest version of every dataset of ``task_type``, by ``name@version``."""
    return {v.ref: v for v in reg.store.latest_versions(task_type).values()}


def _rank_metric(task_type: str, metric: str) -> MetricInfo:
    """The catalog entry of a metric to rank by: an unknown metric, or one with no better
    direction (a bias measure), is an InvalidInput listing the metrics of the task type."""
    info = require_metric(check_task_type(task_type), metric)
    if info.higher_is_better is None:
        rankable = [m.name for m in metrics_for(task_type) if m.higher_is_better is not None]
        raise InvalidInput(f"{metric} has no better direction ({info.definition}); it cannot rank evaluators; "
                           f"rank by one of: {', '.join(rankable)}", field="metric")
    return info


def _value(run: EvaluationRun, metric: str) -> float | None:
    m = run.metric(metric)
    return None if m is None else m.value


def _no_test(metric: str) -> str | None:
    reason = untestable_reason(metric)
    return None if reason is None else f"no paired test: {reason}"


# ----------------------------------------------------------------------------- one dataset
FULL_TESTS_UP_TO = 100
"""A leaderboard of at most this many evaluators besides the best tests every one of them against the
best; a larger one tests the runner-up and the candidates that can be tied with it (:func:`_can_tie`)
and shows the others as not tied, without a p-value."""

NOT_TIED = "no paired test needed: the 95% CIs do not overlap (not tied)"
"""The test of a standing left untested because its CI and the best's do not overlap."""

MEMO_SIZE = 8
"""Answers kept in this process (per registry database): one is given again while its task type's
standings generation is unchanged, for the price of reading that number — what a long-lived process
(the web page, a notebook, a service on the Python API) asking many times a minute gets. 0: off."""
_memo: OrderedDict[tuple, tuple[str, int, Ranking]] = OrderedDict()
_memo_lock = threading.Lock()


def _keep(save, *args, **kwargs) -> None:
    """Cache something a query computed; a database that refuses the write (a read-only replica, a
    lock held too long) costs the cache, not the answer."""
    try:
        save(*args, **kwargs)
    except DatabaseError as exc:
        log.warning("standings: not cached (%s)", exc)


def _memo_get(reg: RegistryContext, key: tuple) -> Ranking | None:
    if not MEMO_SIZE:
        return None
    with _memo_lock:
        hit = _memo.get(key)
    if hit is None or reg.store.standings_generation(hit[0]) != hit[1]:
        return None
    with _memo_lock:
        if key in _memo:
            _memo.move_to_end(key)
    return hit[2]


def _memo_put(key: tuple, task_type: str, generation: int, ranking: Ranking) -> None:
    if not MEMO_SIZE:
        return
    with _memo_lock:
        _memo[key] = (task_type, generation, ranking)
        _memo.move_to_end(key)
        while len(_memo) > MEMO_SIZE:
            _memo.popitem(last=False)


def leaderboard(reg: RegistryContext, dataset: str, metric: str | None = None, *, alpha: float = ALPHA,
                n_boot: int = 1000, seed: int = 0, fresh: bool = False,
                only: EvaluatorFilter | None = None, limit: int | None = None) -> Ranking:
    """Evaluators on one dataset version (latest when no version is given), best first, each
    with the paired test of ``metric`` against the best on the examples both judged.

    Read from the standings the store keeps as runs finish, with the paired tests cached until a
    run on the version lands (see :data:`FULL_TESTS_UP_TO`); ``fresh=True`` computes the answer from
    every latest run's predictions instead (the computation the standings reproduce). ``only``
    restricts the evaluators ranked (:class:`EvaluatorFilter`; not with ``fresh``). The answer is
    cached in the store until a run lands on the task type (see :data:`RANKING_PART`); ``limit``: the
    answer is ``ranking.head(limit)``, read from the cached ranking's head and first parts only."""
    _check_limit(limit)
    if fresh:
        if only is not None and only.active:
            raise InvalidInput("evaluator filters apply to the standings, not to fresh=True", field="fresh")
        return _leaderboard_fresh(reg, dataset, metric, alpha=alpha, n_boot=n_boot, seed=seed).head(limit)
    stored = hashlib.sha256(json.dumps(["leaderboard", dataset, metric, alpha, n_boot, seed, FULL_TESTS_UP_TO,
                                        only.key() if only else []]).encode()).hexdigest()
    key = (reg.settings.db_url, "leaderboard", stored, limit)
    if (hit := _memo_get(reg, key)) is not None:
        return hit
    if (got := _cached_answer(reg, stored, limit)) is not None and got[2] is not None:
        task_type, generation, ranking, _ = got
        _memo_put(key, task_type, generation, ranking)
        return ranking
    board = reg.store.board(dataset, metric, n_boot=n_boot, seed=seed)
    ref, task_type = board.dataset, board.task_type
    metric = metric or headline_for(board)
    info = _rank_metric(task_type, metric)
    rows = board.rows
    if any(r.metric != metric for r in rows):    # headlines stored under another rule: the metric's own rows
        board = reg.store.board(ref, metric, n_boot=n_boot, seed=seed)
        rows = board.rows
    rows = [r for r in rows if r.value is not None]
    if only is not None and only.active and rows:
        rows = _filter_rows(reg, rows, only)
        if not rows:
            raise NotFound(f"no evaluator with a successful run on {ref} passes the filters "
                           f"(kinds {list(only.kinds) or 'any'}, exclude_imported {only.exclude_imported}, "
                           f"max_cost_per_1k {only.max_cost_per_1k})")
    if not rows:
        raise NotFound(f"no successful run on {ref} has metric {metric!r}; run `autorater eval run` (or "
                       "`autorater eval import`) first")
    sign = 1.0 if info.higher_is_better else -1.0
    rows.sort(key=lambda r: (-sign * r.value, r.evaluator))
    best = rows[0]
    test_name = _no_test(metric)
    standings = [_row_standing(best)]
    if len(rows) > 1 and test_name is None:
        tests, test_name, best_ok = _standing_tests(reg, board, metric, rows, n_boot=n_boot, seed=seed)
        for r in rows[1:] if best_ok else ():
            t = tests.get(r.run_id)
            if t is None:
                standings.append(_row_standing(r, diff=best.value - r.value, test=NOT_TIED))
            elif t.p_value is None:
                standings.append(_row_standing(r, test=t.test))
            else:
                standings.append(_row_standing(r, tied=t.p_value >= alpha, p=t.p_value, diff=t.difference,
                                               test=t.test))
    if len(standings) < len(rows):
        standings += [_row_standing(r, test=test_name) for r in rows[1:]]
    full = Ranking(scope=ref, metric=metric, standings=_with_kinds(reg, standings), datasets=(ref,), test=test_name)
    if got is None or board.generation != got[1]:    # else kept already (its first standings) at this generation
        _keep(reg.store.save_ranking_parts, task_type, board.generation,
              _ranking_parts(stored, full, task_type, keep=LEADERBOARD_KEPT))
    ranking = full.head(limit)
    _memo_put(key, task_type, board.generation, ranking)
    return ranking


def slice_ranking(reg: RegistryContext, dataset: str, slice: str, metric: str | None = None, *,  # noqa: A002
                  only: EvaluatorFilter | None = None) -> Ranking:
    """Evaluators on one dataset version ranked by ``metric`` (default: the headline) on one slice
    (``COLUMN=VALUE`` as runs store it, e.g. ``category=natural``; see ``eval run --slice-by``): the latest
    succeeded run of each evaluator, where that run has the slice. Each value carries its run's CI; no
    paired test is made on a slice (the ranking's ``test`` says so), so no evaluator is marked tied."""
    version = reg.store.get_version(dataset)
    ref = version.ref
    metric = metric or headline_for(version)
    info = _rank_metric(version.task_type, metric)
    rows, available = [], set()
    for run in reg.store.latest_runs(datasets=[ref]):
        available |= {m.slice for m in run.metrics if m.slice != "all" and m.name == metric}
        m = run.metric(metric, slice)
        if m is not None and m.value is not None:
            rows.append(StandingRecord(run.evaluator, ref, run.id, metric, m.value, m.ci_low, m.ci_high, m.n, None,
                                       version.row_count, {x.name: x.value for x in run.metrics if x.slice == "all"}))
    if not rows:
        known = ", ".join(sorted(available)[:50]) or "none (run with `eval run --slice-by COLUMN`)"
        raise NotFound(f"no latest run on {ref} has {metric!r} on slice {slice!r}; its slices: {known}")
    rows = _filter_rows(reg, rows, only)
    if not rows:
        raise NotFound(f"no evaluator with {metric!r} on slice {slice!r} of {ref} passes the filters")
    sign = 1.0 if info.higher_is_better else -1.0
    rows.sort(key=lambda r: (-sign * r.value, r.evaluator))
    test = f"no paired test: a ranking on slice {slice} shows each run's own 95% CI"
    standings = tuple(_row_standing(r, test=test if i else None) for i, r in enumerate(rows))
    return Ranking(scope=f"{ref} [{slice}]", metric=metric, standings=_with_kinds(reg, standings), datasets=(ref,),
                   test=test)


def _row_standing(r: StandingRecord, *, tied: bool = False, p=None, diff=None, test=None) -> Standing:
    return Standing(evaluator=r.evaluator, value=r.value, ci_low=r.ci_low, ci_high=r.ci_high, n=r.n,
                    runs=(r.run_id,), tied_with_best=tied, p_value=p, difference=diff, metrics=r.metrics or {},
                    test=test)


def _can_tie(best: StandingRecord, r: StandingRecord) -> bool:
    """Whether candidate ``r`` needs a paired test to say it is not tied with ``best``: always, unless
    both runs judged every example of the version with ``n`` of them in the metric (so the paired test
    is on the very examples each CI is on) and their 95% CIs do not overlap."""
    if not (best.n_aligned == best.n_rows == best.n and r.n_aligned == r.n_rows == r.n and r.n_rows == best.n_rows):
        return True
    lo, hi, r_lo, r_hi = best.ci_low, best.ci_high, r.ci_low, r.ci_high
    if any(c is None or not math.isfinite(c) for c in (lo, hi, r_lo, r_hi)):
        return True
    return max(lo, r_lo) <= min(hi, r_hi)


def _standing_tests(reg: RegistryContext, board: StandingsBoard, metric: str, rows: list[StandingRecord], *,
                    n_boot: int, seed: int) -> tuple[dict[int, CachedTest], str, bool]:
    """The paired tests of ``metric`` against the best (``rows[0]``) of the candidates that need one
    (all of them up to :data:`FULL_TESTS_UP_TO`, else the runner-up and those that can tie), from the
    cache or computed and cached: (tests by candidate run id, the ranking's test, whether the best
    run could be decomposed at all)."""
    best = rows[0]
    small = len(rows) - 1 <= FULL_TESTS_UP_TO
    wanted = [r for i, r in enumerate(rows[1:]) if small or i == 0 or _can_tie(best, r)]
    cached = dict(board.tests.get(best.run_id, {}))
    missing = [r.run_id for r in wanted if r.run_id not in cached]
    if best.run_id not in cached or (missing and cached[best.run_id].test.startswith("paired_")):
        version = reg.store.get_version(board.dataset)
        computed = _compute_tests(reg, version, metric, best.run_id, missing, n_boot=n_boot, seed=seed)
        computed = {k: v for k, v in computed.items() if k not in cached}
        _keep(reg.store.save_tests, version.ref, metric, best.run_id, computed, n_boot=n_boot, seed=seed)
        cached.update(computed)
    head = cached[best.run_id].test
    if not head.startswith("paired_"):     # the best run has no decomposition: no test at all
        return {}, head, False
    return {r.run_id: cached[r.run_id] for r in wanted}, head, True


def _compute_tests(reg: RegistryContext, version: DatasetVersion, metric: str, best: int, candidates: list[int], *,
                   n_boot: int, seed: int) -> dict[int, CachedTest]:
    """The paired tests of ``metric`` of each candidate run against run ``best`` as
    :func:`_leaderboard_fresh` computes them (the entry of ``best`` itself holds the test's name, or
    why the best run has none)."""
    judged = _StoredRuns(reg, version, [best, *candidates])
    try:
        db = judged.decomposition(best, metric)
    except InvalidInput as exc:   # e.g. predictions that no longer reproduce the stored metric
        return {best: CachedTest(None, None, f"no paired test: the best run's {exc}")}
    out = {best: CachedTest(None, None, db.test_name)}
    draws: dict[int, Bootstrap] = {}
    for c in candidates:
        try:
            t = _paired_test(db, judged.decomposition(c, metric), n_boot=n_boot, seed=seed, draws=draws)
        except InvalidInput as exc:
            out[c] = CachedTest(None, None, f"no paired test: {exc}")
            continue
        if t is None or not np.isfinite(t.p_value):
            why = "fewer than two shared examples" if t is None else "the statistic is undefined on them"
            out[c] = CachedTest(None, None, f"no paired test: {why}")
            continue
        out[c] = CachedTest(t.p_value, t.difference, db.test_name)
    return out


def _paired_test(a: Decomposition, b: Decomposition, *, n_boot: int, seed: int, draws: dict[int, Bootstrap]):
    """:func:`registry.domain.metrics.per_example.paired_test` with one bootstrap draw per number of
    shared units, reused across the candidates of a query (the same draw it would make for each)."""
    from registry.domain.metrics.paired import paired_statistic_bootstrap
    from registry.domain.metrics.per_example import on_shared

    a, b = on_shared(a, b)
    if a.n < 2:
        return None
    ca = a.units(a.columns) if a.units else a.columns
    cb = b.units(b.columns) if b.units else b.columns
    n_units = len(next(iter(ca.values())))
    if n_units not in draws:
        draws[n_units] = Bootstrap.draw(n_units, n_boot, seed)
    boot = draws[n_units]
    if a.kind == "mean":
        return paired_bootstrap(a.values(ca), b.values(cb), boot=boot, name=a.metric)
    pa, sa = a.statistic(ca, boot)
    pb, sb = b.statistic(cb, boot)
    return paired_statistic_bootstrap(pa, sa, pb, sb, n=n_units, name=a.metric)


def _leaderboard_fresh(reg: RegistryContext, dataset: str, metric: str | None = None, *, alpha: float = ALPHA,
                       n_boot: int = 1000, seed: int = 0) -> Ranking:
    """:func:`leaderboard` computed from every latest run's predictions (no standings, no cache)."""
    version = reg.store.get_version(dataset)
    ref, task_type = version.ref, version.task_type
    metric = metric or headline_for(version)
    info = _rank_metric(task_type, metric)
    runs = [r for r in reg.store.latest_runs(datasets=[ref]) if _value(r, metric) is not None]
    if not runs:
        raise NotFound(f"no successful run on {ref} has metric {metric!r}; run `autorater eval run` (or "
                       "`autorater eval import`) first")
    sign = 1.0 if info.higher_is_better else -1.0
    runs.sort(key=lambda r: (-sign * _value(r, metric), r.evaluator))
    best = runs[0]
    test_name = _no_test(metric)
    standings = [_standing(best, metric)]
    if len(runs) > 1 and test_name is None:
        judged = _Runs(reg, version)
        try:
            db = judged.decomposition(best, metric)
        except InvalidInput as exc:   # e.g. predictions that no longer reproduce the stored metric
            db, test_name = None, f"no paired test: the best run's {exc}"
        for r in runs[1:] if db is not None else ():
            try:
                t = paired_test(db, judged.decomposition(r, metric), n_boot=n_boot, seed=seed)
            except InvalidInput as exc:
                standings.append(_standing(r, metric, test=f"no paired test: {exc}"))
                continue
            if t is None or not np.isfinite(t.p_value):
                why = "fewer than two shared examples" if t is None else "the statistic is undefined on them"
                standings.append(_standing(r, metric, test=f"no paired test: {why}"))
                continue
            standings.append(_standing(r, metric, tied=t.p_value >= alpha, p=t.p_value, diff=t.difference,
                                       test=db.test_name))
        test_name = test_name or db.test_name
    if len(standings) < len(runs):
        standings += [_standing(r, metric, test=test_name) for r in runs[1:]]
    return Ranking(scope=ref, metric=metric, standings=_with_kinds(reg, standings), datasets=(ref,), test=test_name)


def _standing(run: EvaluationRun, metric: str, *, tied: bool = False, p=None, diff=None, test=None) -> Standing:
    m = run.metric(metric)
    others = {x.name: x.value for x in run.metrics if x.slice == "all"}
    return Standing(evaluator=run.evaluator, value=m.value, ci_low=m.ci_low, ci_high=m.ci_high, n=m.n,
                    runs=(run.id,), tied_with_best=tied, p_value=p, difference=diff, metrics=others, test=test)


# ----------------------------------------------------------------------------- a task type
def _resolve_datasets(reg: RegistryContext, names: list[str], task_type: str | None) -> tuple[str, dict[str, DatasetVersion]]:
    """Named dataset versions (``NAME`` = latest) of one task type, by ``name@version``."""
    named = [reg.store.get_version(n.strip()) for n in names if n.strip()]
    versions = {v.ref: v for v in named}
    if not versions:
        raise InvalidInput("--datasets names no dataset; give NAME[@VERSION],NAME[@VERSION]…", field="datasets")
    types = {v.ref: v.task_type for v in versions.values()}
    wanted = {task_type} if task_type else set(types.values())
    if len(wanted) != 1 or set(types.values()) != wanted:
        raise InvalidInput("the named datasets must share one task type"
                           + (f" ({task_type})" if task_type else "") + "; they are "
                           + ", ".join(f"{d}: {t}" for d, t in sorted(types.items())), field="datasets")
    return wanted.pop(), versions


def best_evaluator(reg: RegistryContext, *, dataset: str | None = None, task_type: str | None = None,
                   metric: str | None = None, coverage: Coverage | None = None, datasets: list[str] | None = None,
                   alpha: float = ALPHA, n_boot: int = 1000, seed: int = 0, fresh: bool = False,
                   only: EvaluatorFilter | None = None, limit: int | None = None) -> Ranking:
    """The best evaluator for a dataset, or for a task type (macro average over its datasets;
    see the module docstring for ``coverage``). ``datasets`` names the dataset versions to
    average over (``NAME`` = latest); with it, ``coverage`` defaults to ``all``.

    Read from the standings (see :func:`leaderboard`); a task-type ranking is cached until a run
    lands on a dataset version of the task type or a version of it is registered. ``fresh=True``
    computes it from every latest run instead. ``only`` restricts the evaluators ranked
    (:class:`EvaluatorFilter`; not with ``fresh``). ``limit``: the answer is ``ranking.head(limit)``
    (:meth:`Ranking.head`), read from the stored ranking's head and first parts only."""
    _check_limit(limit)
    only = only if only is not None and only.active else None
    if fresh and only is not None:
        raise InvalidInput("evaluator filters apply to the standings, not to fresh=True", field="fresh")
    if dataset and datasets:
        raise InvalidInput("give --dataset (one leaderboard) or --datasets (a macro average), not both", field="datasets")
    if datasets:
        task_type, versions = _resolve_datasets(reg, datasets, task_type)
    elif bool(dataset) == bool(task_type):
        raise InvalidInput("give exactly one of --dataset or --task-type (or --datasets)", field="dataset")
    if dataset:
        if coverage:
            raise InvalidInput("--coverage chooses datasets for --task-type or --datasets; --dataset ranks on one",
                               field="coverage")
        return leaderboard(reg, dataset, metric, alpha=alpha, n_boot=n_boot, seed=seed, fresh=fresh, only=only,
                           limit=limit)
    coverage = coverage or ("all" if datasets else "common")
    if coverage not in COVERAGES:
        raise InvalidInput(f"unknown coverage {coverage!r}; choose from {', '.join(COVERAGES)}", field="coverage")
    metric = metric or headline_metric(task_type)
    info = _rank_metric(task_type, metric)
    if fresh:
        return _best_over(reg, task_type, metric, info, coverage, versions if datasets else None, alpha=alpha,
                          n_boot=n_boot, seed=seed, fresh=True).head(limit)
    key = hashlib.sha256(json.dumps([task_type, metric, coverage, sorted(versions) if datasets else None, alpha,
                                     n_boot, seed, FULL_TESTS_UP_TO]
                                    + ([only.key()] if only else [])).encode()).hexdigest()
    memo_key = (reg.settings.db_url, "best", key, limit)
    if (hit := _memo_get(reg, memo_key)) is not None:
        return hit
    if (got := _cached_answer(reg, key, limit)) is not None and got[2] is not None:
        _, generation, ranking, cached = got
        if not cached.startswith(_HEAD_TAG):    # cached whole by older code: kept as parts
            full = _ranking_from_bytes(cached)
            _keep(reg.store.save_ranking_parts, task_type, generation, _ranking_parts(key, full, task_type))
    else:
        generation = reg.store.standings_generation(task_type)   # read before the standings
        stale = _stale_ranking(reg, key, with_parts=True)
        full = _best_over(reg, task_type, metric, info, coverage, versions if datasets else None, alpha=alpha,
                          n_boot=n_boot, seed=seed, fresh=False, only=only, previous=stale and stale[0],
                          cache=(key, generation))
        _keep(reg.store.save_ranking_parts, task_type, generation,
              _ranking_parts(key, full, task_type, generation=generation, previous=stale))
        ranking = full.head(limit)
    _memo_put(memo_key, task_type, generation, ranking)
    return ranking


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise InvalidInput(f"limit must be at least 1, got {limit}", field="limit")


RANKING_PART = 25
"""Standings per stored part of a cached ranking. A ranking is cached as a head document (its fields
without the standings, how many standings there are, who is tied with the best) and its standings in
parts of this many, best first: an answer with a ``limit`` reads the head and the first parts only,
whatever the number of evaluators (issue 12)."""


_HEAD_TAG = b'{"parts_of":'
"""How the head document of a ranking cached in parts begins (a whole ranking cached by older code does not)."""


def _part_key(key: str, i: int) -> str:
    return f"{key[:48]}:{i}"


LEADERBOARD_KEPT = 200
"""Standings of a leaderboard kept in the cache (its first parts): an answer with a limit up to this reads
them; one without a limit, or a larger one, recomputes the board from the standings as before (caching
all 10,000 standings of a board would cost its first query after every landing seconds)."""


def _ranking_parts(key: str, ranking: Ranking, task_type: str, *, keep: int | None = None,
                   generation: int | None = None,
                   previous: tuple[Ranking, list[int]] | None = None) -> dict[str, bytes]:
    """``ranking`` as the rows it is cached in (see :data:`RANKING_PART`): key → bytes; ``keep``: only
    the parts holding the first ``keep`` standings (the head says how many are kept).

    ``previous``: the whole ranking cached under ``key`` before and its parts' generations; a part whose
    standings are equal to that ranking's in the same places is not written again (issue 12: a landing
    moves a few standings), and the head names each part's generation (``part_generations``: the part
    rows cached at ``generation``, the ones kept at theirs)."""
    d = {f.name: getattr(ranking, f.name) for f in fields(Ranking) if f.name != "standings"}
    d["skipped"] = [asdict(x) for x in ranking.skipped]
    d["left_out"] = [asdict(x) for x in ranking.left_out]
    total = len(ranking.standings)
    standings = ranking.standings[:keep]
    size = RANKING_PART
    head = {"parts_of": size, "task_type": task_type, "total": total, "kept": len(standings),
            "all_tied": [s.evaluator for s in ranking.tied], "ranking": d}
    out: dict[str, bytes] = {}
    old, old_gens = previous if previous is not None and generation is not None else ((), [])
    old = old.standings if old else ()
    gens = []
    for i, start in enumerate(range(0, len(standings), size)):
        part = standings[start:start + size]
        before = old[start:start + size]
        if i < len(old_gens) and len(before) == len(part) and all(a == b for a, b in zip(part, before)):
            gens.append(old_gens[i])          # the same standings in the same places: kept as cached
            continue
        gens.append(generation)
        out[_part_key(key, i)] = _dumps(_plain_standings(part))
    if generation is not None:
        head["part_generations"] = gens
    return {key: _dumps(head), **out}


def _plain_standings(standings) -> list[dict]:
    names = [f.name for f in fields(Standing)]
    return [{n: getattr(x, n) for n in names} for x in standings]


def _stale_ranking(reg: RegistryContext, key: str, *, with_parts: bool = False):
    """The whole ranking cached under ``key`` at whatever generation it was computed (``None``: none, or
    a part of it is missing): what :func:`_best_over` reuses the unchanged evaluators' numbers of;
    ``with_parts``: (ranking, its parts' generations), what :func:`_ranking_parts` keeps of it."""
    got = reg.store.cached_ranking_parts([key], current=False).get(key)
    if got is None:
        return None
    try:
        ranking = _from_parts(reg, key, got[2], got[1], None, current=False)
        if ranking is None or not with_parts:
            return ranking
        h = _loads(got[2])
        return ranking, list(h.get("part_generations") or [got[1]] * -(-int(h["total"]) // int(h["parts_of"])))
    except (TypeError, KeyError, ValueError):   # written by other code: recompute everything
        return None


def _cached_answer(reg: RegistryContext, key: str, limit: int | None) -> tuple[str, int, Ranking | None, bytes] | None:
    """``ranking.head(limit)`` of the ranking cached under ``key`` at its task type's current generation, read
    in one statement with the parts a limited answer needs (task type, generation, answer, head document);
    ``None`` when it is not cached; the answer ``None`` when it is cached without the parts asked for."""
    keys = [key] + ([_part_key(key, i) for i in range(-(-limit // RANKING_PART))] if limit else [])
    got = reg.store.cached_ranking_parts(keys, head=key)
    if key not in got:
        return None
    task_type, generation, head = got[key]
    return task_type, generation, _from_parts(reg, key, head, generation, limit, have=got), head


def _from_parts(reg: RegistryContext, key: str, head: bytes, generation: int, limit: int | None, *,
                current: bool = True, have: dict | None = None) -> Ranking | None:
    """``ranking.head(limit)`` of the ranking cached under ``key`` at ``generation`` (head document
    ``head``), reading only the parts it needs (those not in ``have`` already); ``None`` when a part is
    missing or of another generation."""
    h = _loads(head)
    if "parts_of" not in h:               # a whole ranking, cached before parts were
        return _ranking_from_dict(h).head(limit)
    total, size = int(h["total"]), int(h["parts_of"])
    want = total if limit is None else min(limit, total)
    if want > int(h.get("kept", total)):
        return None
    keys = [_part_key(key, i) for i in range(-(-want // size))]
    gens = h.get("part_generations") or [generation] * len(keys)   # each part's (a part kept as it was)
    got = {k: have[k] for k in keys if have and k in have}
    if missing := [k for k in keys if k not in got]:
        got.update(reg.store.cached_ranking_parts(missing, current=current and "part_generations" not in h))
    if len(gens) < len(keys) or any(k not in got or got[k][1] != g for k, g in zip(keys, gens)):
        return None
    standings = [x for k in keys for x in _loads(got[k][2])][:want]
    ranking = _ranking_from_dict({**h["ranking"], "standings": standings})
    if want < total:
        ranking = replace(ranking, standings_total=total, all_tied=tuple(h["all_tied"]))
    return ranking


def _best_over(reg: RegistryContext, task_type: str, metric: str, info: MetricInfo, coverage: str,
               versions: dict[str, DatasetVersion] | None, *, alpha: float, n_boot: int, seed: int,
               fresh: bool, only: EvaluatorFilter | None = None, previous: Ranking | None = None,
               cache: tuple[str, int] | None = None) -> Ranking:
    """The task-type ranking over ``versions`` (default: the latest of every dataset of the task type).

    ``previous``: the same ranking computed at an earlier generation. An evaluator whose runs and values
    on the chosen datasets are unchanged keeps its CI from it, and its paired test against the best too
    when the best is the same evaluator with the same runs and values (both are functions of those
    values and the bootstrap settings alone); only the others are bootstrapped again. A run landing on
    one version thus costs its evaluator's CI (and, when it changes the best, every paired test).

    ``cache``: (ranking key, the generation read before the standings): the standings values are read
    through :func:`_standing_scores` — only the rows written since the values cached under that key."""
    datasets = versions is not None
    if not datasets:
        versions = _latest_versions(reg, task_type)
        if not versions:
            raise NotFound(f"no {task_type} datasets are registered; register one with `autorater dataset register`")
    universe = sorted(v.ref for v in versions.values())
    scores: dict[str, dict[str, tuple[float, int]]] = {}
    if fresh:
        for r in reg.store.latest_runs(datasets=list(versions)):
            if _value(r, metric) is not None:
                scores.setdefault(r.evaluator, {})[r.dataset] = (_value(r, metric), r.id)
    elif only is None and cache is not None:
        scores = _standing_scores(reg, task_type, metric, universe, *cache)
    elif only is None:
        for evaluator, dataset, run_id, value in reg.store.standing_values(list(versions), metric):
            if value is not None:
                scores.setdefault(evaluator, {})[dataset] = (value, run_id)
    else:
        rows = reg.store.standings(list(versions), metric, with_metrics=True)
        for s in _filter_rows(reg, rows, only):
            if s.value is not None:
                scores.setdefault(s.evaluator, {})[s.dataset] = (s.value, s.run_id)
    chosen, skipped = _choose(universe, scores, metric, coverage)
    ranked = {e: d for e, d in scores.items() if all(x in d for x in chosen)}
    left_out = tuple(LeftOut(e, tuple(x for x in chosen if x not in d)) for e, d in sorted(scores.items())
                     if e not in ranked)
    if not ranked:
        detail = "; ".join(f"{o.evaluator} misses {', '.join(o.missing)}" for o in left_out) or "no evaluator has any"
        raise NotFound(f"no evaluator has a successful run with metric {metric!r} on every one of the {len(chosen)} "
                       f"{task_type} dataset(s) {', '.join(chosen)} ({detail}); use --coverage common, or name the "
                       "datasets with --datasets")
    scope = f"task_type={task_type}"
    extra = {"skipped": tuple(skipped), "left_out": left_out, "coverage": coverage}
    if len(chosen) == 1:  # one dataset: its leaderboard, with the per-example CIs and paired tests
        board = leaderboard(reg, chosen[0], metric, alpha=alpha, n_boot=n_boot, seed=seed, fresh=fresh, only=only)
        return replace(board, scope=scope, **extra)
    sign = 1.0 if info.higher_is_better else -1.0
    names = sorted(ranked, key=lambda e: (-sign * np.mean([ranked[e][d][0] for d in chosen]), e))
    values = np.array([[ranked[e][d][0] for d in chosen] for e in names])
    boot = Bootstrap.draw(len(chosen), n_boot, seed)
    test_name = f"paired_bootstrap(over datasets, macro-average {metric})"
    before = _reusable(previous, metric, chosen, test_name)
    same_best = names[0] in before and _same_inputs(before[names[0]], ranked[names[0]], chosen) and \
        before[names[0]].p_value is None
    standings = []
    kinds = reg.store.evaluator_kinds()     # given as each standing is built (no second copy of 10,000)
    for i, e in enumerate(names):
        old = before.get(e)
        kept = old is not None and _same_inputs(old, ranked[e], chosen)
        if kept:
            lo, hi = old.ci_low, old.ci_high
        else:
            lo, hi = np.percentile(boot.means(values[i]), [2.5, 97.5])
        diff = p = None
        if i > 0 and kept and same_best and old.p_value is not None:
            diff, p = old.difference, old.p_value
        elif i > 0:
            t = paired_bootstrap(values[0], values[i], boot=boot, name=metric)
            diff, p = t.difference, t.p_value
        standings.append(Standing(evaluator=e, value=float(values[i].mean()), ci_low=float(lo), ci_high=float(hi),
                                  n=len(chosen), runs=tuple(ranked[e][d][1] for d in chosen),
                                  tied_with_best=p is not None and p >= alpha, p_value=p, difference=diff,
                                  metrics={d: ranked[e][d][0] for d in chosen}, test=test_name if i else None,
                                  kind=kinds.get(e)))
    return Ranking(scope=scope, metric=metric, standings=tuple(standings), datasets=tuple(chosen),
                   test=test_name, **extra)


_VALUES_TAG = b"standing-values/1"


def _standing_scores(reg: RegistryContext, task_type: str, metric: str, refs: list[str], key: str,
                     generation: int) -> dict[str, dict[str, tuple[float, int]]]:
    """``metric``'s value and run of every evaluator on the dataset versions ``refs`` (evaluator → version →
    (value, run id); rows without a value left out), as :meth:`standing_values` gives them, read
    incrementally (issue 12): the matrix of values cached under ``key`` at generation ``g`` is brought up
    to date with the rows written since ``g`` (each row's change stamp, revision 0007) and, for a version it
    does not hold (a new latest version), all of that version's rows; then cached again at ``generation``
    (the task type's generation read before these reads: every row written up to it is seen)."""
    vkey = f"{key[:48]}:values"
    got = reg.store.cached_ranking_parts([vkey], current=False).get(vkey)
    old = _values_from_bytes(got[2], metric) if got is not None else None
    if old is None:
        names: list[str] = []
        vals = np.zeros((0, len(refs)))
        runs = np.zeros((0, len(refs)), dtype=np.int64)
        rows = reg.store.standing_values(refs, metric)
    else:
        old_refs, names, old_vals, old_runs = old
        at = {d: j for j, d in enumerate(old_refs)}
        vals = np.zeros((len(names), len(refs)))
        runs = np.full((len(names), len(refs)), -1, dtype=np.int64)
        kept = [j for j, d in enumerate(refs) if d in at]
        vals[:, kept] = old_vals[:, [at[refs[j]] for j in kept]]
        runs[:, kept] = old_runs[:, [at[refs[j]] for j in kept]]
        same, new = [d for d in refs if d in at], [d for d in refs if d not in at]
        rows = (reg.store.standing_values(same, metric, changed_after=got[1]) if same else []) \
            + (reg.store.standing_values(new, metric) if new else [])
    index = {e: i for i, e in enumerate(names)}
    added = [e for e in dict.fromkeys(r[0] for r in rows) if e not in index]
    if added:
        index.update((e, len(names) + i) for i, e in enumerate(added))
        names = names + added
        vals = np.vstack([vals, np.zeros((len(added), len(refs)))])
        runs = np.vstack([runs, np.full((len(added), len(refs)), -1, dtype=np.int64)])
    col = {d: j for j, d in enumerate(refs)}
    for evaluator, dataset, run_id, value in rows:
        i, j = index[evaluator], col[dataset]
        if value is None:
            runs[i, j] = -1
        else:
            vals[i, j], runs[i, j] = value, run_id
    if got is None or got[1] != generation or rows:
        _keep(reg.store.save_ranking_parts, task_type, generation, {vkey: _values_to_bytes(metric, refs, names, vals, runs)})
    scores: dict[str, dict[str, tuple[float, int]]] = {}
    for e, v, r in zip(names, vals.tolist(), runs.tolist()):
        row = {refs[j]: (v[j], r[j]) for j in range(len(refs)) if r[j] >= 0}
        if row:
            scores[e] = row
    return scores


def _values_to_bytes(metric: str, refs: list[str], names: list[str], vals: np.ndarray, runs: np.ndarray) -> bytes:
    """The matrix of :func:`_standing_scores`: a tag line, a JSON header line, float64 values, int64 run ids
    (−1: no value)."""
    header = json.dumps({"metric": metric, "refs": refs, "names": names}, separators=(",", ":")).encode()
    return b"\n".join([_VALUES_TAG, header, np.ascontiguousarray(vals, dtype="<f8").tobytes()
                       + np.ascontiguousarray(runs, dtype="<i8").tobytes()])


def _values_from_bytes(data: bytes, metric: str) -> tuple[list[str], list[str], np.ndarray, np.ndarray] | None:
    """What :func:`_values_to_bytes` wrote (``None``: unreadable, or of another metric: read every row again)."""
    try:
        tag, header, body = data.split(b"\n", 2)
        h = json.loads(header)
        shape = (len(h["names"]), len(h["refs"]))
        size = shape[0] * shape[1]
        if tag != _VALUES_TAG or h["metric"] != metric or len(body) != 16 * size:
            return None
        vals = np.frombuffer(body, dtype="<f8", count=size).reshape(shape).astype(np.float64)
        runs = np.frombuffer(body, dtype="<i8", count=size, offset=8 * size).reshape(shape).astype(np.int64)
        return list(h["refs"]), list(h["names"]), vals, runs
    except (ValueError, KeyError, TypeError):
        return None


def _dumps(data) -> bytes:
    """JSON of cached data (floats round-trip exactly)."""
    return json.dumps(data, allow_nan=True, separators=(",", ":")).encode()


def _reusable(previous: Ranking | None, metric: str, chosen: list[str], test_name: str) -> dict[str, Standing]:
    """The standings of ``previous`` by evaluator, when it averaged ``metric`` over the datasets ``chosen``
    with the paired bootstrap over datasets (else nothing to reuse)."""
    if previous is None or previous.metric != metric or list(previous.datasets) != chosen \
            or previous.test != test_name or previous.standings_total is not None:
        return {}
    return {s.evaluator: s for s in previous.standings}


def _same_inputs(old: Standing, now: dict[str, tuple[float, int]], chosen: list[str]) -> bool:
    """Whether a standing was computed from the same runs and values as ``now`` (dataset → (value, run))."""
    return old.runs == tuple(now[d][1] for d in chosen) and old.metrics == {d: now[d][0] for d in chosen}


def _ranking_to_bytes(ranking: Ranking) -> bytes:
    """A ranking as JSON (floats round-trip exactly)."""
    return _dumps(_plain(ranking))


def _plain(ranking: Ranking) -> dict:
    """``asdict(ranking)`` as JSON writes it, without deep-copying every standing (10,000 standings: seconds)."""
    d = {f.name: getattr(ranking, f.name) for f in fields(Ranking)}
    d["skipped"] = [asdict(x) for x in ranking.skipped]
    d["left_out"] = [asdict(x) for x in ranking.left_out]
    d["standings"] = _plain_standings(ranking.standings)
    return d


def _ranking_from_bytes(data: bytes) -> Ranking:
    return _ranking_from_dict(_loads(data))


def _ranking_from_dict(d: dict) -> Ranking:
    d = dict(d)
    standings = tuple(Standing(**{**x, "runs": tuple(x["runs"])}) for x in d.pop("standings"))
    all_tied = d.pop("all_tied", None)
    return Ranking(**{**d, "standings": standings, "datasets": tuple(d["datasets"]),
                      "skipped": tuple(SkippedDataset(**x) for x in d["skipped"]),
                      "left_out": tuple(LeftOut(x["evaluator"], tuple(x["missing"])) for x in d["left_out"]),
                      "all_tied": None if all_tied is None else tuple(all_tied)})


def _loads(data: bytes):
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson comes with prefect
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # NaN, which orjson does not read
        return json.loads(data)


def _choose(universe: list[str], scores: dict[str, dict[str, tuple[float, int]]], metric: str,
            coverage: str) -> tuple[list[str], list[SkippedDataset]]:
    """The dataset versions to average over, and the skipped ones with the reason."""
    if coverage == "all":
        return universe, []
    run_by = {d: sorted(e for e, ds in scores.items() if d in ds) for d in universe}
    skipped = [SkippedDataset(d, f"no successful run has metric {metric!r} on this version") for d in universe
               if not run_by[d]]
    if not scores:
        raise NotFound(f"no successful run has metric {metric!r} on any of {', '.join(universe)}; run "
                       "`autorater eval run` (or `autorater eval import`) first")

    # the datasets × evaluators block that is largest: among the evaluators' coverage sets, the one
    # maximising (datasets × evaluators covering all of them); evaluators missing one are left out
    def covering(ds: frozenset) -> int:
        return sum(ds <= set(d) for d in scores.values())

    candidates = {frozenset(d) for d in scores.values()}
    chosen = sorted(max(candidates, key=lambda ds: (len(ds) * covering(ds), len(ds), sorted(ds))))
    k = covering(frozenset(chosen))
    for d in universe:
        if run_by[d] and d not in chosen:
            skipped.append(SkippedDataset(
                d, f"only {len(run_by[d])} of {len(scores)} evaluators have it; coverage 'common' averages over the "
                   f"{len(chosen)} dataset(s) that {k} evaluators all have (--coverage all or --datasets to include it)"))
    return chosen, sorted(skipped, key=lambda s: s.dataset)


# ----------------------------------------------------------------------------- two runs
@dataclass(frozen=True)
class Comparison(Serializable):
    """Two runs on the shared examples of one dataset version, compared on one metric."""

    run_a: int
    run_b: int
    dataset: str
    metric: str
    """The metric every test below is on."""
    n_shared: int
    value_a: float
    """``metric`` of run a on the shared examples."""
    value_b: float
    paired_bootstrap: dict
    """``metric``, ``test``, ``difference`` (a − b), ``ci_low``, ``ci_high``, ``p_value``, ``method``."""
    mcnemar: dict
    """``metric`` and ``applies``; where it applies (a mean of 0/1 correctness), McNemar's test on
    that correctness (``difference``, ``p_value``, ``only_a``, ``only_b`` …), else ``reason``."""


def compare_runs(reg: RegistryContext, run_a: int, run_b: int, *, metric: str | None = None, n_boot: int = 1000,
                 seed: int = 0) -> Comparison:
    """Paired tests of ``metric`` (default: the version's headline) between two runs on the
    examples both judged: a paired bootstrap for every testable metric, and McNemar's test where
    the metric is a mean of per-example 0/1 correctness. The runs must be on one dataset version."""
    a, b = reg.store.get_run(run_a), reg.store.get_run(run_b)
    if a.dataset != b.dataset:
        raise InvalidInput(f"run {run_a} is on {a.dataset} and run {run_b} on {b.dataset}; compare runs on one "
                           "dataset version (or re-run one of them on the other version)")
    version = reg.store.get_version(a.dataset)
    metric = metric or headline_for(version)
    require_metric(version.task_type, metric)
    reason = untestable_reason(metric)
    if reason:
        raise InvalidInput(f"{metric} has no paired test: {reason}", field="metric")
    for run in (a, b):
        if run.status != "succeeded":
            raise InvalidInput(f"run {run.id} has status {run.status}; compare succeeded runs", field="run")
    judged = _Runs(reg, version)
    da, db = judged.decomposition(a, metric), judged.decomposition(b, metric)
    t = paired_test(da, db, n_boot=n_boot, seed=seed)
    if t is None:
        raise InvalidInput(f"runs {run_a} and {run_b} share fewer than two judged examples")
    bootstrap = {"metric": metric, "test": t.extra["test"], "difference": t.difference, "ci_low": t.ci_low,
                 "ci_high": t.ci_high, "p_value": t.p_value, "method": t.method}
    mc = mcnemar_test(da, db)
    if mc is not None:
        mc_out = {"metric": metric, "applies": True, "difference": mc.difference, "p_value": mc.p_value,
                  "method": mc.method, **mc.extra}
    else:
        what = "a mean of per-example credit that is not 0/1" if da.kind == "mean" else "not a mean of per-example values"
        mc_out = {"metric": metric, "applies": False,
                  "reason": f"McNemar's test needs per-example 0/1 correctness and {metric} is {what}; metrics it "
                            f"applies to here: {', '.join(binary_metrics(judged.judgments(a))) or 'none'}"}
    return Comparison(run_a, run_b, a.dataset, metric, t.extra["n_shared"], t.extra["value_a"], t.extra["value_b"],
                      bootstrap, mc_out)
