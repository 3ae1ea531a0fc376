"""Versioned dataset specs: one YAML file per task type in ``dataset_specs/``.

A spec names each standardized field with its type, whether it is required, allowed values
and limits, plus cross-field checks. :meth:`DatasetSpec.arrow_schema` compiles it to the Arrow
schema every stored version has; :mod:`registry.adapters.validation.gx` compiles it to a
Great Expectations suite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from registry.errors import InvalidInput, NotFound
from registry.hashing import sha256_json

_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "list<string>": pa.list_(pa.string()),
    "list<float64>": pa.list_(pa.float64()),
}


@dataclass(frozen=True)
class FieldSpec:
    """One standardized field."""

    name: str
    type: str
    """One of ``string``, ``int32``, ``int64``, ``float64``, ``bool``, ``list<string>``, ``list<float64>``."""
    required: bool = False
    """Must be present and non-null on every row."""
    unique: bool = False
    text: bool = False
    """Free text: non-blank when present and at most the configured size limit."""
    allow_empty: bool = False
    """For judged outputs only: an empty string is a real (bad) output a judge must handle, so
    it is kept; the field must still be present (not null)."""
    max_length: int | None = None
    allowed: tuple[str, ...] | str | None = None
    """Allowed values, or ``"dataset"``: the label set declared by the dataset."""
    allowed_items: tuple[str, ...] | str | None = None
    """Allowed values of each list item (or ``"dataset"``)."""
    min: float | None = None
    max: float | None = None
    doc: str = ""

    @property
    def arrow_type(self) -> pa.DataType:
        return _TYPES[self.type]


@dataclass(frozen=True)
class DatasetSpec:
    """A task type's versioned schema and expectations."""

    name: str
    version: int
    description: str
    fields: tuple[FieldSpec, ...]
    checks: tuple[str, ...] = ()
    sha256: str = ""
    """Hash of the spec's canonical JSON: part of every version's provenance."""
    path: Path | None = field(default=None, compare=False)

    @property
    def ref(self) -> str:
        """``name@version``, as stored with each dataset version."""
        return f"{self.name}@{self.version}"

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> FieldSpec:
        return next(f for f in self.fields if f.name == name)

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema of stored versions (non-required fields are nullable)."""
        return pa.schema(
            [pa.field(f.name, f.arrow_type, nullable=not f.required, metadata={"doc": f.doc}) for f in self.fields],
            metadata={"spec": self.ref, "spec_sha256": self.sha256},
        )


def _parse(path: Path) -> DatasetSpec:
    try:
        raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidInput(f"malformed spec YAML: {exc}", file=path) from exc
    fields = []
    for i, f in enumerate(raw.get("fields", [])):
        if f.get("type") not in _TYPES:
            raise InvalidInput(f"unknown type {f.get('type')!r}; one of {sorted(_TYPES)}", file=path, row=i + 1, field="type")
        for key in ("allowed", "allowed_items"):
            if isinstance(f.get(key), list):
                f[key] = tuple(str(v) for v in f[key])
        fields.append(FieldSpec(**f))
    return DatasetSpec(
        name=raw["name"], version=int(raw["version"]), description=raw.get("description", ""),
        fields=tuple(fields), checks=tuple(raw.get("checks", [])),
        sha256=sha256_json(raw), path=path,
    )


@cache
def _load_dir(specs_dir: Path) -> dict[str, DatasetSpec]:
    return {s.name: s for s in (_parse(p) for p in sorted(Path(specs_dir).glob("*.yaml")))}


def load_specs(specs_dir: Path) -> dict[str, DatasetSpec]:
    """Every spec in ``specs_dir`` by task type name."""
    return _load_dir(Path(specs_dir).resolve())


def load_spec(specs_dir: Path, task_type: str) -> DatasetSpec:
    """The spec of ``task_type`` ("did you mean" if unknown)."""
    specs = load_specs(specs_dir)
    if task_type not in specs:
        raise NotFound.named("dataset spec", task_type, specs)
    return specs[task_type]
