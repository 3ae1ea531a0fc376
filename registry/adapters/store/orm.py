"""SQLAlchemy 2 ORM rows of the registry. Each ``Sql*`` row has one ``to_entity()``.

The schema is created and changed only by the Alembic revisions in ``migrations/``; every
constraint is named through the metadata's naming convention so migrations can refer to it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from registry.domain.entities import Dataset, DatasetVersion, Source

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


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
                       created_at=self.created_at,
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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    dataset: Mapped[SqlDataset] = relationship(back_populates="versions", foreign_keys=[dataset_id])
    parent: Mapped[SqlDatasetVersion | None] = relationship(remote_side=[id])

    def to_entity(self) -> DatasetVersion:
        return DatasetVersion(
            dataset=self.dataset.name, version=self.version, content_hash=self.content_hash,
            task_type=self.dataset.task_type,  # type: ignore[arg-type]
            row_count=self.row_count, spec=f"{self.spec_name}@{self.spec_version}", storage_uri=self.storage_uri,
            created_at=self.created_at, parent_version=self.parent.version if self.parent else None,
            labels=tuple(self.labels) if self.labels else None, statistics=self.statistics or {},
            validation=self.validation_report or {}, diff_from_parent=self.diff_from_parent,
            provenance=self.provenance or {},
        )
