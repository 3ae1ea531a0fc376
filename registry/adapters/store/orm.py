"""SQLAlchemy 2 ORM rows of the registry. Each ``Sql*`` row has one ``to_entity()``.

The schema is created and changed only by the Alembic revisions in ``migrations/``; every
constraint is named through the metadata's naming convention so migrations can refer to it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from registry.domain.entities import (
    Checkpoint,
    Dataset,
    DatasetVersion,
    EvaluationRun,
    Evaluator,
    MetricRecord,
    Protocol,
    Regression,
    Source,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """A stored timestamp as an aware UTC datetime: SQLite hands ``DateTime(timezone=True)`` values
    back naive (they were written in UTC), PostgreSQL aware; entities always carry UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SqlSource(Base):
    """A public source of human judgments (one row per adapter that registered data)."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    title: Mapped[str] = mapped_column(String(256))
    origin: Mapped[str] = mapped_column(String(1024))
    license: Mapped[str] = mapped_column(String(256))
    citation: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def to_entity(self) -> Source:
        return Source(name=self.name, title=self.title, origin=self.origin, license=self.license,
                      citation=self.citation)


class SqlDataset(Base):
    """A named dataset; content lives in its versions."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    task_type: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="RESTRICT"))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    source: Mapped[SqlSource | None] = relationship()
    versions: Mapped[list[SqlDatasetVersion]] = relationship(
        back_populates="dataset", order_by="SqlDatasetVersion.version", foreign_keys="SqlDatasetVersion.dataset_id")

    def to_entity(self) -> Dataset:
        return Dataset(name=self.name, task_type=self.task_type,  # type: ignore[arg-type]
                       source=self.source.name if self.source else None, description=self.description,
                       created_at=aware(self.created_at),
                       latest_version=self.versions[-1].version if self.versions else None)


class SqlDatasetVersion(Base):
    """One immutable, content-addressed version of a dataset."""

    __tablename__ = "dataset_versions"
    __table_args__ = (
        UniqueConstraint("dataset_id", "version"),
        UniqueConstraint("dataset_id", "content_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id", ondelete="SET NULL"))
    row_count: Mapped[int] = mapped_column(Integer)
    spec_name: Mapped[str] = mapped_column(String(64))
    spec_version: Mapped[int] = mapped_column(Integer)
    spec_sha256: Mapped[str] = mapped_column(String(64))
    storage_uri: Mapped[str] = mapped_column(String(1024))
    labels: Mapped[list[str] | None] = mapped_column(JSON)
    statistics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    validation_report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    diff_from_parent: Mapped[dict[str, int] | None] = mapped_column(JSON)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    input_fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    """Hash of (input file bytes, adapter code, options, spec, limits): the same input registered
    again is recognised without reading it."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    dataset: Mapped[SqlDataset] = relationship(back_populates="versions", foreign_keys=[dataset_id])
    parent: Mapped[SqlDatasetVersion | None] = relationship(remote_side=[id])

    def to_entity(self) -> DatasetVersion:
        return DatasetVersion(
            dataset=self.dataset.name, version=self.version, content_hash=self.content_hash,
            task_type=self.dataset.task_type,  # type: ignore[arg-type]
            row_count=self.row_count, spec=f"{self.spec_name}@{self.spec_version}", storage_uri=self.storage_uri,
            created_at=aware(self.created_at), parent_version=self.parent.version if self.parent else None,
            labels=tuple(self.labels) if self.labels else None, statistics=self.statistics or {},
            validation=self.validation_report or {}, diff_from_parent=self.diff_from_parent,
            provenance=self.provenance or {},
        )


# --------------------------------------------------------------------- meta-evaluation


class SqlAutorater(Base):
    """A model family used as an evaluator (an LLM judge, a reward model, a heuristic)."""

    __tablename__ = "autoraters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    checkpoints: Mapped[list[SqlCheckpoint]] = relationship(back_populates="autorater",
                                                            order_by="SqlCheckpoint.version")


class SqlCheckpoint(Base):
    """One immutable version of an autorater's weights (or an external model id)."""

    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("autorater_id", "version"), UniqueConstraint("autorater_id", "sha256"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    autorater_id: Mapped[int] = mapped_column(ForeignKey("autoraters.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    uri: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(64))
    model_card: Mapped[str | None] = mapped_column(String(1024))
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    lineage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("checkpoints.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    autorater: Mapped[SqlAutorater] = relationship(back_populates="checkpoints")
    parent: Mapped[SqlCheckpoint | None] = relationship(remote_side=[id])
    aliases: Mapped[list[SqlCheckpointAlias]] = relationship(back_populates="checkpoint")

    def to_entity(self) -> Checkpoint:
        return Checkpoint(
            autorater=self.autorater.name, version=self.version, uri=self.uri, sha256=self.sha256,
            format=self.format, kind=self.autorater.kind, created_at=aware(self.created_at),
            aliases=tuple(sorted(a.alias for a in self.aliases)), model_card=self.model_card,
            tags=self.tags or {}, lineage=self.lineage or {},
            parent_version=self.parent.version if self.parent else None)


class SqlCheckpointAlias(Base):
    """A movable name (``champion``, ``candidate``...) pointing at one checkpoint of an autorater."""

    __tablename__ = "checkpoint_aliases"
    __table_args__ = (UniqueConstraint("autorater_id", "alias"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    autorater_id: Mapped[int] = mapped_column(ForeignKey("autoraters.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(64))
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoints.id", ondelete="CASCADE"), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    checkpoint: Mapped[SqlCheckpoint] = relationship(back_populates="aliases")


class SqlProtocol(Base):
    """A versioned, hashed recipe for turning a checkpoint into judgments."""

    __tablename__ = "protocols"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def to_entity(self) -> Protocol:
        return Protocol(name=self.name, version=self.version, sha256=self.sha256, config=self.config or {},
                        description=self.description)


class SqlEvaluator(Base):
    """A checkpoint × protocol pair: the unit that is ranked."""

    __tablename__ = "evaluators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    checkpoint_id: Mapped[int | None] = mapped_column(ForeignKey("checkpoints.id", ondelete="RESTRICT"), index=True)
    protocol_id: Mapped[int] = mapped_column(ForeignKey("protocols.id", ondelete="RESTRICT"), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    price_per_1k_tokens: Mapped[float | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    checkpoint: Mapped[SqlCheckpoint | None] = relationship()
    protocol: Mapped[SqlProtocol] = relationship()

    def to_entity(self) -> Evaluator:
        ckpt = self.checkpoint
        return Evaluator(
            name=self.name, kind=self.kind,
            checkpoint=f"{ckpt.autorater.name}@{ckpt.version}" if ckpt else None,
            protocol=f"{self.protocol.name}@{self.protocol.version}", sha256=self.sha256,
            config=self.config or {}, active=self.active, price_per_1k_tokens=self.price_per_1k_tokens)


class SqlEvaluationRun(Base):
    """One evaluator on one dataset version: predictions (Parquet), cost, provenance, metrics."""

    __tablename__ = "evaluation_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluator_id: Mapped[int] = mapped_column(ForeignKey("evaluators.id", ondelete="CASCADE"), index=True)
    dataset_version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    seconds: Mapped[float | None] = mapped_column()
    n_examples: Mapped[int] = mapped_column(Integer, default=0)
    n_judgments: Mapped[int] = mapped_column(Integer, default=0)
    n_executed: Mapped[int] = mapped_column(Integer, default=0)
    n_cached: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float | None] = mapped_column()
    seed: Mapped[int] = mapped_column(Integer, default=0)
    predictions_uri: Mapped[str | None] = mapped_column(String(1024))
    predictions_sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    evaluator: Mapped[SqlEvaluator] = relationship()
    dataset_version: Mapped[SqlDatasetVersion] = relationship()
    metrics: Mapped[list[SqlMetric]] = relationship(back_populates="run", cascade="all, delete-orphan",
                                                    order_by="SqlMetric.id")
    """In the order they were recorded (on every backend: a leaderboard's JSON lists them so)."""

    def to_entity(self) -> EvaluationRun:
        dv = self.dataset_version
        return EvaluationRun(
            id=self.id, evaluator=self.evaluator.name, dataset=f"{dv.dataset.name}@{dv.version}",
            status=self.status, started_at=aware(self.started_at), finished_at=aware(self.finished_at), seconds=self.seconds,
            n_examples=self.n_examples, n_judgments=self.n_judgments, n_executed=self.n_executed,
            n_cached=self.n_cached, prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
            cost_usd=self.cost_usd, seed=self.seed, predictions_uri=self.predictions_uri,
            predictions_sha256=self.predictions_sha256, error=self.error, provenance=self.provenance or {},
            metrics=tuple(MetricRecord(name=m.name, value=m.value, ci_low=m.ci_low, ci_high=m.ci_high, n=m.n,
                                       slice=m.slice, extra=m.extra or {}) for m in self.metrics))


class SqlMetric(Base):
    """A named value with its confidence interval, sample size and slice."""

    __tablename__ = "metrics"
    __table_args__ = (UniqueConstraint("run_id", "name", "slice"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("evaluation_runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    slice: Mapped[str] = mapped_column(String(256), default="all")
    value: Mapped[float | None] = mapped_column()
    ci_low: Mapped[float | None] = mapped_column()
    ci_high: Mapped[float | None] = mapped_column()
    n: Mapped[int] = mapped_column(Integer, default=0)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    run: Mapped[SqlEvaluationRun] = relationship(back_populates="metrics")


class SqlJudgment(Base):
    """The judgment cache: one evaluator's judgment of one example input, order and sample.

    Keyed by the evaluator hash and the hash of the example's *inputs* (not its label), so a new
    dataset version re-runs only new or changed examples, and the cache survives restarts."""

    __tablename__ = "judgments"

    evaluator_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    example_hash: Mapped[str] = mapped_column(String(32), primary_key=True)
    order: Mapped[int] = mapped_column(Integer, primary_key=True)
    sample: Mapped[int] = mapped_column(Integer, primary_key=True)
    verdict: Mapped[str | None] = mapped_column(String(256))
    score: Mapped[float | None] = mapped_column()
    prob_a: Mapped[float | None] = mapped_column()
    parsed: Mapped[bool] = mapped_column(default=True)
    raw: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --------------------------------------------------------------------------- regressions


class SqlRegression(Base):
    """A significant drop of a headline metric from a baseline run to a candidate run."""

    __tablename__ = "regressions"
    __table_args__ = (
        UniqueConstraint("candidate_run_id", "baseline_run_id", "metric", "slice"),
        CheckConstraint("status IN ('open', 'acknowledged')", name="status"),
        CheckConstraint("severity IN ('minor', 'major')", name="severity"),
        CheckConstraint("baseline_kind IN ('dataset_version', 'parent_checkpoint', 'champion', "
                        "'protocol_version')", name="baseline_kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    candidate_run_id: Mapped[int] = mapped_column(ForeignKey("evaluation_runs.id", ondelete="CASCADE"), index=True)
    baseline_run_id: Mapped[int] = mapped_column(ForeignKey("evaluation_runs.id", ondelete="CASCADE"), index=True)
    baseline_kind: Mapped[str] = mapped_column(String(32))
    metric: Mapped[str] = mapped_column(String(128))
    slice: Mapped[str] = mapped_column(String(256), default="all")
    delta: Mapped[float] = mapped_column()
    ci_low: Mapped[float] = mapped_column()
    ci_high: Mapped[float] = mapped_column()
    p_value: Mapped[float] = mapped_column()
    method: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    baseline_value: Mapped[float] = mapped_column()
    candidate_value: Mapped[float] = mapped_column()
    n_shared: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[float] = mapped_column()
    alpha: Mapped[float] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    ack_note: Mapped[str | None] = mapped_column(Text)
    ack_by: Mapped[str | None] = mapped_column(String(256))
    acked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    candidate_run: Mapped[SqlEvaluationRun] = relationship(foreign_keys=[candidate_run_id])
    baseline_run: Mapped[SqlEvaluationRun] = relationship(foreign_keys=[baseline_run_id])

    def to_entity(self) -> Regression:
        def ref(run: SqlEvaluationRun) -> str:
            return f"{run.dataset_version.dataset.name}@{run.dataset_version.version}"

        return Regression(
            id=self.id, metric=self.metric, slice=self.slice, delta=self.delta, ci_low=self.ci_low,
            ci_high=self.ci_high, p_value=self.p_value, method=self.method,
            severity=self.severity,  # type: ignore[arg-type]
            baseline_kind=self.baseline_kind,  # type: ignore[arg-type]
            baseline_run_id=self.baseline_run_id, candidate_run_id=self.candidate_run_id,
            evaluator=self.candidate_run.evaluator.name, baseline_evaluator=self.baseline_run.evaluator.name,
            dataset=ref(self.candidate_run), baseline_dataset=ref(self.baseline_run),
            baseline_value=self.baseline_value, candidate_value=self.candidate_value, n_shared=self.n_shared,
            threshold=self.threshold, alpha=self.alpha, status=self.status,  # type: ignore[arg-type]
            created_at=aware(self.created_at), ack_note=self.ack_note, ack_by=self.ack_by, acked_at=aware(self.acked_at),
            details=self.details or {})


# --------------------------------------------------------------------------- standings
# What `best` and `leaderboard` read (revision 0006): written by the store in the transaction that
# finishes a run, so a query reads a few indexed rows instead of every run's predictions.


class SqlStanding(Base):
    """The leaderboard row of one evaluator on one dataset version: its latest succeeded run, the
    version's headline metric of that run (value, CI, n), how many examples it aligned, its
    coverage and every whole-dataset metric value (``{name: value}``)."""

    __tablename__ = "standings"
    __table_args__ = (UniqueConstraint("dataset_version_id", "evaluator_id"),
                      Index("ix_standings_dataset_version_id_changed", "dataset_version_id", "changed"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"))
    evaluator_id: Mapped[int] = mapped_column(ForeignKey("evaluators.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("evaluation_runs.id", ondelete="CASCADE"), index=True)
    metric: Mapped[str] = mapped_column(String(128))
    """The version's headline metric (the one ``value``, ``ci_low``, ``ci_high`` and ``n`` are of)."""
    value: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    n: Mapped[int] = mapped_column(Integer, default=0)
    n_aligned: Mapped[int | None] = mapped_column(Integer)
    """Examples with a prediction in every order judged (``coverage``'s ``aligned``)."""
    n_rows: Mapped[int] = mapped_column(Integer, default=0)
    """Rows of the dataset version."""
    coverage: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    changed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Its task type's standings generation when the row was last written (revision 0007), set in the
    transaction that moves the generation on: a ranking computed at generation ``g`` reads only the rows
    with ``changed > g`` to catch up (a re-scored run rewrites its row under the same run id)."""


class SqlRunExamples(Base):
    """A run's per-example judgments, aligned to its dataset version's example order and encoded
    compactly (a packed bit mask of the judged rows, int8 verdict codes per order, float scores;
    :mod:`registry.services.standings`): what a paired test needs, without the predictions Parquet."""

    __tablename__ = "run_examples"

    run_id: Mapped[int] = mapped_column(ForeignKey("evaluation_runs.id", ondelete="CASCADE"), primary_key=True)
    dataset_version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"),
                                                    index=True)
    encoding: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class SqlStandingTest(Base):
    """A cached paired test of ``metric`` between the best run and a candidate run of one dataset
    version (``p_value``/``difference`` ``None`` and ``test`` saying why when there is no test); the
    row with candidate = best holds the test's name. A version's rows are dropped when a run on it
    finishes."""

    __tablename__ = "standing_tests"
    __table_args__ = (PrimaryKeyConstraint("dataset_version_id", "metric", "best_run_id", "n_boot", "seed",
                                           "candidate_run_id"),)

    dataset_version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(128))
    best_run_id: Mapped[int] = mapped_column(ForeignKey("evaluation_runs.id", ondelete="CASCADE"), index=True)
    n_boot: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    candidate_run_id: Mapped[int] = mapped_column(ForeignKey("evaluation_runs.id", ondelete="CASCADE"), index=True)
    p_value: Mapped[float | None] = mapped_column(Float)
    difference: Mapped[float | None] = mapped_column(Float)
    test: Mapped[str | None] = mapped_column(Text)


class SqlStandingGeneration(Base):
    """A counter per task type, moved on by every run that finishes on one of its dataset versions
    and every version registered: a cached task-type ranking is valid while it is unchanged."""

    __tablename__ = "standing_generations"

    task_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)


class SqlStandingRanking(Base):
    """A cached task-type ranking (``best --task-type`` / ``--datasets``), keyed by its parameters,
    valid while its task type's generation is ``generation``."""

    __tablename__ = "standing_rankings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    task_type: Mapped[str] = mapped_column(String(32), index=True)
    generation: Mapped[int] = mapped_column(Integer)
    ranking: Mapped[bytes] = mapped_column(LargeBinary)
