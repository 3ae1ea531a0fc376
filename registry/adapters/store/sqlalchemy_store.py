"""The SQL store of the registry: every read and write of registry metadata goes through here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from registry.adapters.store.db import check_schema, create_engine_for, managed_session
from registry.adapters.store.orm import SqlDataset, SqlDatasetVersion, SqlSource
from registry.domain.entities import Dataset, DatasetVersion, Source
from registry.errors import InvalidInput, NotFound


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``name`` or ``name@version`` (``name@latest`` too) → (name, version or None)."""
    name, sep, ver = ref.partition("@")
    if not sep or ver in ("", "latest"):
        return name, None
    try:
        return name, int(ver.removeprefix("v"))
    except ValueError:
        raise InvalidInput(f"bad dataset reference {ref!r}; use NAME or NAME@VERSION (e.g. llmbar-natural@2)") from None


class SqlAlchemyStore:
    """Registry metadata in a SQL database (SQLite file or PostgreSQL)."""

    def __init__(self, db_url: str, *, check: bool = True) -> None:
        self.engine = create_engine_for(db_url)
        if check:
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
