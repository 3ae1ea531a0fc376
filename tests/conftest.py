"""Shared fixtures. Real data comes from ../shared/data (or $AUTORATER_DATA)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _data_root() -> Path | None:
    env = os.environ.get("AUTORATER_DATA")
    for cand in ([Path(env)] if env else []) + [PROJECT_ROOT.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand.resolve()
    return None


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Root of the real public human-judgment data (fails loudly if it is missing)."""
    root = _data_root()
    if root is None:
        pytest.fail("real data not found: set AUTORATER_DATA or put it at ../shared/data")
    return root
