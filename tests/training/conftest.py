"""A registry with four small real datasets (one per task type + LLMBar Natural held out),
shared by the training tests of a session (registering takes a few seconds each)."""

from __future__ import annotations

import pytest

SMALL = ("faireval", "summac-factcc", "bagel-quality", "llmbar-natural")


@pytest.fixture(scope="session")
def catalog(tmp_path_factory, data_root):
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
    from registry.domain.training import Mixture

    data = {"name": "tiny", "components": [{"dataset": "faireval", "weight": 2}, {"dataset": "summac-factcc"},
                                           {"dataset": "bagel-quality"}],
            "held_out": ["llmbar-natural"], "max_rows_per_dataset": 8}
    return Mixture.from_dict({**data, **overrides})
