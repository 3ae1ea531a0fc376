"""Result objects of the Python API that no service defines: frozen dataclasses for what a use
case returns as a tuple, a dictionary or a mutable record, and for the registry's own facts
(settings, schema revision, store transfers, managed servers).

Each one's :meth:`~registry.domain.serialization.Serializable.to_dict` is the JSON that the
command line prints with ``--json`` for the same call. The entities (``DatasetVersion``,
``EvaluationRun``, …) and the services' results (``Registration``, ``Ranking``, ``Comparison``,
``BatchItem``, ``MatrixResult``, …) carry the same method.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from registry.domain.serialization import Serializable, to_jsonable

if TYPE_CHECKING:
    from registry.domain.entities import Checkpoint, DatasetVersion, EvaluationRun, Evaluator, Protocol, Regression
    from registry.domain.rank_analysis import ProtocolReport, RankView
    from registry.domain.versioning import RowDiff
    from registry.services.datasets import Registration

T = TypeVar("T")


@dataclass(frozen=True)
class Registered(Serializable, Generic[T]):
    """A checkpoint or evaluator that was registered, or found already registered (idempotent)."""

    entity: T
    created: bool
    """False: the same content was already registered and is returned unchanged."""

    def to_dict(self) -> dict[str, Any]:
        return {**to_jsonable(self.entity), "created": self.created}


@dataclass(frozen=True)
class SourceInfo(Serializable):
    """One source adapter of the catalog (``autorater sources list``)."""

    name: str
    title: str
    task_types: tuple[str, ...]
    origin: str
    """Public URL where the source's files can be fetched."""
    license: str
    citation: str
    datasets: tuple[str, ...]
    """The catalog datasets the adapter reads."""


@dataclass(frozen=True)
class MetricEntry(Serializable):
    """One metric of the catalog (``autorater metrics list``)."""

    name: str
    task_types: tuple[str, ...]
    kind: str
    """How paired tests treat it: a mean of per-example values, or another statistic."""
    definition: str
    source: str
    higher_is_better: bool | None
    headline: bool
    """Whether it is a headline metric (of the task type asked for, else of any task type)."""


@dataclass(frozen=True)
class DatasetDetails(Serializable):
    """A dataset version with the adapter and file it was read from (``autorater dataset show``)."""

    version: DatasetVersion
    source: str | None
    """The adapter the version was read with (its provenance), e.g. ``llmbar`` or ``generic``."""
    source_file: str | None
    """The file or folder it was read from (its provenance)."""

    def to_dict(self) -> dict[str, Any]:
        return {**to_jsonable(self.version), "source": self.source, "source_file": self.source_file}


@dataclass(frozen=True)
class ChangedExample(Serializable):
    """One example whose content differs between two versions: each changed field's old and new value."""

    example_id: str
    fields: dict[str, dict[str, Any]]
    """Field → ``{"from": old value, "to": new value}`` (only the fields that differ)."""


@dataclass(frozen=True)
class DatasetDiff(Serializable):
    """Row-level diff between two versions (``autorater dataset diff``)."""

    from_ref: str
    to_ref: str
    rows: RowDiff
    """The example ids added, removed and changed from ``from_ref`` to ``to_ref``."""
    changes: tuple[ChangedExample, ...] | None = None
    """With ``fields=True``: the changed fields of each changed example (in ``changed_ids`` order)."""

    def to_dict(self) -> dict[str, Any]:
        d = self.rows
        out = {"from": self.from_ref, "to": self.to_ref, **d.summary(), "added_ids": list(d.added),
               "removed_ids": list(d.removed), "changed_ids": list(d.changed)}
        if self.changes is not None:
            out["changes"] = [to_jsonable(c) for c in self.changes]
        return out


@dataclass(frozen=True)
class RowsPage(Serializable):
    """One page of rows (a dataset version's examples, or a run's predictions)."""

    of: str
    """What the rows belong to: ``name@version``, or ``run N``."""
    total: int
    """Rows that match the filters (all pages)."""
    offset: int
    limit: int
    rows: tuple[dict[str, Any], ...]

    @property
    def next_offset(self) -> int | None:
        """Offset of the next page, or ``None`` after the last one."""
        end = self.offset + len(self.rows)
        return end if end < self.total else None

    def to_dict(self) -> dict[str, Any]:
        return {"of": self.of, "total": self.total, "offset": self.offset, "limit": self.limit,
                "next_offset": self.next_offset, "rows": to_jsonable(list(self.rows))}


@dataclass(frozen=True)
class CheckpointDetails(Serializable):
    """A checkpoint with its parent chain, training dataset versions and model card text."""

    checkpoint: Checkpoint
    parents: tuple[Checkpoint, ...]
    """Parent, grandparent, … (nearest first)."""
    training_datasets: tuple[str, ...]
    """The dataset versions it was trained on (``name@version``; from its lineage)."""
    model_card_text: str | None
    """The model card (Markdown), read from the store or rendered from the lineage; ``None`` if none."""

    def to_dict(self) -> dict[str, Any]:
        return {**to_jsonable(self.checkpoint), "ref": self.checkpoint.ref,
                "parents": [{"ref": p.ref, "kind": p.kind, "sha256": p.sha256} for p in self.parents],
                "training_datasets": list(self.training_datasets), "model_card_text": self.model_card_text}


@dataclass(frozen=True)
class ProtocolDetails(Serializable):
    """A protocol with the text of its prompt templates."""

    protocol: Protocol
    prompt: str | None
    """The prompt templates (system, user, each stage's) as one text, placeholders such as
    ``{instruction}`` left in place; ``None`` for a protocol without a prompt (heuristics, imports)."""

    def to_dict(self) -> dict[str, Any]:
        return {**to_jsonable(self.protocol), "ref": self.protocol.ref, "prompt": self.prompt}


@dataclass(frozen=True)
class MatrixCell(Serializable):
    """One evaluator on one dataset version: the headline metric of its latest succeeded run."""

    evaluator: str
    dataset: str
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    run: int


@dataclass(frozen=True)
class HeadlineMatrix(Serializable):
    """Evaluators × dataset versions (the latest of each dataset) with the headline metric of each pair."""

    datasets: tuple[str, ...]
    evaluators: tuple[str, ...]
    cells: tuple[MatrixCell, ...]


@dataclass(frozen=True)
class AliasTarget(Serializable):
    """What an alias of an autorater points at, and the evaluators (with configs) of that checkpoint."""

    autorater: str
    alias: str
    checkpoint: Checkpoint
    evaluators: tuple[Evaluator, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"autorater": self.autorater, "alias": self.alias, "checkpoint": self.checkpoint.ref,
                "checkpoint_details": to_jsonable(self.checkpoint), "evaluators": to_jsonable(list(self.evaluators))}


@dataclass(frozen=True)
class CatalogRegistration(Serializable):
    """Outcome of registering the whole source catalog (``autorater dataset register-all``)."""

    registered: tuple[Registration, ...]
    """New versions."""
    unchanged: tuple[Registration, ...]
    """Catalog datasets whose content was already registered."""
    skipped: tuple[tuple[str, str], ...]
    """(dataset, reason) for catalog entries whose files are not present."""
    failed: tuple[tuple[str, str], ...]
    """(dataset, error message) for entries that could not be registered."""

    def to_dict(self) -> dict[str, Any]:
        return {"registered": [r.version.ref for r in self.registered],
                "unchanged": [r.version.ref for r in self.unchanged],
                "skipped": [{"dataset": d, "reason": why} for d, why in self.skipped],
                "failed": [{"dataset": d, "error": why} for d, why in self.failed]}


@dataclass(frozen=True)
class RunSummary(Serializable):
    """One evaluation run as ``autorater eval list`` shows it, with its dataset's headline metric."""

    id: int
    evaluator: str
    dataset: str
    """``name@version``."""
    status: str
    n_examples: int
    n_judgments: int
    headline: str
    """The dataset version's headline metric."""
    value: float | None
    ci_low: float | None
    ci_high: float | None
    started_at: datetime
    finished_at: datetime | None
    seconds: float | None
    error: str | None

    @classmethod
    def of(cls, run: EvaluationRun, headline: str) -> RunSummary:
        """The summary of ``run`` with its ``headline`` metric (``None`` values when it has none)."""
        m = run.metric(headline)
        return cls(id=run.id, evaluator=run.evaluator, dataset=run.dataset, status=run.status,
                   n_examples=run.n_examples, n_judgments=run.n_judgments, headline=headline,
                   value=m.value if m else None, ci_low=m.ci_low if m else None, ci_high=m.ci_high if m else None,
                   started_at=run.started_at, finished_at=run.finished_at, seconds=run.seconds, error=run.error)


@dataclass(frozen=True)
class BaselineRun(Serializable):
    """A run that a candidate run is compared with for regressions."""

    kind: str
    """``dataset_version``, ``parent_checkpoint``, ``champion`` or ``protocol_version``."""
    run: int
    evaluator: str
    dataset: str


@dataclass(frozen=True)
class RegressionCheck(Serializable):
    """A run compared with its baselines (``autorater regressions detect``)."""

    run: int
    baselines: tuple[BaselineRun, ...]
    regressions: tuple[Regression, ...]
    """The significant drops recorded (or found recorded) for the run."""


@dataclass(frozen=True)
class StorePush(Serializable):
    """``autorater store push``: files uploaded to the DVC remote."""

    pushed: int
    remote: str


@dataclass(frozen=True)
class StorePull(Serializable):
    """``autorater store pull``: files downloaded from the DVC remote."""

    pulled: int
    remote: str


@dataclass(frozen=True)
class RegistryInfo(Serializable):
    """Where a registry lives and how much it holds (``autorater init``)."""

    db_url: str
    store: str
    dvc_remote: str
    data_root: str
    """Root of the public source files (``"None"`` when there is none, as ``init`` prints it)."""
    counts: dict[str, int]
    """Rows per kind of record (``sources``, ``datasets``, ``dataset_versions``)."""

    def to_dict(self) -> dict[str, Any]:
        return {"db_url": self.db_url, "store": self.store, "dvc_remote": self.dvc_remote,
                "data_root": self.data_root, **self.counts}


@dataclass(frozen=True)
class SchemaRevision(Serializable):
    """The database's Alembic revision and the code's head revision (``autorater db current``)."""

    current: str | None
    head: str | None


@dataclass(frozen=True)
class BackendServer(Serializable):
    """A managed vLLM server (``autorater backend serve | list``)."""

    pid: int | None
    port: int
    base_url: str
    model: str
    served_model_name: str
    alive: bool
    healthy: bool
    log: str | None
    pid_file: str


@dataclass(frozen=True)
class StoppedServer(Serializable):
    """What ``autorater backend stop`` did to one managed server."""

    port: int
    pid: int | None
    stopped: bool
    """The server was running and was signalled."""
    stale: bool
    """Its process was already gone: only the PID file was removed."""


__all__ = ["AliasTarget", "BackendServer", "BaselineRun", "CatalogRegistration", "ChangedExample", "CheckpointDetails",
           "DatasetDetails", "DatasetDiff", "HeadlineMatrix", "MatrixCell", "MetricEntry", "ProtocolDetails", "Registered",
           "RegistryInfo", "RegressionCheck", "RowsPage", "RunSummary", "SchemaRevision", "SourceInfo", "StoppedServer",
           "StorePull", "StorePush"]


# ----------------------------------------------------------------------------- perturbation probes (issue 15)
@dataclass(frozen=True)
class Derivation(Serializable):
    """A probe dataset derived from a pairwise version (``autorater dataset derive``)."""

    version: DatasetVersion
    created: bool
    """False: the same derivation (or the same content) was already registered and is returned."""
    lineage: dict[str, Any]
    """``parent`` (``name@version``), ``parent_content_hash``, ``transform``, ``bias``, ``params``
    (defaults filled in), ``seed``, ``rows_changed``, ``code_version``, ``probe_code_sha256``."""

    def to_dict(self) -> dict[str, Any]:
        v = self.version
        return {"dataset": v.dataset, "version": v.version, "ref": v.ref, "created": self.created,
                "content_hash": v.content_hash, "rows": v.row_count, "lineage": self.lineage}


@dataclass(frozen=True)
class RobustnessRow(Serializable):
    """One evaluator's metric on a parent version and on a probe of it, paired by example id."""

    evaluator: str
    parent_run: int
    probe_run: int
    n_shared: int
    """Examples both runs judged (paired by example id)."""
    parent_value: float
    """The metric of the parent run on the shared examples."""
    probe_value: float
    drop: float
    """parent − probe: positive when the judge does worse on the probe."""
    ci_low: float
    """Paired-bootstrap percentile interval of the drop."""
    ci_high: float
    p_value: float
    """Paired bootstrap, two-sided, of "no drop"."""
    test: str
    mcnemar_p: float | None
    """McNemar's test on per-example 0/1 correctness, where the metric is one (else ``None``)."""
    changed_drop: float | None = None
    """The drop on the probe's changed rows only (``None`` when every row changed or none did)."""
    flip_rate: float | None = None
    """Share of the shared examples whose per-example value differs between the two runs (``None``
    for a metric that is not a per-example mean): the verdicts a probe flips, even where the
    accuracy barely moves (a position-biased judge on ``swap``: p → 1 − p, every verdict flipped)."""


@dataclass(frozen=True)
class Robustness(Serializable):
    """Accuracy drops of evaluators from a parent version to a probe (``autorater analyze robustness``)."""

    parent: str
    probe: str
    metric: str
    transform: str | None
    """The probe's transform when it was derived (its lineage), else ``None``."""
    lineage: dict[str, Any] | None
    rows: tuple[RobustnessRow, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    """(evaluator, reason) of those named (or, with ``all``, found) that could not be compared."""


__all__ += ["Derivation", "Robustness", "RobustnessRow"]


# ----------------------------------------------------------------------------- ReIFE analyses (issue 15)
@dataclass(frozen=True)
class LeftOutItem(Serializable):
    """A dataset, checkpoint or protocol that an analysis did not use, and why."""

    kind: str
    """``dataset``, ``checkpoint`` or ``protocol``."""
    name: str
    reason: str


@dataclass(frozen=True)
class GridCell(Serializable):
    """The evaluator of one checkpoint (base LLM) × protocol cell of a protocol grid."""

    checkpoint: str
    protocol: str
    evaluator: str


@dataclass(frozen=True)
class RankAnalysis(Serializable):
    """``autorater analyze ranks``: rank correlations (Kendall τ-b, Spearman ρ, bootstrap CIs over the
    examples) of the evaluators' rankings on every pair of datasets (view ``datasets``), of the base
    LLMs' rankings under every pair of protocols (``protocols``) and of the protocols' rankings under
    every pair of base LLMs (``checkpoints``)."""

    metric: str
    datasets: tuple[str, ...]
    """The dataset versions of the ``datasets`` view."""
    evaluators: tuple[str, ...]
    checkpoints: tuple[str, ...]
    """The base LLMs of the complete checkpoint × protocol grid (the other two views)."""
    protocols: tuple[str, ...]
    grid_datasets: tuple[str, ...]
    """The datasets the grid's accuracies are macro-averaged over."""
    views: tuple[RankView, ...]
    left_out: tuple[LeftOutItem, ...] = ()
    n_boot: int = 1000
    seed: int = 0
    level: float = 0.95

    def view(self, name: str) -> RankView:
        """The view ``datasets``, ``protocols`` or ``checkpoints``."""
        return next(v for v in self.views if v.name == name)

    def to_dict(self) -> dict[str, Any]:
        from registry.domain.rank_analysis import json_safe

        return json_safe({"metric": self.metric, "datasets": self.datasets, "evaluators": self.evaluators,
                                    "checkpoints": self.checkpoints, "protocols": self.protocols,
                                    "grid_datasets": self.grid_datasets, "n_boot": self.n_boot, "seed": self.seed,
                                    "ci_level": self.level, "views": {v.name: v for v in self.views},
                                    "left_out": self.left_out})


@dataclass(frozen=True)
class ProtocolAnalysis(Serializable):
    """``autorater analyze protocols``: each protocol's accuracy per base LLM (macro average over the
    datasets), means over checkpoints and over protocols, paired tests against the base protocol,
    each LLM's best protocol and whether it is the same for every LLM."""

    metric: str
    datasets: tuple[str, ...]
    cells: tuple[GridCell, ...]
    report: ProtocolReport
    left_out: tuple[LeftOutItem, ...] = ()
    n_boot: int = 1000
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        from registry.domain.rank_analysis import json_safe

        evaluators = {(c.checkpoint, c.protocol): c.evaluator for c in self.cells}
        report = self.report.to_dict()
        for cell in report["cells"]:
            cell["evaluator"] = evaluators.get((cell["checkpoint"], cell["protocol"]))
        return json_safe({"metric": self.metric, "datasets": self.datasets, "n_boot": self.n_boot,
                          "seed": self.seed, **report, "left_out": self.left_out})


__all__ += ["GridCell", "LeftOutItem", "ProtocolAnalysis", "RankAnalysis"]


# ---------------------------------------------------------------------- selective evaluation and PPI++ (issue 15)
@dataclass(frozen=True)
class SelectiveLevel(Serializable):
    """One judge of a selective evaluation (``autorater analyze selective``): its calibrated
    threshold and what it did on the test split."""

    evaluator: str
    run: int
    confidence: str
    """Confidence kind used (``prob_a``, ``samples``, ``orders``)."""
    threshold: float | None
    """Keep a verdict whose confidence is ≥ this; ``None``: this level keeps nothing."""
    calibration: dict[str, Any]
    """The fixed-sequence test on the calibration examples that reached this level (kept, errors,
    p-value, Clopper–Pearson upper bound of the risk, δ used, why no threshold)."""
    test: dict[str, Any]
    """On the test split: examples that reached it, kept, coverage (of all test examples), accuracy
    on the kept, cost per 1000 test examples."""
    accuracy_all: float | None
    """This judge's accuracy on every test example (nothing escalated), for comparison."""


@dataclass(frozen=True)
class SelectiveEvaluation(Serializable):
    """Selective evaluation with a guarantee (Trust or Escalate; :mod:`registry.domain.selective`)."""

    dataset: str
    evaluators: tuple[str, ...]
    """The judge levels, cheap to expensive (the human comes after them)."""
    target: float
    delta: float
    calibration_fraction: float
    seed: int
    n: int
    """Examples judged by every level."""
    n_calibration: int
    n_test: int
    levels: tuple[SelectiveLevel, ...]
    human: dict[str, Any]
    """The human level on the test split (reached = kept: the escalated examples)."""
    coverage: float
    """Share of the test examples decided by a judge."""
    human_fraction: float
    accuracy: float | None
    """Accuracy of the judges' verdicts on the test examples they kept."""
    met: bool
    """Test accuracy on the kept ≥ target (true when nothing was kept)."""
    cost_per_1000: dict[str, float | None]
    """Judges' cost per 1000 test examples: ``judgments`` (prediction rows), ``seconds`` and ``usd``
    (``None``: a judge without a price)."""
    reason: str | None = None
    """Why no judge keeps anything."""
    simulation: dict[str, Any] | None = None
    """With ``splits`` > 1: the share of seeded random splits meeting the target, mean coverage…"""


@dataclass(frozen=True)
class PpiEstimate(Serializable):
    """A prediction-powered estimate (PPI++; :mod:`registry.domain.ppi`) beside the human-only one."""

    evaluator: str
    run: int
    dataset: str
    metric: str
    positive: str | None
    """The positive class of ``positive_rate``."""
    n_total: int
    """Examples with the judge's prediction."""
    human_labels: int
    seed: int
    alpha: float
    ppi: dict[str, Any]
    """estimate, ci_low, ci_high, width, lambda (the power-tuning parameter) of the first draw."""
    classical: dict[str, Any]
    """The human-only estimate and CI on the same labels."""
    judge_only: float
    """The metric from the judge's predictions alone (biased; no CI)."""
    full_label_value: float
    """The metric on every human label of the dataset (what the estimates aim at)."""
    draws: int
    simulation: dict[str, Any] | None = None
    """With ``draws`` > 1: coverage of the full-label value and mean widths of both CIs."""


__all__ += ["PpiEstimate", "SelectiveEvaluation", "SelectiveLevel"]


# ----------------------------------------------------------------------------- juries of judges (issue 15)
@dataclass(frozen=True)
class JuryCandidate(Serializable):
    """One candidate juror alone: its latest run, its accuracy (pairwise headline, on the examples every
    candidate judged) with a bootstrap 95% CI, and its dollars per 1000 examples (None: unknown)."""

    evaluator: str
    run: int
    accuracy: float
    ci_low: float
    ci_high: float
    price_per_1000: float | None


@dataclass(frozen=True)
class JurySubset(Serializable):
    """One jury of the search: its members, out-of-fold accuracy with a bootstrap 95% CI, summed cost."""

    members: tuple[str, ...]
    accuracy: float
    ci_low: float
    ci_high: float
    price_per_1000: float | None
    """The members' summed dollars per 1000 examples (None: one is unknown)."""


@dataclass(frozen=True)
class JuryExclusion(Serializable):
    """A candidate the search left out, and why (unknown cost under a budget, over the budget, …)."""

    evaluator: str
    reason: str


@dataclass(frozen=True)
class JuryAnalysis(Serializable):
    """``analyze jury`` (:func:`registry.services.jury.analyze_jury`): the best jury of the candidates
    under a budget, the best single candidate, and the paired bootstrap of jury − single over examples."""

    dataset: str
    combine: str
    budget: float | None
    """Dollars per 1000 examples at most (None: no budget); candidates of unknown cost are left out
    under a budget (imported predictions carry no price)."""
    folds: int
    seed: int
    n_examples: int
    orders: tuple[int, ...]
    candidates: tuple[JuryCandidate, ...]
    """The candidates searched, most accurate alone first."""
    excluded: tuple[JuryExclusion, ...]
    n_subsets: int
    """Juries evaluated (every subset of 2..max size within the budget; odd sizes for majority)."""
    best: JurySubset
    best_single: JuryCandidate
    test: Any
    """:class:`~registry.domain.metrics.paired.PairedTest` of accuracy, best jury − best single, paired over examples."""
    top: tuple[JurySubset, ...]
    notes: tuple[str, ...] = ()


__all__ += ["JuryAnalysis", "JuryCandidate", "JuryExclusion", "JurySubset"]
