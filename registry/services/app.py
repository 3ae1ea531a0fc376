"""The :class:`RegistryContext` handle that services take: settings, SQL store and artifact store
(the public facade over it is :class:`registry.api.Registry`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from registry.adapters.artifacts import ArtifactStore
from registry.adapters.store import db
from registry.adapters.store.abstract import AbstractStore
from registry.adapters.store.sqlalchemy_store import SqlAlchemyStore
from registry.config import Settings


@dataclass
class RegistryContext:
    """One registry instance (database + store) opened with resolved settings."""

    settings: Settings
    store: AbstractStore
    """Registry metadata (datasets, checkpoints, evaluators, runs, regressions) as entities; use
    cases open one :meth:`~AbstractStore.unit_of_work` for the writes that belong together."""
    artifacts: ArtifactStore

    @classmethod
    def open(cls, settings: Settings | None = None, *, check: bool = True) -> RegistryContext:
        """Open an initialised registry; refuses an out-of-date schema (see ``autorater init``)."""
        settings = settings or Settings.from_env()
        os.environ.setdefault("DVC_NO_ANALYTICS", "1")
        _sweep_tmp(settings)
        return cls(settings=settings, store=SqlAlchemyStore(settings.db_url, check=check),
                   artifacts=ArtifactStore(settings.store, settings.dvc_remote,
                                           endpoint_url=settings.s3_endpoint_url))

    def close(self) -> None:
        self.artifacts.close()
        self.store.close()


def _sweep_tmp(settings: Settings) -> None:
    """The cheap part of ``store gc``, run whenever a registry opens: delete what killed writers left
    in ``store/tmp`` over an hour ago (one ``os.scandir`` when there is nothing; never fails)."""
    try:
        ArtifactStore(settings.store).clean_tmp()
    except OSError:
        pass


def init_registry(settings: Settings | None = None) -> RegistryContext:
    """Create or upgrade the database schema (Alembic) and the DVC-tracked store; idempotent."""
    settings = settings or Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = db.create_engine_for(settings.db_url)
    try:
        db.upgrade(engine)
    finally:
        engine.dispose()
    reg = RegistryContext.open(settings)
    reg.artifacts.init()
    return reg
