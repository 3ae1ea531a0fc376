"""The SQL store of the registry (SQLite file or PostgreSQL): the one implementation of
:class:`~registry.adapters.store.abstract.AbstractStore`. Every query and every ORM row of the
registry's metadata is built here; callers get entities."""

from __future__ import annotations

import ast
import functools
import re
import secrets
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import String, Text, bindparam, cast, delete, func, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, contains_eager, selectinload, sessionmaker

from registry.adapters.store import db
from registry.adapters.store.abstract import (
    RUN_STATUSES,
    AbstractStore,
    CachedTest,
    ParentMoved,
    StandingRecord,
    StandingsBoard,
)
from registry.adapters.store.claims import advisory_lock, claim_key
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
    SqlRunExamples,
    SqlSource,
    SqlStanding,
    SqlStandingGeneration,
    SqlStandingRanking,
    SqlStandingTest,
    utcnow,
)
from registry.domain.entities import (
    Checkpoint,
    Dataset,
    DatasetVersion,
    EvaluationRun,
    Evaluator,
    JudgmentRecord,
    MetricRecord,
    Protocol,
    Regression,
    Source,
)
from registry.domain.judgments import Verdict
from registry.errors import AlreadyExists, InvalidInput, NotFound

__all__ = ["RUN_STATUSES", "SqlAlchemyStore", "head_from_files", "parse_ref"]

_UPSERT_CHUNK = 500
"""Judgments per INSERT statement (13 parameters each: under SQLite's bound-parameter limit)."""


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


def _judgment(row: SqlJudgment) -> JudgmentRecord:
    return JudgmentRecord(key=row.evaluator_sha256, example_hash=row.example_hash, order=row.order,
                          sample=row.sample,
                          verdict=Verdict(label=row.verdict, score=row.score, prob_a=row.prob_a, parsed=row.parsed,
                                          raw=row.raw, prompt_tokens=row.prompt_tokens,
                                          completion_tokens=row.completion_tokens, seconds=row.seconds))


class SqlAlchemyStore(AbstractStore):
    """Registry metadata in a SQL database (SQLite file or PostgreSQL).

    Each call runs in a managed session of its own
    (:func:`~registry.adapters.store.db.managed_session`), unless the calling thread has a
    :meth:`unit_of_work` open on this store: then it runs in that unit's session. (Per thread, so
    the flows' worker threads never share a session; ambient, so a use case that calls another
    inside its unit of work joins it instead of waiting on its own lock.)"""

    def __init__(self, db_url: str, *, check: bool = True) -> None:
        self.engine = create_engine_for(db_url)
        if check and not _at_head(self.engine):
            check_schema(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._open = threading.local()
        """``session``: the session of the unit of work the current thread has open, if any."""

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def session(self) -> Iterator[Session]:
        """The one managed session (commit / rollback / error translation); inside a unit of work,
        that unit's session. For this package and for tests: services use the entity methods."""
        current = getattr(self._open, "session", None)
        if current is not None:
            yield current
            return
        with managed_session(self._sessions) as s:
            yield s

    def in_unit_of_work(self) -> bool:
        return getattr(self._open, "session", None) is not None

    @contextmanager
    def unit_of_work(self) -> Iterator[SqlAlchemyStore]:
        if getattr(self._open, "session", None) is not None:  # nested: join the open unit
            yield self
            return
        with managed_session(self._sessions) as s:
            self._open.session = s
            try:
                yield self
            finally:
                self._open.session = None

    @contextmanager
    def claim_pair(self, evaluator: str, dataset: str, *, wait: float | None = 0) -> Iterator[bool]:
        key = claim_key(evaluator, dataset)
        held = self._held_claims()
        if key in held:  # re-entrant in the thread that holds it (a flow's pair, then its run)
            yield True
            return
        with advisory_lock(self.engine, key, wait=wait) as got:
            if got:
                held.add(key)
            try:
                yield got
            finally:
                held.discard(key)

    def _held_claims(self) -> set[int]:
        held = getattr(self._open, "claims", None)
        if held is None:
            held = self._open.claims = set()
        return held

    def _serialize_writers(self, s: Session, what: str) -> None:
        """Make the calling transaction the only writer of ``what`` until it ends: on PostgreSQL a
        transaction-level advisory lock on ``what``, on SQLite the database's write lock (``BEGIN
        IMMEDIATE``, waiting up to the busy timeout; already held when the transaction wrote)."""
        backend = self.engine.url.get_backend_name()
        if backend == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": claim_key("writer", what)})
        elif backend == "sqlite":
            conn = s.connection()
            if not conn.connection.dbapi_connection.in_transaction:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

    def close(self) -> None:
        self.engine.dispose()

    # ----------------------------------------------------------------------- sources
    def _upsert_source(self, s: Session, source: Source) -> SqlSource:
        row = s.scalar(select(SqlSource).where(SqlSource.name == source.name))
        if row is None:
            row = SqlSource(name=source.name, title=source.title, origin=source.origin,
                            license=source.license, citation=source.citation)
            try:
                with s.begin_nested():
                    s.add(row)
                    s.flush()
            except IntegrityError:  # a concurrent writer added it first
                row = s.scalar(select(SqlSource).where(SqlSource.name == source.name))
                if row is None:
                    raise
        return row

    def list_sources(self) -> list[Source]:
        with self.session() as s:
            return [r.to_entity() for r in s.scalars(select(SqlSource).order_by(SqlSource.name))]

    # ---------------------------------------------------------------------- datasets
    def _dataset(self, s: Session, name: str) -> SqlDataset:
        row = s.scalar(select(SqlDataset).where(SqlDataset.name == name))
        if row is None:
            raise NotFound.named("dataset", name, s.scalars(select(SqlDataset.name)).all())
        return row

    @staticmethod
    def _check_task_type(row: SqlDataset, task_type: str) -> None:
        if row.task_type != task_type:
            raise InvalidInput(f"dataset {row.name!r} is a {row.task_type} dataset; this input is {task_type}",
                               field="task_type", hint="register it under another name")

    def list_datasets(self, task_type: str | None = None) -> list[Dataset]:
        with self.session() as s:
            q = select(SqlDataset).options(selectinload(SqlDataset.versions), selectinload(SqlDataset.source))
            if task_type:
                q = q.where(SqlDataset.task_type == task_type)
            return [r.to_entity() for r in s.scalars(q.order_by(SqlDataset.name))]

    def counts(self) -> dict[str, int]:
        with self.session() as s:
            return {
                "sources": s.scalar(select(func.count()).select_from(SqlSource)) or 0,
                "datasets": s.scalar(select(func.count()).select_from(SqlDataset)) or 0,
                "dataset_versions": s.scalar(select(func.count()).select_from(SqlDatasetVersion)) or 0,
            }

    # ---------------------------------------------------------------------- versions
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

    def _latest_version_row(self, s: Session, dataset: SqlDataset) -> SqlDatasetVersion | None:
        return s.scalar(select(SqlDatasetVersion).where(SqlDatasetVersion.dataset_id == dataset.id)
                        .order_by(SqlDatasetVersion.version.desc()).limit(1))

    def get_version(self, ref: str) -> DatasetVersion:
        with self.session() as s:
            return self._version_row(s, ref).to_entity()

    def list_versions(self, name: str) -> list[DatasetVersion]:
        with self.session() as s:
            return [v.to_entity() for v in self._dataset(s, name).versions]

    def latest_versions(self, task_type: str | None = None) -> dict[str, DatasetVersion]:
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

    def latest_version(self, name: str, *, task_type: str | None = None) -> DatasetVersion | None:
        with self.session() as s:
            ds = s.scalar(select(SqlDataset).where(SqlDataset.name == name))
            if ds is None:
                return None
            if task_type is not None:
                self._check_task_type(ds, task_type)
            row = self._latest_version_row(s, ds)
            return row.to_entity() if row is not None else None

    def find_version_by_hash(self, name: str, content_hash: str) -> DatasetVersion | None:
        with self.session() as s:
            row = s.scalar(select(SqlDatasetVersion).join(SqlDataset, SqlDatasetVersion.dataset_id == SqlDataset.id)
                           .where(SqlDataset.name == name, SqlDatasetVersion.content_hash == content_hash))
            return row.to_entity() if row is not None else None

    def find_version_by_fingerprint(self, name: str, fingerprint: str) -> DatasetVersion | None:
        with self.session() as s:
            row = s.scalar(select(SqlDatasetVersion).join(SqlDataset, SqlDatasetVersion.dataset_id == SqlDataset.id)
                           .where(SqlDataset.name == name, SqlDatasetVersion.input_fingerprint == fingerprint)
                           .order_by(SqlDatasetVersion.version.desc()).limit(1))
            return row.to_entity() if row is not None else None

    def add_version(self, *, dataset: str, task_type: str, description: str, source: Source | None,
                    parent: int | None, **fields: Any) -> tuple[DatasetVersion, int, bool]:
        with self.session() as s:
            # one registering transaction at a time: the same content registered at once gives one
            # version (the later writers get it), different contents get consecutive numbers
            self._serialize_writers(s, "dataset_versions")
            same = s.scalar(select(SqlDatasetVersion).join(SqlDataset, SqlDatasetVersion.dataset_id == SqlDataset.id)
                            .where(SqlDataset.name == dataset,
                                   SqlDatasetVersion.content_hash == fields["content_hash"]))
            if same is not None:
                return same.to_entity(), same.id, False
            src = self._upsert_source(s, source) if source is not None else None
            ds = s.scalar(select(SqlDataset).where(SqlDataset.name == dataset))
            if ds is None:
                ds = SqlDataset(name=dataset, task_type=task_type, source=src, description=description)
                s.add(ds)
                s.flush()
            else:
                self._check_task_type(ds, task_type)
                if ds.source is None and src is not None:
                    ds.source = src
            latest = s.scalar(select(func.max(SqlDatasetVersion.version)).where(SqlDatasetVersion.dataset_id == ds.id))
            if latest != parent:
                raise ParentMoved(f"dataset {dataset!r} got version {latest} while this one was prepared "
                                  f"against {parent if parent is not None else 'no version'}")
            parent_row = self._version_row(s, f"{dataset}@{parent}") if parent is not None else None
            try:
                with s.begin_nested():  # a writer that takes no lock (an older client) may still race
                    row = SqlDatasetVersion(dataset=ds, version=(latest or 0) + 1, parent=parent_row, **fields)
                    s.add(row)
                    s.flush()
            except IntegrityError:
                same = s.scalar(select(SqlDatasetVersion).where(
                    SqlDatasetVersion.dataset_id == ds.id, SqlDatasetVersion.content_hash == fields["content_hash"]))
                if same is not None:
                    return same.to_entity(), same.id, False
                raise ParentMoved(f"dataset {dataset!r}: version {(latest or 0) + 1} was taken by another writer") from None
            self._next_generation(s, ds.task_type)  # a new latest version: task-type rankings change
            return row.to_entity(), row.id, True

    # ------------------------------------------------------------------- checkpoints
    def _autorater(self, s: Session, name: str) -> SqlAutorater:
        row = s.scalar(select(SqlAutorater).where(SqlAutorater.name == name))
        if row is None:
            raise NotFound.named("autorater", name, s.scalars(select(SqlAutorater.name)).all())
        return row

    def _checkpoint_row(self, s: Session, ref: str) -> SqlCheckpoint:
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

    def get_checkpoint(self, ref: str) -> Checkpoint:
        with self.session() as s:
            return self._checkpoint_row(s, ref).to_entity()

    def list_checkpoints(self, autorater: str | None = None) -> list[Checkpoint]:
        with self.session() as s:
            q = select(SqlCheckpoint).join(SqlAutorater)
            if autorater:
                q = q.where(SqlAutorater.name == autorater)
            return [c.to_entity() for c in s.scalars(q.order_by(SqlAutorater.name, SqlCheckpoint.version))]

    def parent_checkpoint(self, ref: str) -> Checkpoint | None:
        with self.session() as s:
            parent = self._checkpoint_row(s, ref).parent
            return parent.to_entity() if parent is not None else None

    def add_checkpoint(self, *, autorater: str, kind: str, uri: str, sha256: str, format: str,
                       model_card: str | None = None, tags: dict | None = None, lineage: dict | None = None,
                       parent: str | None = None, description: str = "") -> tuple[Checkpoint, bool]:
        with self.session() as s:
            self._serialize_writers(s, "catalog")  # concurrent registrations: one version per content
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
                return existing.to_entity(), False
            number = (s.scalar(select(func.max(SqlCheckpoint.version))
                               .where(SqlCheckpoint.autorater_id == ar.id)) or 0) + 1
            row = SqlCheckpoint(autorater=ar, version=number, uri=uri, sha256=sha256, format=format,
                                model_card=model_card, tags=tags or {}, lineage=lineage or {},
                                parent=self._checkpoint_row(s, parent) if parent else None)
            s.add(row)
            s.flush()
            return row.to_entity(), True

    def set_alias(self, ref: str, alias: str) -> Checkpoint:
        if alias.removeprefix("v").isdigit() or alias == "latest":
            raise InvalidInput(f"alias {alias!r} would shadow a version reference", field="alias")
        with self.session() as s:
            ckpt = self._checkpoint_row(s, ref)
            row = s.scalar(select(SqlCheckpointAlias).where(SqlCheckpointAlias.autorater_id == ckpt.autorater_id,
                                                            SqlCheckpointAlias.alias == alias))
            if row is None:
                s.add(SqlCheckpointAlias(autorater_id=ckpt.autorater_id, alias=alias, checkpoint=ckpt))
            else:
                row.checkpoint = ckpt
                row.updated_at = utcnow()
            s.flush()
            s.expire(ckpt)
            return ckpt.to_entity()

    def alias_target(self, autorater: str, alias: str) -> Checkpoint | None:
        with self.session() as s:
            row = s.scalar(select(SqlCheckpointAlias)
                           .join(SqlAutorater, SqlCheckpointAlias.autorater_id == SqlAutorater.id)
                           .where(SqlAutorater.name == autorater, SqlCheckpointAlias.alias == alias))
            return row.checkpoint.to_entity() if row is not None else None

    # --------------------------------------------------------------------- protocols
    def upsert_protocol(self, protocol: Protocol) -> Protocol:
        with self.session() as s:
            row = s.scalar(select(SqlProtocol).where(SqlProtocol.name == protocol.name,
                                                     SqlProtocol.version == protocol.version))
            if row is None:  # a concurrent writer may be adding it: take turns, then look again
                self._serialize_writers(s, "catalog")
                row = s.scalar(select(SqlProtocol).where(SqlProtocol.name == protocol.name,
                                                         SqlProtocol.version == protocol.version))
            if row is None:
                row = SqlProtocol(name=protocol.name, version=protocol.version, sha256=protocol.sha256,
                                  config=protocol.config, description=protocol.description)
                s.add(row)
                s.flush()
            elif row.sha256 != protocol.sha256:
                raise AlreadyExists(f"protocol {protocol.name}@{protocol.version} is already registered with other "
                                    f"content (sha256 {row.sha256[:12]}); bump its version")
            return row.to_entity()

    def _protocol_row(self, s: Session, ref: str) -> SqlProtocol:
        name, _, ver = ref.partition("@")
        ver = ver.removeprefix("v") if ver[1:].isdigit() else ver
        q = select(SqlProtocol).where(SqlProtocol.name == name)
        if ver.isdigit():
            row = s.scalar(q.where(SqlProtocol.version == int(ver)))
        elif ver in ("", "latest"):
            row = s.scalar(q.order_by(SqlProtocol.version.desc()).limit(1))
        else:  # "name@x" is no version of name (never its latest)
            row = None
        if row is None:
            raise NotFound.named("protocol", ref, [f"{p.name}@{p.version}" for p in s.scalars(select(SqlProtocol))])
        return row

    def get_protocol(self, ref: str) -> Protocol:
        with self.session() as s:
            return self._protocol_row(s, ref).to_entity()

    def list_protocols(self) -> list[Protocol]:
        with self.session() as s:
            return [p.to_entity() for p in s.scalars(select(SqlProtocol).order_by(SqlProtocol.name, SqlProtocol.version))]

    def earlier_protocols(self, ref: str) -> list[Protocol]:
        with self.session() as s:
            protocol = self._protocol_row(s, ref)
            return [p.to_entity() for p in s.scalars(select(SqlProtocol).where(
                SqlProtocol.name == protocol.name, SqlProtocol.version < protocol.version)
                .order_by(SqlProtocol.version.desc()))]

    # -------------------------------------------------------------------- evaluators
    def _evaluator_row(self, s: Session, name: str) -> SqlEvaluator:
        row = s.scalar(select(SqlEvaluator).where(SqlEvaluator.name == name))
        if row is None:
            raise NotFound.named("evaluator", name, s.scalars(select(SqlEvaluator.name)).all())
        return row

    def add_evaluator(self, *, name: str, kind: str, checkpoint: str | None, protocol: str, config: dict,
                      sha256: str, price_per_1k_tokens: float | None = None) -> tuple[Evaluator, bool]:
        with self.session() as s:
            existing = s.scalar(select(SqlEvaluator).where(SqlEvaluator.sha256 == sha256))
            if existing is None:  # a concurrent writer may be adding it: take turns, then look again
                self._serialize_writers(s, "catalog")
                existing = s.scalar(select(SqlEvaluator).where(SqlEvaluator.sha256 == sha256))
            if existing is not None:
                return existing.to_entity(), False
            if s.scalar(select(SqlEvaluator).where(SqlEvaluator.name == name)) is not None:
                raise AlreadyExists(f"an evaluator named {name!r} exists with another configuration; "
                                    "choose another name")
            row = SqlEvaluator(name=name, kind=kind,
                               checkpoint=self._checkpoint_row(s, checkpoint) if checkpoint else None,
                               protocol=self._protocol_row(s, protocol), config=config, sha256=sha256,
                               price_per_1k_tokens=price_per_1k_tokens)
            s.add(row)
            s.flush()
            return row.to_entity(), True

    def get_evaluator(self, name: str) -> Evaluator:
        with self.session() as s:
            return self._evaluator_row(s, name).to_entity()

    def list_evaluators(self, *, active_only: bool = False) -> list[Evaluator]:
        with self.session() as s:
            q = select(SqlEvaluator).order_by(SqlEvaluator.name)
            if active_only:
                q = q.where(SqlEvaluator.active.is_(True))
            return [e.to_entity() for e in s.scalars(q)]

    def evaluator_kinds(self) -> dict[str, str]:
        with self.session() as s:
            return dict(s.execute(select(SqlEvaluator.name, SqlEvaluator.kind).order_by(SqlEvaluator.name)).all())

    def evaluators_of(self, checkpoint: str, protocol: str) -> list[Evaluator]:
        with self.session() as s:
            ckpt, proto = self._checkpoint_row(s, checkpoint), self._protocol_row(s, protocol)
            return [e.to_entity() for e in s.scalars(select(SqlEvaluator).where(
                SqlEvaluator.checkpoint_id == ckpt.id, SqlEvaluator.protocol_id == proto.id).order_by(SqlEvaluator.id))]

    # -------------------------------------------------------------------------- runs
    def _run_row(self, s: Session, run_id: int) -> SqlEvaluationRun:
        row = s.get(SqlEvaluationRun, run_id)
        if row is None:
            raise NotFound(f"no evaluation run {run_id}")
        return row

    @staticmethod
    def _set_metrics(s: Session, run: SqlEvaluationRun, metrics: Iterable[MetricRecord]) -> None:
        run.metrics.clear()
        s.flush()
        for m in metrics:
            run.metrics.append(SqlMetric(name=m.name, slice=m.slice, value=m.value, ci_low=m.ci_low,
                                         ci_high=m.ci_high, n=m.n, extra=m.extra))
        s.flush()

    def start_run(self, evaluator: str, dataset: str, *, seed: int) -> EvaluationRun:
        with self.session() as s:
            run = SqlEvaluationRun(evaluator=self._evaluator_row(s, evaluator),
                                   dataset_version=self._version_row(s, dataset), status="running", seed=seed,
                                   provenance={})
            s.add(run)
            s.flush()
            return run.to_entity()

    def finish_run(self, run_id: int, *, seconds: float, n_examples: int, n_judgments: int, n_executed: int,
                   n_cached: int, prompt_tokens: int, completion_tokens: int, cost_usd: float | None,
                   predictions_uri: str, predictions_sha256: str, provenance: dict[str, Any]) -> None:
        with self.session() as s:
            run = self._run_row(s, run_id)
            run.status, run.finished_at, run.seconds = "succeeded", utcnow(), seconds
            run.n_examples, run.n_judgments = n_examples, n_judgments
            run.n_executed, run.n_cached = n_executed, n_cached
            run.prompt_tokens, run.completion_tokens, run.cost_usd = prompt_tokens, completion_tokens, cost_usd
            run.predictions_uri, run.predictions_sha256 = predictions_uri, predictions_sha256
            run.provenance = provenance
            self._refresh_standing(s, run)

    def fail_run(self, run_id: int, *, error: str, seconds: float | None = None) -> None:
        with self.session() as s:
            run = self._run_row(s, run_id)
            run.status, run.finished_at, run.seconds, run.error = "failed", utcnow(), seconds, error

    def abandon_running(self, evaluator: str, dataset: str, *, error: str) -> list[int]:
        with self.session() as s:
            ev, dv = self._evaluator_row(s, evaluator), self._version_row(s, dataset)
            rows = s.scalars(select(SqlEvaluationRun).where(SqlEvaluationRun.evaluator_id == ev.id,
                                                            SqlEvaluationRun.dataset_version_id == dv.id,
                                                            SqlEvaluationRun.status == "running")).all()
            for row in rows:
                row.status, row.finished_at, row.error = "failed", utcnow(), error
            return [row.id for row in rows]

    def record_metrics(self, run_id: int, metrics: Iterable[MetricRecord]) -> None:
        with self.session() as s:
            run = self._run_row(s, run_id)
            self._set_metrics(s, run, metrics)
            self._refresh_standing(s, run, getattr(metrics, "examples", None))

    def add_finished_run(self, *, evaluator: str, dataset: str, started_at: datetime, finished_at: datetime,
                         seconds: float, seed: int, n_examples: int, n_judgments: int, predictions_uri: str,
                         predictions_sha256: str, provenance: dict[str, Any], metrics: list[MetricRecord],
                         n_executed: int = 0, n_cached: int = 0) -> EvaluationRun:
        with self.session() as s:
            run = SqlEvaluationRun(
                evaluator=self._evaluator_row(s, evaluator), dataset_version=self._version_row(s, dataset),
                status="succeeded", seed=seed, started_at=started_at, finished_at=finished_at, seconds=seconds,
                n_examples=n_examples, n_judgments=n_judgments, n_executed=n_executed, n_cached=n_cached,
                predictions_uri=predictions_uri, predictions_sha256=predictions_sha256, provenance=provenance)
            s.add(run)
            s.flush()
            self._set_metrics(s, run, metrics)
            self._refresh_standing(s, run, getattr(metrics, "examples", None))
            return run.to_entity()

    def get_run(self, run_id: int) -> EvaluationRun:
        with self.session() as s:
            return self._run_row(s, run_id).to_entity()

    def list_runs(self, *, dataset: str | None = None, evaluator: str | None = None, status: str | None = None,
                  limit: int | None = None) -> list[EvaluationRun]:
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
                q = q.where(SqlEvaluationRun.evaluator_id == self._evaluator_row(s, evaluator).id)
            if status is not None:
                q = q.where(SqlEvaluationRun.status == status)
            q = q.options(contains_eager(SqlEvaluationRun.evaluator),
                          contains_eager(SqlEvaluationRun.dataset_version).contains_eager(SqlDatasetVersion.dataset),
                          selectinload(SqlEvaluationRun.metrics))
            q = q.order_by(SqlEvaluationRun.id.desc())  # ids grow with every run: newest first
            return [r.to_entity() for r in s.scalars(q.limit(limit) if limit else q)]

    def latest_runs(self, *, datasets: Iterable[str] | None = None, evaluator: str | None = None,
                    status: str = "succeeded") -> list[EvaluationRun]:
        with self.session() as s:
            newest = (select(func.max(SqlEvaluationRun.id)).where(SqlEvaluationRun.status == status)
                      .group_by(SqlEvaluationRun.evaluator_id, SqlEvaluationRun.dataset_version_id))
            q = select(SqlEvaluationRun).where(SqlEvaluationRun.id.in_(newest))
            if datasets is not None:
                ids = [self._version_row(s, ref).id for ref in datasets]
                q = q.where(SqlEvaluationRun.dataset_version_id.in_(ids))
            if evaluator is not None:
                q = q.join(SqlEvaluator).where(SqlEvaluator.name == evaluator)
            q = q.options(selectinload(SqlEvaluationRun.metrics))
            return [r.to_entity() for r in s.scalars(q.order_by(SqlEvaluationRun.id))]

    def previous_version_run(self, evaluator: str, dataset: str) -> EvaluationRun | None:
        with self.session() as s:
            ev, version = self._evaluator_row(s, evaluator), self._version_row(s, dataset)
            row = s.scalar(select(SqlEvaluationRun).join(SqlDatasetVersion, SqlEvaluationRun.dataset_version)
                           .where(SqlEvaluationRun.evaluator_id == ev.id, SqlEvaluationRun.status == "succeeded",
                                  SqlDatasetVersion.dataset_id == version.dataset_id,
                                  SqlDatasetVersion.version < version.version)
                           .order_by(SqlDatasetVersion.version.desc(), SqlEvaluationRun.id.desc()).limit(1))
            return row.to_entity() if row is not None else None

    def checkpoint_runs(self, checkpoint: str) -> list[EvaluationRun]:
        with self.session() as s:
            ckpt = self._checkpoint_row(s, checkpoint)
            return [r.to_entity() for r in s.scalars(
                select(SqlEvaluationRun).join(SqlEvaluator, SqlEvaluationRun.evaluator)
                .where(SqlEvaluator.checkpoint_id == ckpt.id, SqlEvaluationRun.status == "succeeded")
                .options(selectinload(SqlEvaluationRun.metrics)).order_by(SqlEvaluationRun.id))]

    def find_run_by_provenance(self, evaluator: str, version_ref: str, key: str, value: Any) -> EvaluationRun | None:
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

    # ---------------------------------------------------------------- judgment cache
    # Per-judgment rows and, in the same table, bulk Arrow segments (judgment_segments.py): rows are
    # the example hashes (hex digits, >= '0'), segments the '#i' / '#d' rows (< '0').
    def cached_judgments(self, key: str, example_hashes: Iterable[str], order: int,
                         sample: int) -> dict[str, JudgmentRecord]:
        hashes = list(dict.fromkeys(example_hashes))
        if not hashes:
            return {}
        from registry.adapters.store.judgment_segments import hex_to_binary

        try:
            binary = hex_to_binary(hashes)
        except ValueError:  # not example hashes (32 hex digits): rows only
            with self.session() as s:
                q = select(SqlJudgment).where(SqlJudgment.evaluator_sha256 == key, SqlJudgment.order == order,
                                              SqlJudgment.sample == sample, SqlJudgment.example_hash.in_(hashes))
                return {j.example_hash: _judgment(j) for j in s.scalars(q)}
        found, table = self.judgment_lookup(key, order, sample).find(binary)
        cols = {c: table.column(c).to_pylist() for c in table.column_names}
        out: dict[str, JudgmentRecord] = {}
        for i in found.nonzero()[0].tolist():
            out[hashes[i]] = JudgmentRecord(key=key, example_hash=hashes[i], order=order, sample=sample, verdict=Verdict(
                label=cols["verdict"][i], score=cols["score"][i], prob_a=cols["prob_a"][i], parsed=cols["parsed"][i],
                raw=cols["raw"][i], prompt_tokens=cols["prompt_tokens"][i],
                completion_tokens=cols["completion_tokens"][i], seconds=cols["seconds"][i]))
        return out

    def judgment_lookup(self, key: str, order: int, sample: int, *, memory_bytes: int = 256 << 20):
        from registry.adapters.store.judgment_segments import (
            DATA_PREFIX,
            FORMAT,
            INDEX_PREFIX,
            JUDGMENT_FIELDS,
            JudgmentLookup,
            SegmentBackend,
        )

        t = SqlJudgment.__table__
        mine = (t.c.evaluator_sha256 == key, t.c.order == order, t.c.sample == sample)
        fields = [t.c[f] for f in JUDGMENT_FIELDS]

        def indexes() -> list[tuple[str, int, str]]:
            q = select(t.c.example_hash, t.c.prompt_tokens, t.c.raw).where(
                *mine, t.c.example_hash >= INDEX_PREFIX, t.c.example_hash < INDEX_PREFIX[0] + chr(ord("i") + 1))
            with self.session() as s:
                return [(h[2:], n, raw) for h, n, raw in s.execute(q)]

        def data(sid: str) -> str | None:
            with self.session() as s:
                return s.scalar(select(t.c.raw).where(*mine, t.c.example_hash == DATA_PREFIX + sid))

        def write(add: list[tuple[str, int, str, str]], delete: list[str]) -> None:
            now = utcnow()
            rows = [{"evaluator_sha256": key, "example_hash": prefix + sid, "order": order, "sample": sample,
                     "verdict": FORMAT, "score": None, "prob_a": None, "parsed": True, "raw": text,
                     "prompt_tokens": n, "completion_tokens": 0, "seconds": 0.0, "created_at": now}
                    for sid, n, index, blob in add for prefix, text in ((INDEX_PREFIX, index), (DATA_PREFIX, blob))]
            with self.session() as s:
                if rows:
                    s.execute(t.insert(), rows)
                gone = [p + sid for sid in delete for p in (INDEX_PREFIX, DATA_PREFIX)]
                for i in range(0, len(gone), 900):
                    s.execute(t.delete().where(*mine, t.c.example_hash.in_(gone[i:i + 900])))

        def row_count() -> int:
            with self.session() as s:
                return s.scalar(select(func.count()).select_from(t).where(*mine, t.c.example_hash >= "0")) or 0

        def rows(hexes: list[str] | None) -> list[tuple]:
            q = select(t.c.example_hash, *fields).where(*mine, t.c.example_hash >= "0")
            with self.session() as s:
                if hexes is None:
                    return [tuple(r) for r in s.execute(q)]
                out: list[tuple] = []
                for i in range(0, len(hexes), 900):  # under SQLite's bound-parameter limit
                    out += [tuple(r) for r in s.execute(q.where(t.c.example_hash.in_(hexes[i:i + 900])))]
                return out

        return JudgmentLookup(SegmentBackend(indexes=indexes, data=data, write=write, row_count=row_count, rows=rows),
                              memory_bytes=memory_bytes)

    def save_judgments(self, records: Iterable[JudgmentRecord]) -> None:
        # one upsert per chunk (INSERT … ON CONFLICT (key) DO UPDATE, on both backends): writers of
        # the same judgments at once never fail on the primary key, and none is lost; rows in key
        # order, so that two transactions lock shared keys in the same order (no deadlock)
        rows: dict[tuple[str, str, int, int], dict[str, Any]] = {}
        for r in records:
            v = r.verdict
            rows[(r.key, r.example_hash, r.order, r.sample)] = {
                "evaluator_sha256": r.key, "example_hash": r.example_hash, "order": r.order, "sample": r.sample,
                "verdict": v.label, "score": v.score, "prob_a": v.prob_a, "parsed": v.parsed, "raw": v.raw,
                "prompt_tokens": v.prompt_tokens, "completion_tokens": v.completion_tokens, "seconds": v.seconds,
                "created_at": utcnow()}
        if not rows:
            return
        ordered = [rows[k] for k in sorted(rows)]
        if self.engine.url.get_backend_name() == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        table = SqlJudgment.__table__
        keys = [c.name for c in table.primary_key.columns]
        with self.session() as s:
            for i in range(0, len(ordered), _UPSERT_CHUNK):
                stmt = insert(table).values(ordered[i:i + _UPSERT_CHUNK])
                update = {c: stmt.excluded[c] for c in ordered[0] if c not in keys and c != "created_at"}
                s.execute(stmt.on_conflict_do_update(index_elements=keys, set_=update))

    def count_judgments(self, key: str | None = None) -> int:
        from registry.adapters.store.judgment_segments import INDEX_PREFIX, distinct_count

        t = SqlJudgment.__table__
        mine = [t.c.evaluator_sha256 == key] if key else []
        with self.session() as s:
            total = s.scalar(select(func.count()).select_from(t).where(*mine, t.c.example_hash >= "0")) or 0
            groups: dict[tuple[str, int, int], list[str]] = {}
            q = select(t.c.evaluator_sha256, t.c.order, t.c.sample, t.c.raw).where(
                *mine, t.c.example_hash >= INDEX_PREFIX, t.c.example_hash < INDEX_PREFIX[0] + chr(ord("i") + 1))
            for k, o, smp, raw in s.execute(q):
                groups.setdefault((k, o, smp), []).append(raw)
            for (k, o, smp), indexes in groups.items():
                hashes = s.scalars(select(t.c.example_hash).where(
                    t.c.evaluator_sha256 == k, t.c.order == o, t.c.sample == smp, t.c.example_hash >= "0")).all()
                total += distinct_count(indexes, hashes) - len(hashes)
            return total

    # ------------------------------------------------------------------- regressions
    @staticmethod
    def _find_regression(s: Session, *, candidate_run_id: int, baseline_run_id: int, metric: str,
                         slice: str) -> SqlRegression | None:
        return s.scalar(select(SqlRegression).where(
            SqlRegression.candidate_run_id == candidate_run_id, SqlRegression.baseline_run_id == baseline_run_id,
            SqlRegression.metric == metric, SqlRegression.slice == slice))

    def add_regression(self, **fields: Any) -> tuple[Regression, bool]:
        key = {k: fields[k] for k in ("candidate_run_id", "baseline_run_id", "metric", "slice")}
        with self.session() as s:
            existing = self._find_regression(s, **key)
            if existing is not None:
                return existing.to_entity(), False
            row = SqlRegression(**fields)
            try:
                with s.begin_nested():
                    s.add(row)
                    s.flush()
            except IntegrityError:  # a concurrent writer recorded it first
                existing = self._find_regression(s, **key)
                if existing is None:
                    raise
                return existing.to_entity(), False
            return row.to_entity(), True

    def _regression_row(self, s: Session, regression_id: int) -> SqlRegression:
        row = s.get(SqlRegression, regression_id)
        if row is None:
            known = s.scalars(select(SqlRegression.id).order_by(SqlRegression.id.desc()).limit(5)).all()
            raise NotFound(f"no regression {regression_id}; latest ids: {known or 'none recorded'} "
                           "(see `autorater regressions list`)")
        return row

    def get_regression(self, regression_id: int) -> Regression:
        with self.session() as s:
            return self._regression_row(s, regression_id).to_entity()

    def acknowledge_regression(self, regression_id: int, *, note: str, by: str | None) -> Regression:
        with self.session() as s:
            row = self._regression_row(s, regression_id)
            row.status, row.ack_note, row.ack_by, row.acked_at = "acknowledged", note, by, utcnow()
            s.flush()
            return row.to_entity()

    def list_regressions(self, *, status: str | None = None, evaluator: str | None = None,
                         dataset: str | None = None, candidate_run_id: int | None = None,
                         checkpoint: str | None = None) -> list[Regression]:
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
            if checkpoint is not None:
                q = q.where(SqlEvaluator.checkpoint_id == self._checkpoint_row(s, checkpoint).id)
            runs = [selectinload(rel).selectinload(SqlEvaluationRun.evaluator) for rel in
                    (SqlRegression.candidate_run, SqlRegression.baseline_run)]
            runs += [selectinload(rel).selectinload(SqlEvaluationRun.dataset_version)
                     .selectinload(SqlDatasetVersion.dataset) for rel in
                     (SqlRegression.candidate_run, SqlRegression.baseline_run)]
            return [r.to_entity() for r in s.scalars(q.options(*runs).order_by(SqlRegression.id.desc()))]

    # --------------------------------------------------------------------- standings
    def _refresh_standing(self, s: Session, run: SqlEvaluationRun, examples: bytes | None = None) -> None:
        """Keep the standings as run ``run`` finishes (see :class:`AbstractStore`): its per-example
        judgments when given; the leaderboard row of its (evaluator, version) unless a newer run
        holds it (checked in the UPDATE itself, so a concurrent finish of a newer run wins); then the
        version's cached tests are dropped and its task type's generation moves on."""
        if run.status != "succeeded":
            return
        dv = run.dataset_version
        if examples is not None:
            self._put_examples(s, run.id, dv.id, examples)
        fields = _standing_fields(dv, run.metrics)
        pair = (SqlStanding.dataset_version_id == dv.id, SqlStanding.evaluator_id == run.evaluator_id)

        def take_over() -> bool:
            return s.execute(update(SqlStanding).where(*pair, SqlStanding.run_id <= run.id)
                             .values(run_id=run.id, **fields)
                             .execution_options(synchronize_session=False)).rowcount > 0

        if not take_over():
            if s.scalar(select(SqlStanding.run_id).where(*pair)) is not None:
                return                     # a newer run of the evaluator holds the row: nothing changes
            try:
                with s.begin_nested():
                    s.add(SqlStanding(dataset_version_id=dv.id, evaluator_id=run.evaluator_id, run_id=run.id,
                                      **fields))
                    s.flush()
            except IntegrityError:         # a concurrent finish of the same pair inserted it first
                if not take_over():
                    return
        s.execute(delete(SqlStandingTest).where(SqlStandingTest.dataset_version_id == dv.id)
                  .execution_options(synchronize_session=False))
        stamp = self._next_generation(s, dv.dataset.task_type)
        # the row's change stamp: the generation this transaction moved to. The generation row stays
        # locked until commit (UPDATE), so stamps are unique per task type and commit in their order: a
        # reader that saw generation g has seen every row stamped up to g (revision 0007)
        s.execute(update(SqlStanding).where(*pair, SqlStanding.run_id == run.id).values(changed=stamp)
                  .execution_options(synchronize_session=False))

    @staticmethod
    def _next_generation(s: Session, task_type: str) -> int:
        """Move ``task_type``'s generation on in this transaction; the generation it moved to."""
        row = SqlStandingGeneration
        bump = (update(row).where(row.task_type == task_type).values(generation=row.generation + 1)
                .execution_options(synchronize_session=False))
        if not s.execute(bump).rowcount:
            try:
                with s.begin_nested():
                    s.add(row(task_type=task_type, generation=1 + secrets.randbelow(2**30)))
                    s.flush()
            except IntegrityError:         # created by a concurrent writer meanwhile
                s.execute(bump)
        return int(s.scalar(select(row.generation).where(row.task_type == task_type)))

    @staticmethod
    def _put_examples(s: Session, run_id: int, version_id: int, data: bytes) -> None:
        encoding = data[:data.index(b"\n")].decode() if b"\n" in data[:64] else "unknown"
        row = s.get(SqlRunExamples, run_id)
        if row is not None:
            row.data, row.encoding = data, encoding[:32]
            s.flush()
            return
        try:
            with s.begin_nested():
                s.add(SqlRunExamples(run_id=run_id, dataset_version_id=version_id, encoding=encoding[:32], data=data))
                s.flush()
        except IntegrityError:             # stored by a concurrent query meanwhile (the same judgments)
            pass

    def _version_ids(self, s: Session, refs: Iterable[str]) -> dict[int, str]:
        """Version row id → ``name@version`` of dataset versions (``name`` = latest)."""
        out: dict[int, str] = {}
        for ref in refs:
            name, version = parse_ref(ref)
            q = (select(SqlDatasetVersion.id, SqlDatasetVersion.version)
                 .join(SqlDataset, SqlDatasetVersion.dataset_id == SqlDataset.id).where(SqlDataset.name == name))
            row = s.execute(q.order_by(SqlDatasetVersion.version.desc()).limit(1) if version is None
                            else q.where(SqlDatasetVersion.version == version)).first()
            if row is None:
                self._version_row(s, ref)  # raises the NotFound with its hints
            out[row[0]] = f"{name}@{row[1]}"
        return out

    def standings(self, datasets: Iterable[str], metric: str | None = None, *,
                  with_metrics: bool = False) -> list[StandingRecord]:
        with self.session() as s:
            return self._standings(s, self._version_ids(s, datasets), metric, with_metrics)

    def standing_values(self, datasets: Iterable[str], metric: str, *,
                        changed_after: int | None = None) -> list[tuple[str, str, int, float | None]]:
        q = _board_statements()
        since = "" if changed_after is None else "_since"
        with self.session() as s:
            refs = self._version_ids(s, datasets)
            if not refs:
                return []
            conn, params = s.connection(), {"vids": list(refs), "metric": metric, "since": changed_after}
            rows = (conn.execute(q[f"values_own{since}"], params).all()
                    + conn.execute(q[f"values_joined{since}"], params).all())
            return [(r[0], refs[r[1]], r[2], r[3]) for r in rows]

    def board(self, dataset: str, metric: str | None = None, *, n_boot: int, seed: int) -> StandingsBoard:
        q = _board_statements()
        name, version = parse_ref(dataset)
        with self.session() as s:
            conn = s.connection()
            found = (conn.execute(q["latest"], {"name": name}) if version is None
                     else conn.execute(q["version"], {"name": name, "version": version})).first()
            if found is None:
                self._version_row(s, dataset)  # raises the NotFound with its hints
            version_id, number, task_type, stats, generation = found
            ref = f"{name}@{number}"
            rows = self._standings(s, {version_id: ref}, metric, True)
            tests: dict[int, dict[int, CachedTest]] = {}
            if rows:
                for best, cand, p, diff, test in conn.execute(q["tests"], {
                        "vid": version_id, "metric": metric or rows[0].metric, "n_boot": n_boot, "seed": seed}):
                    tests.setdefault(best, {})[cand] = CachedTest(p_value=p, difference=diff, test=test)
            return StandingsBoard(dataset=ref, task_type=task_type, statistics=_json_loads()(stats) if stats else {},
                                  rows=rows, tests=tests, generation=generation)

    def _standings(self, s: Session, refs: dict[int, str], metric: str | None,
                   with_metrics: bool) -> list[StandingRecord]:
        """The standings rows of the versions ``refs`` (row id → ``name@version``): ``metric``'s values
        (the headline's values are on the row; another metric's come from its metrics row)."""
        if not refs:
            return []
        q, conn = _board_statements(), s.connection()
        which = "metrics" if with_metrics else "plain"
        params = {"vids": list(refs)}
        if metric is None:
            rows = conn.execute(q[f"own_{which}"], params).all()
        else:
            params["metric"] = metric
            rows = conn.execute(q[f"own_metric_{which}"], params).all()
            rows += conn.execute(q[f"joined_{which}"], params).all()
        loads = _json_loads()
        return [StandingRecord(evaluator=r[0], dataset=refs[r[1]], run_id=r[2], metric=r[3], value=r[4],
                               ci_low=r[5], ci_high=r[6], n=r[7], n_aligned=r[8], n_rows=r[9],
                               metrics=loads(r[10]) if with_metrics else None) for r in rows]

    def run_examples(self, run_ids: Iterable[int]) -> dict[int, bytes]:
        ids = list(run_ids)
        out: dict[int, bytes] = {}
        with self.session() as s:
            for i in range(0, len(ids), 900):  # under SQLite's bound-parameter limit
                out.update(s.execute(select(SqlRunExamples.run_id, SqlRunExamples.data)
                                     .where(SqlRunExamples.run_id.in_(ids[i:i + 900]))).tuples().all())
        return {k: bytes(v) for k, v in out.items()}

    def save_run_examples(self, run_id: int, data: bytes) -> None:
        with self.session() as s:
            self._put_examples(s, run_id, self._run_row(s, run_id).dataset_version_id, data)

    def cached_tests(self, dataset: str, metric: str, best_run_id: int, *, n_boot: int,
                     seed: int) -> dict[int, CachedTest]:
        with self.session() as s:
            (version_id,) = self._version_ids(s, [dataset])
            t = SqlStandingTest
            rows = s.execute(select(t.candidate_run_id, t.p_value, t.difference, t.test).where(
                t.dataset_version_id == version_id, t.metric == metric, t.best_run_id == best_run_id,
                t.n_boot == n_boot, t.seed == seed)).all()
            return {r[0]: CachedTest(p_value=r[1], difference=r[2], test=r[3]) for r in rows}

    def save_tests(self, dataset: str, metric: str, best_run_id: int, tests: dict[int, CachedTest], *,
                   n_boot: int, seed: int) -> None:
        if not tests:
            return
        with self.session() as s:
            (version_id,) = self._version_ids(s, [dataset])
            rows = [{"dataset_version_id": version_id, "metric": metric, "best_run_id": best_run_id,
                     "n_boot": n_boot, "seed": seed, "candidate_run_id": c, "p_value": t.p_value,
                     "difference": t.difference, "test": t.test} for c, t in tests.items()]
            try:
                with s.begin_nested():
                    s.execute(insert(SqlStandingTest), rows)
            except IntegrityError:         # a concurrent query cached some of them first: keep those
                for row in rows:
                    try:
                        with s.begin_nested():
                            s.execute(insert(SqlStandingTest), [row])
                    except IntegrityError:
                        pass

    def standings_generation(self, task_type: str) -> int:
        with self.session() as s:
            return s.scalar(select(SqlStandingGeneration.generation)
                            .where(SqlStandingGeneration.task_type == task_type)) or 0

    def cached_ranking(self, key: str, task_type: str) -> tuple[int, bytes | None]:
        with self.session() as s:
            generation, data = s.connection().execute(_ranking_statements()["one"],
                                                      {"key": key, "task_type": task_type}).one()
            return int(generation), (bytes(data) if data is not None else None)

    def save_ranking(self, key: str, task_type: str, generation: int, ranking: bytes) -> None:
        with self.session() as s:
            row = s.get(SqlStandingRanking, key)
            if row is not None:
                if row.generation <= generation:
                    row.task_type, row.generation, row.ranking = task_type, generation, ranking
                return
            try:
                with s.begin_nested():
                    s.add(SqlStandingRanking(key=key, task_type=task_type, generation=generation, ranking=ranking))
                    s.flush()
            except IntegrityError:         # cached by a concurrent query meanwhile
                pass

    def cached_ranking_parts(self, keys: Iterable[str], *, current: bool = True,
                             head: str | None = None) -> dict[str, tuple[str, int, bytes]]:
        keys = list(keys)
        out: dict[str, tuple[str, int, bytes]] = {}
        q = _ranking_statements()["head" if current and head is not None else "current" if current else "any"]
        with self.session() as s:
            conn = s.connection()
            for i in range(0, len(keys), 900):  # under SQLite's bound-parameter limit
                for key, task_type, generation, data in conn.execute(q, {"keys": keys[i:i + 900], "head": head}):
                    out[key] = (task_type, int(generation), bytes(data))
        return out

    def save_ranking_parts(self, task_type: str, generation: int, parts: dict[str, bytes]) -> None:
        r = SqlStandingRanking
        keys = list(parts)
        with self.session() as s:
            newer: set[str] = set()
            for i in range(0, len(keys), 900):
                chunk = keys[i:i + 900]
                newer |= set(s.scalars(select(r.key).where(r.key.in_(chunk), r.generation > generation)))
                s.execute(delete(r).where(r.key.in_(chunk), r.generation <= generation)
                          .execution_options(synchronize_session=False))
            rows = [{"key": k, "task_type": task_type, "generation": generation, "ranking": v}
                    for k, v in parts.items() if k not in newer]
            try:
                with s.begin_nested():
                    for i in range(0, len(rows), 500):
                        s.execute(insert(r), rows[i:i + 500])
            except IntegrityError:         # cached by a concurrent query meanwhile (the same answer)
                pass


@functools.cache
def _ranking_statements() -> dict[str, Any]:
    """The reads of cached rankings as SQL text: a new process (every CLI call) answers ``best`` from them
    without configuring the ORM mappers or compiling ORM statements (tens of milliseconds)."""
    current = ('(SELECT coalesce(max(g.generation), 0) FROM standing_generations g '
               'WHERE g.task_type = {task_type})')
    rows = 'SELECT r."key", r.task_type, r.generation, r.ranking FROM standing_rankings r WHERE r."key" IN :keys'
    keys = bindparam("keys", expanding=True)
    return {
        "one": text(f"SELECT {current.format(task_type=':task_type')}, (SELECT r.ranking FROM standing_rankings r "
                    f'WHERE r."key" = :key AND r.task_type = :task_type AND r.generation = '
                    f"{current.format(task_type=':task_type')})"),
        "current": text(f"{rows} AND r.generation = {current.format(task_type='r.task_type')}").bindparams(keys),
        "head": text(f"{rows} AND (r.\"key\" <> :head OR r.generation = {current.format(task_type='r.task_type')})")
        .bindparams(keys),
        "any": text(rows).bindparams(keys),
    }


@functools.cache
def _board_statements() -> dict[str, Any]:
    """The statements of :meth:`SqlAlchemyStore.board`, built once (their compiled forms are cached)."""
    generation = (select(func.coalesce(func.max(SqlStandingGeneration.generation), 0))
                  .where(SqlStandingGeneration.task_type == SqlDataset.task_type).scalar_subquery())
    version = (select(SqlDatasetVersion.id, SqlDatasetVersion.version, SqlDataset.task_type,
                      cast(SqlDatasetVersion.statistics, Text), generation)
               .join(SqlDataset, SqlDatasetVersion.dataset_id == SqlDataset.id)
               .where(SqlDataset.name == bindparam("name")))
    t = SqlStandingTest
    out: dict[str, Any] = {
        "latest": version.order_by(SqlDatasetVersion.version.desc()).limit(1),
        "version": version.where(SqlDatasetVersion.version == bindparam("version")),
        "tests": select(t.best_run_id, t.candidate_run_id, t.p_value, t.difference, t.test).where(
            t.dataset_version_id == bindparam("vid"), t.metric == bindparam("metric"), t.n_boot == bindparam("n_boot"),
            t.seed == bindparam("seed")),
    }
    own = (SqlStanding.metric, SqlStanding.value, SqlStanding.ci_low, SqlStanding.ci_high, SqlStanding.n)
    joined = (bindparam("metric", type_=String), SqlMetric.value, SqlMetric.ci_low, SqlMetric.ci_high,
              func.coalesce(SqlMetric.n, 0))
    for which, extra in (("plain", ()), ("metrics", (cast(SqlStanding.metrics, Text),))):
        def query(values, extra=extra):
            return (select(SqlEvaluator.name, SqlStanding.dataset_version_id, SqlStanding.run_id, *values,
                           SqlStanding.n_aligned, SqlStanding.n_rows, *extra)
                    .join(SqlEvaluator, SqlStanding.evaluator_id == SqlEvaluator.id)
                    .where(SqlStanding.dataset_version_id.in_(bindparam("vids", expanding=True))))

        out[f"own_{which}"] = query(own)
        out[f"own_metric_{which}"] = query(own).where(SqlStanding.metric == bindparam("metric"))
        out[f"joined_{which}"] = query(joined).outerjoin(
            SqlMetric, (SqlMetric.run_id == SqlStanding.run_id) & (SqlMetric.name == bindparam("metric"))
            & (SqlMetric.slice == "all")).where(SqlStanding.metric != bindparam("metric"))
    # what a task-type ranking reads of every row: evaluator, version, run, value (no entities built)
    lean = (select(SqlEvaluator.name, SqlStanding.dataset_version_id, SqlStanding.run_id, SqlStanding.value)
            .join(SqlEvaluator, SqlStanding.evaluator_id == SqlEvaluator.id)
            .where(SqlStanding.dataset_version_id.in_(bindparam("vids", expanding=True))))
    out["values_own"] = lean.where(SqlStanding.metric == bindparam("metric"))
    out["values_joined"] = (lean.with_only_columns(SqlEvaluator.name, SqlStanding.dataset_version_id,
                                                   SqlStanding.run_id, SqlMetric.value)
                            .outerjoin(SqlMetric, (SqlMetric.run_id == SqlStanding.run_id)
                                       & (SqlMetric.name == bindparam("metric")) & (SqlMetric.slice == "all"))
                            .where(SqlStanding.metric != bindparam("metric")))
    for which in ("values_own", "values_joined"):   # the rows written since a generation (revision 0007)
        out[f"{which}_since"] = out[which].where(SqlStanding.changed > bindparam("since"))
    return out


def _json_loads():
    try:
        import orjson

        return orjson.loads
    except ImportError:  # pragma: no cover - orjson comes with prefect
        import json

        return json.loads


def _standing_fields(version: SqlDatasetVersion, metrics: Iterable[SqlMetric]) -> dict[str, Any]:
    """A leaderboard row's values from a run's metrics: the version's headline metric (as
    :func:`registry.services.scoring.headline_for` chooses it), coverage and every whole-dataset value."""
    from registry.domain.metrics.catalog import headline_metric

    task_type = version.dataset.task_type
    dist = (version.statistics or {}).get("label_distribution") or {}
    headline = headline_metric(task_type, tie_labels=task_type == "pairwise" and bool(dist.get("tie")))
    whole = [m for m in metrics if m.slice == "all"]
    by_name: dict[str, SqlMetric] = {}
    for m in whole:
        by_name.setdefault(m.name, m)
    h, cov = by_name.get(headline), by_name.get("coverage")
    return {"metric": headline, "value": h.value if h else None, "ci_low": h.ci_low if h else None,
            "ci_high": h.ci_high if h else None, "n": h.n if h else 0,
            "n_aligned": (cov.extra or {}).get("aligned") if cov else None, "n_rows": version.row_count or 0,
            "coverage": cov.value if cov else None, "metrics": {m.name: m.value for m in whole}}
