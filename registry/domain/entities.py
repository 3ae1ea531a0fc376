"""Entities of the registry: plain frozen dataclasses, independent of the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from registry.domain.judgments import Verdict
from registry.domain.serialization import Serializable
from registry.domain.types import TaskType


@dataclass(frozen=True)
class Source(Serializable):
    """A public collection of human judgments, as named in the source catalog."""

    name: str
    title: str
    origin: str
    """Public URL where the source's files can be fetched."""
    license: str
    citation: str


@dataclass(frozen=True)
class Dataset(Serializable):
    """A named collection of standardized examples; its content lives in numbered versions."""

    name: str
    task_type: TaskType
    source: str | None
    """Adapter/source name the dataset came from (``None`` when registered from a generic file)."""
    description: str
    created_at: datetime
    latest_version: int | None = None


@dataclass(frozen=True)
class DatasetVersion(Serializable):
    """One immutable content of a dataset."""

    dataset: str
    version: int
    content_hash: str
    """SHA-256 of the canonical content (see :mod:`registry.domain.versioning`)."""
    task_type: TaskType
    row_count: int
    spec: str
    """``name@version`` of the dataset spec it was validated against."""
    storage_uri: str
    """Path of the canonical Parquet file inside the artifact store."""
    created_at: datetime
    parent_version: int | None = None
    labels: tuple[str, ...] | None = None
    statistics: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    diff_from_parent: dict[str, int] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    """Adapter, input path, options, input file hash, code version."""

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.dataset}@{self.version}"


@dataclass(frozen=True)
class Checkpoint(Serializable):
    """One immutable version of an autorater's weights, or an external model id."""

    autorater: str
    version: int
    uri: str
    """Folder of the checkpoint, a hub id, or ``external:<name>`` for imported predictions."""
    sha256: str
    format: str
    """``safetensors`` (a folder of safetensors files), ``builtin`` (heuristics) or ``external``."""
    kind: str
    """Evaluator plugin kind of the autorater (``encoder-scorer``, ``random``, ``external``...)."""
    created_at: datetime
    aliases: tuple[str, ...] = ()
    model_card: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    """Training run, dataset versions and parent checkpoint it came from."""
    parent_version: int | None = None

    @property
    def ref(self) -> str:
        return f"{self.autorater}@{self.version}"


@dataclass(frozen=True)
class Protocol(Serializable):
    """A versioned, hashed recipe for turning a checkpoint into judgments."""

    name: str
    version: int
    sha256: str
    config: dict[str, Any]
    description: str = ""

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Evaluator(Serializable):
    """A checkpoint under a protocol: the unit that is ranked."""

    name: str
    kind: str
    checkpoint: str | None
    """``autorater@version`` of its checkpoint (``None`` for external evaluators)."""
    protocol: str
    """``name@version`` of its protocol."""
    sha256: str
    """Evaluator hash: keys the judgment cache."""
    config: dict[str, Any] = field(default_factory=dict)
    active: bool = True
    price_per_1k_tokens: float | None = None


@dataclass(frozen=True)
class MetricRecord(Serializable):
    """A stored metric value of one run."""

    name: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    slice: str = "all"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluationRun(Serializable):
    """One evaluator on one dataset version."""

    id: int
    evaluator: str
    dataset: str
    """``name@version`` of the dataset version."""
    status: str
    started_at: datetime
    finished_at: datetime | None
    seconds: float | None
    n_examples: int
    n_judgments: int
    n_executed: int
    """Judgments computed in this run (not served from the cache)."""
    n_cached: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    seed: int
    predictions_uri: str | None
    predictions_sha256: str | None
    error: str | None
    provenance: dict[str, Any]
    metrics: tuple[MetricRecord, ...] = ()

    def metric(self, name: str, slice: str = "all") -> MetricRecord | None:
        return next((m for m in self.metrics if m.name == name and m.slice == slice), None)


@dataclass(frozen=True)
class JudgmentRecord:
    """One entry of the durable judgment cache: the :class:`~registry.domain.judgments.Verdict` on one
    example input, in one order and sample, in the original orientation (see
    :mod:`registry.domain.judgments`)."""

    key: str
    """The evaluator hash — or, for a protocol stage's output, the stage key."""
    example_hash: str
    """Hash of the judge-visible inputs (or of a stage's inputs), not of the label."""
    order: int
    sample: int
    verdict: Verdict
    """The judgment in the original orientation (a stage's output: its generated text as ``raw``, no
    label); its ``extra`` is not cached."""


BaselineKind = Literal["dataset_version", "parent_checkpoint", "champion", "protocol_version"]
"""What a regression's baseline run is, relative to the candidate run:

* ``dataset_version`` — the same evaluator on the previous dataset version (shared example ids);
* ``parent_checkpoint`` — the same-protocol evaluator of the candidate checkpoint's parent;
* ``champion`` — the same-protocol evaluator of the autorater's ``champion`` checkpoint;
* ``protocol_version`` — the same checkpoint under the previous version of the protocol."""
RegressionStatus = Literal["open", "acknowledged"]
Severity = Literal["minor", "major"]


@dataclass(frozen=True)
class Regression(Serializable):
    """A recorded, significant drop of a headline metric from a baseline run to a candidate run,
    measured on the examples both runs judged."""

    id: int
    metric: str
    """Headline metric compared (``accuracy``, ``balanced_accuracy``, ``spearman``)."""
    delta: float
    """Candidate minus baseline on the shared examples (negative: a drop)."""
    ci_low: float
    """Lower end of the paired-bootstrap 95% CI of ``delta``."""
    ci_high: float
    p_value: float
    """Two-sided p-value of the paired test of "no difference"."""
    method: str
    """The paired test: ``paired_bootstrap`` (per-example values or correlation difference)."""
    severity: Severity
    baseline_kind: BaselineKind
    baseline_run_id: int
    candidate_run_id: int
    evaluator: str
    """The candidate run's evaluator."""
    baseline_evaluator: str
    dataset: str
    """``name@version`` of the candidate run's dataset version."""
    baseline_dataset: str
    baseline_value: float
    """The metric of the baseline run on the shared examples."""
    candidate_value: float
    n_shared: int
    threshold: float
    """The drop threshold in force when it was recorded."""
    alpha: float
    status: RegressionStatus
    created_at: datetime
    slice: str = "all"
    ack_note: str | None = None
    ack_by: str | None = None
    acked_at: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)
    """Extra test results (McNemar's test where per-example correctness exists, bootstrap size)."""


@dataclass(frozen=True)
class PromotionDecision(Serializable):
    """The answer of the champion rule for one candidate checkpoint."""

    autorater: str
    candidate: str
    """``autorater@version`` of the candidate checkpoint."""
    promoted: bool
    """Whether the ``champion`` alias now points at the candidate."""
    reason: str
    previous_champion: str | None = None
    metric: str | None = None
    """The metric compared (``None``: each dataset's headline metric)."""
    candidate_score: float | None = None
    """Mean metric of the candidate over the shared (dataset version, protocol) pairs."""
    champion_score: float | None = None
    shared: tuple[str, ...] = ()
    """The ``dataset@version protocol@version`` pairs both checkpoints were evaluated on."""
    open_regressions: tuple[int, ...] = ()
    """Ids of the candidate's open regressions (any of them blocks promotion)."""
