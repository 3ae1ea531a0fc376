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


# ----------------------------------------------------------------------------- vLLM
VLLM_REQUIRED_ENV = "AUTORATER_REQUIRE_VLLM"


def vllm_available_or_skip() -> None:
    """Skip (or, with ``AUTORATER_REQUIRE_VLLM=1`` as in CI, fail) when no vLLM can run here: vLLM
    importable in this interpreter, ``$AUTORATER_VLLM_PYTHON``, or a finished ``.venv-vllm``
    (``scripts/vllm-venv.sh`` writes ``.venv-vllm/.installed`` once ``import vllm`` works)."""
    import os

    from registry.adapters.backends.vllm_backend import PYTHON_ENV, REPO_ROOT, vllm_importable

    if vllm_importable() or os.environ.get(PYTHON_ENV) or (REPO_ROOT / ".venv-vllm" / ".installed").is_file():
        return
    reason = (f"no vLLM environment: run scripts/vllm-venv.sh (or `make test`), or set {PYTHON_ENV} to the "
              "Python of an environment with vLLM")
    if os.environ.get(VLLM_REQUIRED_ENV):
        pytest.fail(f"{reason} — {VLLM_REQUIRED_ENV} is set, so the vLLM tests must run")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def tiny_vllm_dir(tmp_path_factory) -> Path:
    """A tiny random-init Llama chat model that vLLM's CPU kernels accept (head size 64: hidden 256,
    4 heads, 4 layers; byte-level BPE vocab 768), seed 0."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from registry.adapters.backends.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-vllm") / "tiny-llama-256", hidden_size=256, layers=4,
                                vocab_size=768, seed=0)
