"""One naming rule for datasets, autoraters and evaluators, the same on SQLite and PostgreSQL
(registry/domain/names.py), and no secret in an evaluator's config (registry/domain/secrets.py):
refused at creation with exit 2, naming the field and the rule, registry unchanged; names that
exist keep working (issue "Hold up": 18 of 19 odd dataset names were accepted, ``x@2`` and ``a@b``
could never be referred to again, 300 characters worked on SQLite only; ``--config api_key=sk-…``
was stored verbatim)."""

from __future__ import annotations

import pytest

from tests.cli.conftest import GENERIC_MAP, write_prefs_csv
from tests.conftest import db_counts, store_files

ODD_NAMES = ["", "   ", "\n", "a\nb", "x" * 300, "x" * 129, "../x", "..", ".", ".hidden", "a/b", "/abs", "x@2",
             "a@b", "a b", " lead", "trail ", "a\tb", "_x"]
"""19 names no dataset or autorater may take."""
ODD_EVALUATOR_NAMES = [n for n in ODD_NAMES if n not in ("a/b", "x@2")] + ["a@b/c", "x/../y", "x/", "x@1@2"]
"""Evaluator names may have the form the registry gives them (``judge@1/pairwise-base``), not these."""


def _refused(res, field: str) -> None:
    assert res.exit_code == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.output and f"field {field!r}" in res.stderr and "letters, digits" in res.stderr


def test_odd_names_are_refused_on_every_backend(cli, registry, tmp_path):
    data = write_prefs_csv(tmp_path / "prefs.csv")
    assert cli("checkpoint", "register", "judge", "--kind", "longer").exit_code == 0
    files, counts = store_files(registry), db_counts(registry)
    for name in ODD_NAMES:
        _refused(cli("dataset", "register", name, "--source", "generic", "--path", data, "--task-type", "pairwise",
                     *GENERIC_MAP), "name")
        _refused(cli("checkpoint", "register", name, "--kind", "longer"), "autorater")
    for name in ODD_EVALUATOR_NAMES:
        _refused(cli("evaluator", "create", "--checkpoint", "judge@1", "--name", name), "name")
        _refused(cli("eval", "import", data, "--format", "mapped", "--dataset", "prefs", "--evaluator", name,
                     "--map", "example_id=id", "--map", "verdict_0=winner"), "evaluator")
    assert store_files(registry) == files and db_counts(registry) == counts


def test_names_of_the_catalog_the_demo_and_the_registry_follow_the_rule(cli, registry, tmp_path):
    from registry.domain.names import is_valid_name
    from registry.services.datasets import catalog_entries

    assert all(is_valid_name("dataset", d.name) for _, d in catalog_entries())
    for name in ("always-first", "minilm-scorer", "minilm-demo", "tiny-judge", "tiny-judge-lora", "gpt-4", "x" * 128):
        assert is_valid_name("autorater", name), name
    for name in ("minilm-untrained", "gpt-4/llmbar-metrics_reference", "tiny-judge@1/pairwise-cot-with-a-suffix",
                 "always-first/probe-1", "judge@12"):
        assert is_valid_name("evaluator", name), name
    data = write_prefs_csv(tmp_path / "prefs.csv")
    for name in ("prefs", "My_Prefs.v2", "x" * 128):  # the longest name, on every backend
        res = cli("dataset", "register", name, "--source", "generic", "--path", data, "--task-type", "pairwise",
                  *GENERIC_MAP)
        assert res.exit_code == 0, (name, res.stderr)
        assert cli("dataset", "show", name).exit_code == 0
    assert cli("checkpoint", "register", "judge", "--kind", "longer").exit_code == 0
    res = cli("evaluator", "create", "--checkpoint", "judge@1", "--json")  # the derived name: judge@1/score-both-orders
    assert res.exit_code == 0 and "judge@1/score-both-orders" in res.stdout, res.stderr


def test_a_name_created_before_the_rule_keeps_working(registry):
    """An autorater whose name breaks the rule but exists (an older registry stored it): it gets new
    versions, and evaluators, under its name."""
    from registry.services.evaluators import create_evaluator, register_checkpoint

    registry.store.add_checkpoint(autorater="old judge", kind="longer", uri="builtin:longer", sha256="0" * 64,
                                  format="builtin")
    ckpt, created = register_checkpoint(registry, "old judge", kind="longer")
    assert created and ckpt.ref == "old judge@2"
    ev, _ = create_evaluator(registry, checkpoint=ckpt.ref, protocol="score-both-orders")
    assert ev.name == "old judge@2/score-both-orders"  # a name the registry derives is not checked
    again, created = create_evaluator(registry, checkpoint=ckpt.ref, protocol="score-both-orders", name=ev.name)
    assert again == ev and not created


OPENAI = ("--config", "backend=openai", "--config", "base_url=http://127.0.0.1:9/v1", "--config", "model=judge")


@pytest.mark.parametrize("config", [["api_key=sk-abcdefghijklmnopqrstuvwxyz0123"], ["API_KEY=anything"],
                                    ["token=abc"], ['stop=["sk-proj-abcdefghijklmnopqrstuvwxyz"]'],
                                    ['extra_body={"headers": {"Authorization": "Bearer abcdefghijklmnopqrstuv"}}'],
                                    ['env={"HF_TOKEN": "hf_abcdefghijklmnopqrstuvwxyz"}'], ["password=hunter2"]])
def test_secrets_in_an_evaluator_config_are_refused_at_creation(cli, registry, config):
    assert cli("checkpoint", "register", "judge", "--kind", "llm-judge", "--uri", "external:judge").exit_code == 0
    counts = db_counts(registry)
    args = [a for item in config for a in ("--config", item)]
    res = cli("evaluator", "create", "--checkpoint", "judge@1", "--protocol", "pairwise-base", *OPENAI, *args)
    assert res.exit_code == 2 and "Traceback" not in res.output, (res.stdout, res.stderr)
    assert "environment" in res.stderr and "api_key_env" in res.stderr
    assert config[0].split("=", 1)[1] not in res.stderr  # the value is never repeated
    assert db_counts(registry) == counts
    ok = cli("evaluator", "create", "--checkpoint", "judge@1", "--protocol", "pairwise-base", *OPENAI,
             "--config", "api_key_env=MY_KEY", "--config", "max_tokens=8")
    assert ok.exit_code == 0, ok.stderr


@pytest.mark.parametrize("trainer", ["train_autorater", "train_llm_judge"])
def test_training_checks_the_autorater_name_before_it_trains(sqlite_registry, monkeypatch, trainer):
    """``train run --autorater 'a b'`` is refused at once, not after training when the checkpoint
    is registered: the training set is never built."""
    from registry.errors import InvalidInput
    from registry.services import training

    def never(*args, **kwargs):
        raise AssertionError("training started for a name that breaks the rule")

    monkeypatch.setattr(training, "build_training_set", never)
    kwargs = {"base": "judge@1"} if trainer == "train_llm_judge" else {}
    with pytest.raises(InvalidInput, match="letters, digits") as err:
        getattr(training, trainer)(sqlite_registry, autorater="a b", mixture=None, **kwargs)
    assert err.value.exit_code == 2


def test_keys_that_only_mention_a_secret_word_are_not_secrets():
    """The vLLM judge's ``extra_body.logprob_token_ids`` (CI failure) is a setting, not a token;
    ``hf_token``, ``apiKey`` and ``Authorization`` are secrets."""
    from registry.domain.secrets import refuse_secrets, secret_key

    assert not any(secret_key(k) for k in ("logprob_token_ids", "max_tokens", "token_budget", "api_key_env"))
    assert all(secret_key(k) for k in ("hf_token", "apiKey", "Authorization", "password", "auth_token"))
    refuse_secrets({"extra_body": {"logprob_token_ids": [1, 2]}})  # no error
