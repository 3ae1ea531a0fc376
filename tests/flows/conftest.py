"""Fixtures of the flow tests: a Prefect test harness (temporary server, PREFECT_HOME in a temp
folder) and the AUTORATER_* environment that the flows read, pointed at the test registry."""

from __future__ import annotations

import pytest

from tests.conftest import point_env_at


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """One temporary Prefect server for the session (per xdist worker)."""
    from prefect.settings import PREFECT_HOME, PREFECT_SERVER_ANALYTICS_ENABLED, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    home = tmp_path_factory.mktemp("prefect-home")
    with temporary_settings(updates={PREFECT_HOME: str(home), PREFECT_SERVER_ANALYTICS_ENABLED: False}):
        with prefect_test_harness(server_startup_timeout=60):
            yield home


@pytest.fixture
def flow_registry(prefect_harness, registry, monkeypatch):
    """The ``registry`` fixture (SQLite and PostgreSQL) as the flows' registry."""
    point_env_at(monkeypatch, registry.settings)
    return registry


@pytest.fixture
def flow_sqlite_registry(prefect_harness, sqlite_registry, monkeypatch):
    """A SQLite registry as the flows' registry."""
    point_env_at(monkeypatch, sqlite_registry.settings)
    return sqlite_registry
