"""Dataset specs (YAML in ``dataset_specs/``) compiled to Arrow schemas and GX suites."""

from registry.adapters.validation.spec import DatasetSpec, FieldSpec, load_spec, load_specs

__all__ = ["DatasetSpec", "FieldSpec", "load_spec", "load_specs"]
