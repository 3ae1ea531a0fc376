"""Content-addressed artifacts (Parquet, safetensors) in a DVC-tracked store."""

from registry.adapters.artifacts.store import ArtifactStore

__all__ = ["ArtifactStore"]
