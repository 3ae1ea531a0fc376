"""Entities of the registry: plain frozen dataclasses, independent of the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from registry.domain.types import TaskType


@dataclass(frozen=True)
class Source:
    """A public collection of human judgments, as named in the source catalog."""

    name: str
    title: str
    origin: str
    """Public URL where the source's files can be fetched."""
    license: str
    citation: str


@dataclass(frozen=True)
class Dataset:
    """A named collection of standardized examples; its content lives in numbered versions."""

    name: str
    task_type: TaskType
    source: str | None
    """Adapter/source name the dataset came from (``None`` when registered from a generic file)."""
    description: str
    created_at: datetime
    latest_version: int | None = None


@dataclass(frozen=True)
class DatasetVersion:
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
