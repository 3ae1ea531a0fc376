"""Shared fixtures. Real data comes from ../shared/data (or $AUTORATER_DATA)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fuzz.report import (  # noqa: F401 (hooks: the fuzz tests' input count in the summary)
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_testnodedown,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# pytest-xdist runs 2 workers on 2 cores: one math thread each (torch/OpenMP would otherwise start a
# thread per core in every worker and subprocess, and oversubscribe the CPU several times over).
os.environ.setdefault("OMP_NUM_THREADS", "1")

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



# ----------------------------------------------------------------------------- training
SMALL = ("faireval", "summac-factcc", "bagel-quality", "llmbar-natural")
"""Four small real datasets of the training tests: one per task type, and LLMBar Natural held out."""


@pytest.fixture(scope="session")
def catalog(tmp_path_factory, data_root):
    """A registry with the :data:`SMALL` datasets, shared by the training tests of a session
    (tests/services/test_training.py, tests/adapters/training; registering takes a few seconds each)."""
    from registry.config import Settings
    from registry.services.app import init_registry
    from registry.services.datasets import register_all

    home = tmp_path_factory.mktemp("train-home")
    s = Settings.from_env(home=str(home), db_url=f"sqlite:///{home / 'registry.db'}", store=str(home / "store"),
                          dvc_remote=str(home / "remote"), data_root=str(data_root))
    reg = init_registry(s)
    result = register_all(reg, data_root, only=set(SMALL))
    assert not result.failed and len(result.registered) + len(result.unchanged) == len(SMALL)
    yield reg
    reg.close()


def tiny_mixture(**overrides):
    """A mixture of three of the :data:`SMALL` datasets (8 rows each), with ``overrides`` applied."""
    from registry.domain.training import Mixture

    data = {"name": "tiny", "components": [{"dataset": "faireval", "weight": 2}, {"dataset": "summac-factcc"},
                                           {"dataset": "bagel-quality"}],
            "held_out": ["llmbar-natural"], "max_rows_per_dataset": 8}
    return Mixture.from_dict({**data, **overrides})

# ----------------------------------------------------------------------------- databases
PG_ENV = "AUTORATER_TEST_PG_URL"
"""Admin URL of a PostgreSQL server for the database tests, e.g.
``postgresql+psycopg://postgres@127.0.0.1:55432/postgres`` (.ci/run starts one and sets it)."""


def _pg_admin_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url and os.environ.get("AUTORATER_REQUIRE_PG"):
        pytest.fail(f"{PG_ENV} is not set but AUTORATER_REQUIRE_PG is: the PostgreSQL tests must run")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """A fresh, empty database: a SQLite file, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    admin = _pg_admin_url()
    if not admin:
        pytest.skip(f"{PG_ENV} not set (`make test` / .ci/run start PostgreSQL and set it)")
    import uuid

    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(admin).set(database=name).render_as_string(hide_password=False)
    yield url
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture
def settings(tmp_path, db_url):
    """Settings of a throw-away registry (database from ``db_url``, store under tmp_path)."""
    from registry.config import Settings

    return Settings.from_env(home=str(tmp_path / "home"), db_url=db_url, store=str(tmp_path / "home" / "store"),
                             dvc_remote=str(tmp_path / "remote"), data_root=str(_data_root() or tmp_path))


@pytest.fixture
def registry(settings):
    """An initialised registry (migrated database + DVC store) on SQLite and on PostgreSQL."""
    from registry.services.app import init_registry

    reg = init_registry(settings)
    yield reg
    reg.close()


@pytest.fixture
def sqlite_registry(tmp_path):
    """An initialised registry on a SQLite file only (for tests that need no PostgreSQL run)."""
    from registry.config import Settings
    from registry.services.app import init_registry

    s = Settings.from_env(home=str(tmp_path / "home"), db_url=f"sqlite:///{tmp_path / 'home' / 'registry.db'}",
                          store=str(tmp_path / "home" / "store"), dvc_remote=str(tmp_path / "remote"),
                          data_root=str(_data_root() or tmp_path))
    reg = init_registry(s)
    yield reg
    reg.close()


CACHE_DIRS = (".verified", "derived")
"""The store's evaluation caches (content-check markers, input sidecars): derived from stored files, kept
or removed by ``store gc``; a command that only reads a version may add them."""


def store_files(reg, *, caches: bool = True) -> list[str]:
    """Every file in a registry's store outside DVC's own folder (for 'nothing left behind'); without
    ``caches``, outside :data:`CACHE_DIRS` too."""
    root = reg.artifacts.root
    skip = (".dvc",) if caches else (".dvc", *CACHE_DIRS)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and p.relative_to(root).parts[0] not in skip)


def db_counts(reg) -> dict[str, int]:
    return reg.store.counts()


def point_env_at(monkeypatch, settings) -> None:
    """Make ``Settings.from_env()`` (what the CLI and the flows use) resolve to ``settings``."""
    monkeypatch.setenv("AUTORATER_HOME", str(settings.home))
    monkeypatch.setenv("AUTORATER_DB_URL", settings.db_url)
    monkeypatch.setenv("AUTORATER_STORE", str(settings.store))
    monkeypatch.setenv("AUTORATER_DVC_REMOTE", settings.dvc_remote)
    if settings.data_root:
        monkeypatch.setenv("AUTORATER_DATA", str(settings.data_root))


@pytest.fixture
def cli(registry, monkeypatch):
    """Run ``autorater ...`` in-process against the ``registry`` fixture's database and store.

    Returns a function ``(*args) -> click Result`` (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from registry.cli.main import app

    point_env_at(monkeypatch, registry.settings)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return run
