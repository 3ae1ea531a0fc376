"""Fixtures for the backend tests: a tiny causal LM built locally once per session (no download)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> Path:
    """A tiny random-init Llama chat model (hidden 64, 2 layers, vocab 512), seed 0."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from registry.adapters.backends.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm") / "tiny-llama", seed=0)
