"""Adapters around the pure domain: SQL store, artifacts (Parquet + DVC), validation (GX),
model backends and source adapters."""
