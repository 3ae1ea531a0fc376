"""The SQL store of the registry: every read and write of registry metadata goes through here."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, contains_eager, selectinload, sessionmaker

from registry.adapters.store import db
from registry.adapters.store.db import check_schema, create_engine_for, managed_session
from registry.adapters.store.orm import (
    SqlAutorater,
    SqlCheckpoint,
    SqlCheckpointAlias,
    SqlDataset,
    SqlDatasetVersion,
    SqlEvaluationRun,
    SqlEvaluator,
    SqlJudgment,
    SqlMetric,
    SqlProtocol,
    SqlRegression,
    SqlSource,
    utcnow,
)
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
from registry.errors import AlreadyExists, InvalidInput, NotFound

RUN_STATUSES = ("running", "succeeded", "failed")
"""Statuses of an evaluation run: ``running`` while it runs (or if its process died), then
``succeeded`` or ``failed``."""


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``name`` or ``name@version`` (``name@latest`` too) → (name, version or None)."""
    name, sep, ver = ref.partition("@")
    if not sep or ver in ("", "latest"):
        return name, None
    try:
        return name, int(ver.removeprefix("v"))
    except ValueError:
        raise InvalidInput(f"bad dataset reference {ref!r}; use NAME or NAME@VERSION (e.g. llmbar-natural@2)") from None


_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)


def head_from_files() -> str | None:
    """The single head revision of ``migrations/versions``, read from the revision files as text
    (their ``revision`` / ``down_revision`` literals) without importing Alembic; ``None`` when
    a file does not state both as literals, a revision repeats, or there is not exactly one head.
    (Read on every call: a handful of small files, and the folder may change under a long-lived
    process.)"""
    files = sorted((db.MIGRATIONS_DIR / "versions").glob("*.py"))
    revisions: set[str] = set()
    parents: set[str] = set()
    for f in files:
        found = dict(_ASSIGNMENT.findall(f.read_text(encoding="utf-8")))
        try:
            revision, down = ast.literal_eval(found["revision"]), ast.literal_eval(found["down_revision"])
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        parents.update([down] if isinstance(down, str) else (down or ()))
    heads = revisions - parents
    return next(iter(heads)) if len(revisions) == len(files) and len(heads) == 1 else None


def _at_head(engine: Engine) -> bool:
    """Whether the database is at the head revision, by plain SQL against ``alembic_version``.

    The fast path of the schema check every command runs (Alembic's own check imports it, a
    quarter of a second); anything else — an older or newer schema, no table, unreadable
    revision files — answers ``False`` and :func:`~registry.adapters.store.db.check_schema`
    decides, with its message."""
    head = head_from_files()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except SQLAlchemyError:
        return False
    return current == [head]


class SqlAlchemyStore:
    """Registry metadata in a SQL database (SQLite file or PostgreSQL)."""

    def __init__(self, db_url: str, *, check: bool = True) -> None:
        self.engine = create_engine_for(db_url)
        if check and not _at_head(self.engine):
            check_schema(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """The one managed session (commit / rollback / error translation)."""
        with managed_session(self._sessions) as s:
            yield s

    # ---------------------------------------------------------------- sources
    def upsert_source(self, s: Session, source: Source) -> SqlSource:
        row = s.scalar(select(SqlSource).where(SqlSource.name == source.name))
        if row is None:
            row = SqlSource(name=source.name, title=source.title, origin=source.origin,
                            license=source.license, citation=source.citation)
            s.add(row)
            s.flush()
        return row

    def list_sources(self) -> list[Source]:
        with self.session() as s:
            return [r.to_entity() for r in s.scalars(select(SqlSource).order_by(SqlSource.name))]

    # --------------------------------------------------------------- datasets
    def _dataset(self, s: Session, name: str) -> SqlDataset:
        row = s.scalar(select(SqlDataset).where(SqlDataset.name == name))
        if row is None:
            raise NotFound.named("dataset", name, s.scalars(select(SqlDataset.name)).all())
        return row

    def get_or_create_dataset(self, s: Session, *, name: str, task_type: str, source: SqlSource | None,
                              description: str) -> SqlDataset:
        row = s.scalar(select(SqlDataset).where(SqlDataset.name == name))
        if row is None:
            row = SqlDataset(name=name, task_type=task_type, source=source, description=description)
            s.add(row)
            s.flush()
        elif row.task_type != task_type:
            raise InvalidInput(f"dataset {name!r} is a {row.task_type} dataset; this input is {task_type}",
                               field="task_type", hint="register it under another name")
        return row

    def list_datasets(self, task_type: str | None = None) -> list[Dataset]:
        with self.session() as s:
            q = select(SqlDataset).options(selectinload(SqlDataset.versions), selectinload(SqlDataset.source))
            if task_type:
                q = q.where(SqlDataset.task_type == task_type)
            return [r.to_entity() for r in s.scalars(q.order_by(SqlDataset.name))]

    # --------------------------------------------------------------- versions
    def _version_row(self, s: Session, ref: str) -> SqlDatasetVersion:
        name, version = parse_ref(ref)
        ds = self._dataset(s, name)
        q = select(SqlDatasetVersion).where(SqlDatasetVersion.dataset_id == ds.id)
        if version is None:
            row = s.scalar(q.order_by(SqlDatasetVersion.version.desc()).limit(1))
            if row is None:
                raise NotFound(f"dataset {name!r} has no versions")
        else:
            row = s.scalar(q.where(SqlDatasetVersion.version == version))
            if row is None:
                known = [v.version for v in ds.versions]
                raise NotFound(f"dataset {name!r} has no version {version}; versions: {known}")
        return row

    def latest_versions(self, task_type: str | None = None) -> dict[str, DatasetVersion]:
        """The newest version of every dataset (of ``task_type``) by dataset name, in one query."""
        newest = (select(SqlDatasetVersion.dataset_id, func.max(SqlDatasetVersion.version).label("version"))
                  .group_by(SqlDatasetVersion.dataset_id).subquery())
        with self.session() as s:
            q = (select(SqlDatasetVersion)
                 .join(newest, (SqlDatasetVersion.dataset_id == newest.c.dataset_id)
                       & (SqlDatasetVersion.version == newest.c.version))
                 .join(SqlDataset, SqlDatasetVersion.dataset)
                 .options(contains_eager(SqlDatasetVersion.dataset), selectinload(SqlDatasetVersion.parent)))
            if task_type:
                q = q.where(SqlDataset.task_type == task_type)
            return {v.dataset.name: v.to_entity() for v in s.scalars(q)}

    def get_version(self, ref: str) -> DatasetVersion:
        """The version ``name@v`` (latest when no version is given)."""
        with self.session() as s:
            return self._version_row(s, ref).to_entity()

    def list_versions(self, name: str) -> list[DatasetVersion]:
        with self.session() as s:
            return [v.to_entity() for v in self._dataset(s, name).versions]

    def latest_version_row(self, s: Session, dataset: SqlDataset) -> SqlDatasetVersion | None:
        return s.scalar(select(SqlDatasetVersion).where(SqlDatasetVersion.dataset_id == dataset.id)
                        .order_by(SqlDatasetVersion.version.desc()).limit(1))

    def find_version_by_hash(self, s: Session, dataset: SqlDataset, content_hash: str) -> SqlDatasetVersion | None:
        return s.scalar(select(SqlDatasetVersion).where(SqlDatasetVersion.dataset_id == dataset.id,
                                                        SqlDatasetVersion.content_hash == content_hash))

    def find_version_by_fingerprint(self, s: Session, name: str, fingerprint: str) -> SqlDatasetVersion | None:
        """The version of dataset ``name`` registered from an identical input, if any."""
        return s.scalar(select(SqlDatasetVersion).join(SqlDataset, SqlDatasetVersion.dataset_id == SqlDataset.id)
                        .where(SqlDataset.name == name, SqlDatasetVersion.input_fingerprint == fingerprint)
                        .order_by(SqlDatasetVersion.version.desc()).limit(1))

    def add_version(self, s: Session, dataset: SqlDataset, *, parent: SqlDatasetVersion | None,
                    **fields: Any) -> SqlDatasetVersion:
        number = (s.scalar(select(func.max(SqlDatasetVersion.version))
                           .where(SqlDatasetVersion.dataset_id == dataset.id)) or 0) + 1
        row = SqlDatasetVersion(dataset=dataset, version=number, parent=parent, **fields)
        s.add(row)
        s.flush()
        return row

    def counts(self) -> dict[str, int]:
        with self.session() as s:
            return {
                "sources": s.scalar(select(func.count()).select_from(SqlSource)) or 0,
                "datasets": s.scalar(select(func.count()).select_from(SqlDataset)) or 0,
                "dataset_versions": s.scalar(select(func.count()).select_from(SqlDatasetVersion)) or 0,
            }

    # ----------------------------------------------------------- checkpoints
    def _autorater(self, s: Session, name: str) -> SqlAutorater:
        row = s.scalar(select(SqlAutorater).where(SqlAutorater.name == name))
        if row is None:
            raise NotFound.named("autorater", name, s.scalars(select(SqlAutorater.name)).all())
        return row

    def checkpoint_row(self, s: Session, ref: str) -> SqlCheckpoint:
        """``autorater``, ``autorater@3`` or ``autorater@champion`` → the checkpoint row."""
        name, _, which = ref.partition("@")
        ar = self._autorater(s, name)
        q = select(SqlCheckpoint).where(SqlCheckpoint.autorater_id == ar.id)
        if not which or which == "latest":
            row = s.scalar(q.order_by(SqlCheckpoint.version.desc()).limit(1))
        elif which.removeprefix("v").isdigit():
            row = s.scalar(q.where(SqlCheckpoint.version == int(which.removeprefix("v"))))
        else:
            alias = s.scalar(select(SqlCheckpointAlias).where(SqlCheckpointAlias.autorater_id == ar.id,
                                                              SqlCheckpointAlias.alias == which))
            row = alias.checkpoint if alias else None
        if row is None:
            raise NotFound(f"no checkpoint {ref!r}; versions: {[c.version for c in ar.checkpoints]}, "
                           f"aliases: {sorted(a.alias for c in ar.checkpoints for a in c.aliases)}")
        return row

    def add_checkpoint(self, s: Session, *, autorater: str, kind: str, uri: str, sha256: str, format: str,
                       model_card: str | None = None, tags: dict | None = None, lineage: dict | None = None,
                       parent: str | None = None, description: str = "") -> tuple[SqlCheckpoint, bool]:
        """Register a checkpoint (idempotent on its sha256); returns (row, created)."""
        ar = s.scalar(select(SqlAutorater).where(SqlAutorater.name == autorater))
        if ar is None:
            ar = SqlAutorater(name=autorater, kind=kind, description=description)
            s.add(ar)
            s.flush()
        elif ar.kind != kind:
            raise InvalidInput(f"autorater {autorater!r} is of kind {ar.kind!r}, not {kind!r}", field="kind")
        existing = s.scalar(select(SqlCheckpoint).where(SqlCheckpoint.autorater_id == ar.id,
                                                        SqlCheckpoint.sha256 == sha256))
        if existing is not None:
            return existing, False
        number = (s.scalar(select(func.max(SqlCheckpoint.version)).where(SqlCheckpoint.autorater_id == ar.id)) or 0) + 1
        row = SqlCheckpoint(autorater=ar, version=number, uri=uri, sha256=sha256, format=format,
                            model_card=model_card, tags=tags or {}, lineage=lineage or {},
                            parent=self.checkpoint_row(s, parent) if parent else None)
        s.add(row)
        s.flush()
        return row, True

    def set_alias(self, s: Session, ref: str, alias: str) -> SqlCheckpoint:
        """Point ``alias`` of the checkpoint's autorater at the checkpoint ``ref`` (moves it)."""
        if alias.removeprefix("v").isdigit() or alias == "latest":
            raise InvalidInput(f"alias {alias!r} would shadow a version reference", field="alias")
        ckpt = self.checkpoint_row(s, ref)
        row = s.scalar(select(SqlCheckpointAlias).where(SqlCheckpointAlias.autorater_id == ckpt.autorater_id,
                                                        SqlCheckpointAlias.alias == alias))
        if row is None:
            s.add(SqlCheckpointAlias(autorater_id=ckpt.autorater_id, alias=alias, checkpoint=ckpt))
        else:
            row.checkpoint = ckpt
            row.updated_at = utcnow()
        s.flush()
        s.expire(ckpt)
        return ckpt

    def list_checkpoints(self, autorater: str | None = None) -> list[Checkpoint]:
        with self.session() as s:
            q = select(SqlCheckpoint).join(SqlAutorater)
            if autorater:
                q = q.where(SqlAutorater.name == autorater)
            return [c.to_entity() for c in s.scalars(q.order_by(SqlAutorater.name, SqlCheckpoint.version))]

    def get_checkpoint(self, ref: str) -> Checkpoint:
        with self.session() as s:
            return self.checkpoint_row(s, ref).to_entity()

    # ------------------------------------------------------------- protocols
    def upsert_protocol(self, s: Session, *, name: str, version: int, sha256: str, config: dict,
                        description: str = "") -> SqlProtocol:
        row = s.scalar(select(SqlProtocol).where(SqlProtocol.name == name, SqlProtocol.version == version))
        if row is None:
            row = SqlProtocol(name=name, version=version, sha256=sha256, config=config, description=description)
            s.add(row)
            s.flush()
        elif row.sha256 != sha256:
            raise AlreadyExists(f"protocol {name}@{version} is already registered with other content "
                                f"(sha256 {row.sha256[:12]}); bump its version")
        return row

    def protocol_row(self, s: Session, ref: str) -> SqlProtocol:
        name, _, ver = ref.partition("@")
        q = select(SqlProtocol).where(SqlProtocol.name == name)
        row = s.scalar(q.where(SqlProtocol.version == int(ver)) if ver.isdigit()
                       else q.order_by(SqlProtocol.version.desc()).limit(1))
        if row is None:
            raise NotFound.named("protocol", ref, [f"{p.name}@{p.version}" for p in s.scalars(select(SqlProtocol))])
        return row

    def list_protocols(self) -> list[Protocol]:
        with self.session() as s:
            return [p.to_entity() for p in s.scalars(select(SqlProtocol).order_by(SqlProtocol.name, SqlProtocol.version))]

    def get_protocol(self, ref: str) -> Protocol:
        with self.session() as s:
            return self.protocol_row(s, ref).to_entity()

    # ------------------------------------------------------------ evaluators
    def evaluator_row(self, s: Session, name: str) -> SqlEvaluator:
        row = s.scalar(select(SqlEvaluator).where(SqlEvaluator.name == name))
        if row is None:
            raise NotFound.named("evaluator", name, s.scalars(select(SqlEvaluator.name)).all())
        return row

    def add_evaluator(self, s: Session, *, name: str, kind: str, checkpoint: SqlCheckpoint | None,
                      protocol: SqlProtocol, config: dict, sha256: str,
                      price_per_1k_tokens: float | None = None) -> tuple[SqlEvaluator, bool]:
        """Create an evaluator (idempotent on its hash); returns (row, created)."""
        existing = s.scalar(select(SqlEvaluator).where(SqlEvaluator.sha256 == sha256))
        if existing is not None:
            return existing, False
        if s.scalar(select(SqlEvaluator).where(SqlEvaluator.name == name)) is not None:
            raise AlreadyExists(f"an evaluator named {name!r} exists with another configuration; choose another name")
        row = SqlEvaluator(name=name, kind=kind, checkpoint=checkpoint, protocol=protocol, config=config,
                           sha256=sha256, price_per_1k_tokens=price_per_1k_tokens)
        s.add(row)
        s.flush()
        return row, True

    def list_evaluators(self, *, active_only: bool = False) -> list[Evaluator]:
        with self.session() as s:
            q = select(SqlEvaluator).order_by(SqlEvaluator.name)
            if active_only:
                q = q.where(SqlEvaluator.active.is_(True))
            return [e.to_entity() for e in s.scalars(q)]

    def get_evaluator(self, name: str) -> Evaluator:
        with self.session() as s:
            return self.evaluator_row(s, name).to_entity()

    # ------------------------------------------------------------------ runs
    def version_row(self, s: Session, ref: str) -> SqlDatasetVersion:
        return self._version_row(s, ref)

    def run_row(self, s: Session, run_id: int) -> SqlEvaluationRun:
        row = s.get(SqlEvaluationRun, run_id)
        if row is None:
            raise NotFound(f"no evaluation run {run_id}")
        return row

    def get_run(self, run_id: int) -> EvaluationRun:
        with self.session() as s:
            return self.run_row(s, run_id).to_entity()

    def set_metrics(self, s: Session, run: SqlEvaluationRun, metrics: list[MetricRecord]) -> None:
        run.metrics.clear()
        s.flush()
        for m in metrics:
            run.metrics.append(SqlMetric(name=m.name, slice=m.slice, value=m.value, ci_low=m.ci_low,
                                         ci_high=m.ci_high, n=m.n, extra=m.extra))

    def latest_runs(self, *, dataset_version_ids: list[int] | None = None, evaluator: str | None = None,
                    status: str = "succeeded") -> list[EvaluationRun]:
        """The newest run of each (evaluator, dataset version) with ``status``."""
        with self.session() as s:
            newest = (select(func.max(SqlEvaluationRun.id)).where(SqlEvaluationRun.status == status)
                      .group_by(SqlEvaluationRun.evaluator_id, SqlEvaluationRun.dataset_version_id))
            q = select(SqlEvaluationRun).where(SqlEvaluationRun.id.in_(newest))
            if dataset_version_ids is not None:
                q = q.where(SqlEvaluationRun.dataset_version_id.in_(dataset_version_ids))
            if evaluator is not None:
                q = q.join(SqlEvaluator).where(SqlEvaluator.name == evaluator)
            q = q.options(selectinload(SqlEvaluationRun.metrics))
            return [r.to_entity() for r in s.scalars(q.order_by(SqlEvaluationRun.id))]

    def find_run_by_provenance(self, evaluator: str, version_ref: str, key: str, value: Any) -> EvaluationRun | None:
        """The newest succeeded run of ``evaluator`` on ``version_ref`` whose provenance has
        ``key == value`` (e.g. an import's content address), or ``None``."""
        with self.session() as s:
            ev = s.scalar(select(SqlEvaluator).where(SqlEvaluator.name == evaluator))
            if ev is None:
                return None
            dv = self._version_row(s, version_ref)
            q = (select(SqlEvaluationRun).where(SqlEvaluationRun.evaluator_id == ev.id,
                                                SqlEvaluationRun.dataset_version_id == dv.id,
                                                SqlEvaluationRun.status == "succeeded")
                 .order_by(SqlEvaluationRun.id.desc()))
            for run in s.scalars(q):
                if (run.provenance or {}).get(key) == value:
                    return run.to_entity()
            return None

    def add_finished_run(self, *, evaluator: str, dataset: str, started_at: datetime, finished_at: datetime,
                         seconds: float, seed: int, n_examples: int, n_judgments: int, predictions_uri: str,
                         predictions_sha256: str, provenance: dict[str, Any], metrics: list[MetricRecord],
                         n_executed: int = 0, n_cached: int = 0) -> EvaluationRun:
        """Record a finished (succeeded) run in one transaction, e.g. imported predictions."""
        with self.session() as s:
            run = SqlEvaluationRun(
                evaluator=self.evaluator_row(s, evaluator), dataset_version=self._version_row(s, dataset),
                status="succeeded", seed=seed, started_at=started_at, finished_at=finished_at, seconds=seconds,
                n_examples=n_examples, n_judgments=n_judgments, n_executed=n_executed, n_cached=n_cached,
                predictions_uri=predictions_uri, predictions_sha256=predictions_sha256, provenance=provenance)
            s.add(run)
            s.flush()
            self.set_metrics(s, run, metrics)
            s.flush()
            return run.to_entity()

    def list_runs(self, *, dataset: str | None = None, evaluator: str | None = None, status: str | None = None,
                  limit: int | None = None) -> list[EvaluationRun]:
        """Evaluation runs, newest first, filtered by dataset (``name`` for any version or
        ``name@version``), evaluator name and status. An unknown dataset, version or evaluator is
        :class:`NotFound` (with "did you mean"), an unknown status :class:`InvalidInput`."""
        if status is not None and status not in RUN_STATUSES:
            raise InvalidInput(f"unknown run status {status!r}; one of {list(RUN_STATUSES)}", field="status")
        with self.session() as s:
            q = (select(SqlEvaluationRun).join(SqlEvaluator, SqlEvaluationRun.evaluator)
                 .join(SqlDatasetVersion, SqlEvaluationRun.dataset_version)
                 .join(SqlDataset, SqlDatasetVersion.dataset))
            if dataset is not None:
                name, version = parse_ref(dataset)
                if version is None:
                    q = q.where(SqlDatasetVersion.dataset_id == self._dataset(s, name).id)
                else:
                    q = q.where(SqlEvaluationRun.dataset_version_id == self._version_row(s, dataset).id)
            if evaluator is not None:
                q = q.where(SqlEvaluationRun.evaluator_id == self.evaluator_row(s, evaluator).id)
            if status is not None:
                q = q.where(SqlEvaluationRun.status == status)
            q = q.options(contains_eager(SqlEvaluationRun.evaluator),
                          contains_eager(SqlEvaluationRun.dataset_version).contains_eager(SqlDatasetVersion.dataset),
                          selectinload(SqlEvaluationRun.metrics))
            q = q.order_by(SqlEvaluationRun.id.desc())  # ids grow with every run: newest first
            return [r.to_entity() for r in s.scalars(q.limit(limit) if limit else q)]

    # --------------------------------------------------------- judgment cache
    def cached_judgments(self, s: Session, evaluator_sha256: str, keys: list[str], order: int,
                         sample: int) -> dict[str, SqlJudgment]:
        """Cached judgments by example hash for one evaluator, order and sample."""
        out: dict[str, SqlJudgment] = {}
        for i in range(0, len(keys), 900):
            chunk = keys[i:i + 900]
            q = select(SqlJudgment).where(SqlJudgment.evaluator_sha256 == evaluator_sha256,
                                          SqlJudgment.order == order, SqlJudgment.sample == sample,
                                          SqlJudgment.example_hash.in_(chunk))
            out.update({j.example_hash: j for j in s.scalars(q)})
        return out

    def count_judgments(self, evaluator_sha256: str | None = None) -> int:
        with self.session() as s:
            q = select(func.count()).select_from(SqlJudgment)
            if evaluator_sha256:
                q = q.where(SqlJudgment.evaluator_sha256 == evaluator_sha256)
            return s.scalar(q) or 0

    # ----------------------------------------------------------- regressions
    def succeeded_run_row(self, s: Session, evaluator_id: int, dataset_version_id: int) -> SqlEvaluationRun | None:
        """The newest succeeded run of an evaluator on a dataset version."""
        return s.scalar(select(SqlEvaluationRun).where(
            SqlEvaluationRun.evaluator_id == evaluator_id, SqlEvaluationRun.dataset_version_id == dataset_version_id,
            SqlEvaluationRun.status == "succeeded").order_by(SqlEvaluationRun.id.desc()).limit(1))

    def previous_version_run_row(self, s: Session, evaluator_id: int,
                                 version: SqlDatasetVersion) -> SqlEvaluationRun | None:
        """The newest succeeded run of an evaluator on the newest *earlier* version of the same
        dataset that it ran on."""
        return s.scalar(select(SqlEvaluationRun).join(SqlDatasetVersion, SqlEvaluationRun.dataset_version)
                        .where(SqlEvaluationRun.evaluator_id == evaluator_id, SqlEvaluationRun.status == "succeeded",
                               SqlDatasetVersion.dataset_id == version.dataset_id,
                               SqlDatasetVersion.version < version.version)
                        .order_by(SqlDatasetVersion.version.desc(), SqlEvaluationRun.id.desc()).limit(1))

    def evaluators_of(self, s: Session, checkpoint_id: int, protocol_id: int) -> list[SqlEvaluator]:
        """Evaluators pairing a checkpoint with a protocol, oldest first."""
        return list(s.scalars(select(SqlEvaluator).where(SqlEvaluator.checkpoint_id == checkpoint_id,
                                                         SqlEvaluator.protocol_id == protocol_id)
                              .order_by(SqlEvaluator.id)))

    def earlier_protocols(self, s: Session, protocol: SqlProtocol) -> list[SqlProtocol]:
        """Earlier versions of a protocol, newest first."""
        return list(s.scalars(select(SqlProtocol).where(SqlProtocol.name == protocol.name,
                                                        SqlProtocol.version < protocol.version)
                              .order_by(SqlProtocol.version.desc())))

    def alias_target(self, s: Session, autorater_id: int, alias: str) -> SqlCheckpoint | None:
        """The checkpoint an alias of an autorater points at, if the alias exists."""
        row = s.scalar(select(SqlCheckpointAlias).where(SqlCheckpointAlias.autorater_id == autorater_id,
                                                        SqlCheckpointAlias.alias == alias))
        return row.checkpoint if row else None

    def checkpoint_runs(self, s: Session, checkpoint_id: int) -> list[SqlEvaluationRun]:
        """Succeeded runs of every evaluator of a checkpoint, oldest first."""
        return list(s.scalars(select(SqlEvaluationRun).join(SqlEvaluator, SqlEvaluationRun.evaluator)
                              .where(SqlEvaluator.checkpoint_id == checkpoint_id,
                                     SqlEvaluationRun.status == "succeeded")
                              .options(selectinload(SqlEvaluationRun.metrics)).order_by(SqlEvaluationRun.id)))

    def find_regression(self, s: Session, *, candidate_run_id: int, baseline_run_id: int, metric: str,
                        slice: str = "all") -> SqlRegression | None:
        return s.scalar(select(SqlRegression).where(
            SqlRegression.candidate_run_id == candidate_run_id, SqlRegression.baseline_run_id == baseline_run_id,
            SqlRegression.metric == metric, SqlRegression.slice == slice))

    def add_regression(self, s: Session, **fields: Any) -> tuple[SqlRegression, bool]:
        """Record a regression (idempotent on candidate run, baseline run, metric and slice);
        returns (row, created). A concurrent writer of the same regression is tolerated."""
        key = {k: fields[k] for k in ("candidate_run_id", "baseline_run_id", "metric")} | {
            "slice": fields.get("slice", "all")}
        existing = self.find_regression(s, **key)
        if existing is not None:
            return existing, False
        row = SqlRegression(**fields)
        try:
            with s.begin_nested():
                s.add(row)
                s.flush()
        except IntegrityError:
            existing = self.find_regression(s, **key)
            if existing is None:
                raise
            return existing, False
        return row, True

    def regression_row(self, s: Session, regression_id: int) -> SqlRegression:
        row = s.get(SqlRegression, regression_id)
        if row is None:
            known = s.scalars(select(SqlRegression.id).order_by(SqlRegression.id.desc()).limit(5)).all()
            raise NotFound(f"no regression {regression_id}; latest ids: {known or 'none recorded'} "
                           "(see `autorater regressions list`)")
        return row

    def list_regressions(self, *, status: str | None = None, evaluator: str | None = None,
                         dataset: str | None = None, candidate_run_id: int | None = None,
                         checkpoint_id: int | None = None) -> list[Regression]:
        """Regressions, newest first, filtered by status, candidate evaluator, candidate dataset
        (``name`` for any version or ``name@version``), candidate run or candidate checkpoint."""
        with self.session() as s:
            q = (select(SqlRegression).join(SqlEvaluationRun, SqlRegression.candidate_run)
                 .join(SqlEvaluator, SqlEvaluationRun.evaluator)
                 .join(SqlDatasetVersion, SqlEvaluationRun.dataset_version)
                 .join(SqlDataset, SqlDatasetVersion.dataset))
            if status is not None:
                q = q.where(SqlRegression.status == status)
            if evaluator is not None:
                q = q.where(SqlEvaluator.name == evaluator)
            if dataset is not None:
                name, version = parse_ref(dataset)
                q = q.where(SqlDataset.name == name)
                if version is not None:
                    q = q.where(SqlDatasetVersion.version == version)
            if candidate_run_id is not None:
                q = q.where(SqlRegression.candidate_run_id == candidate_run_id)
            if checkpoint_id is not None:
                q = q.where(SqlEvaluator.checkpoint_id == checkpoint_id)
            runs = [selectinload(rel).selectinload(SqlEvaluationRun.evaluator) for rel in
                    (SqlRegression.candidate_run, SqlRegression.baseline_run)]
            runs += [selectinload(rel).selectinload(SqlEvaluationRun.dataset_version)
                     .selectinload(SqlDatasetVersion.dataset) for rel in
                     (SqlRegression.candidate_run, SqlRegression.baseline_run)]
            return [r.to_entity() for r in s.scalars(q.options(*runs).order_by(SqlRegression.id.desc()))]
