"""Autorater Registry: versioned human-judgment datasets and autorater checkpoints with
continuous meta-evaluation.

The public API is re-exported here; heavy dependencies (torch, transformers, Great
Expectations, DVC, Prefect) are imported lazily by the modules that need them.
"""

from registry.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    RegistryError,
    SchemaOutOfDate,
    ValidationFailed,
)

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "InvalidInput",
    "NotFound",
    "RegistryError",
    "SchemaOutOfDate",
    "ValidationFailed",
    "__version__",
]
