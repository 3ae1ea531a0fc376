"""Typed plugin configs: checked when an evaluator is created, one canonical form per config, and
the evaluator hashes (the judgment cache's keys) of configs written as before unchanged."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from registry.adapters.backends import build_backend
from registry.adapters.evaluators import build_evaluator, canonical_config, config_class
from registry.errors import InvalidInput
from registry.services.evaluators import evaluator_sha256

C, P = "c" * 64, "p" * 64
"""A checkpoint and a protocol hash (their values do not matter here: the config's part does)."""

PINNED = [
    # (kind, config as the code and the docs write it, evaluator hash computed before configs were typed)
    ("random", {}, "6bed1c2f8974243bd4b64443e4c4b31dcf820ee499f898dcea284a037898a88d"),  # --baselines
    ("longer", {}, "6db433e7fbad44cab292dfc618f758a2eb84316b4a8b0b365d2258654bb33d3c"),
    ("always-first", {}, "60d57b06700018144737bcc166d941193fcf28be3f8238524b0c398041256023"),
    ("random", {"seed": 3}, "d5e58b64cb180576727406acb9e29139537305edaa7c1390194b6823131c068c"),
    ("encoder-scorer", {}, "886b5846f9cd41d0acbd0dd9647d518897bc59aeab851e1b01b91ec310cd12c3"),  # minilm-untrained
    ("encoder-scorer", {"max_length": 128}, "a4db3788da6adb2ce9ca91a7c7effc9ca7f4fb2030576afe3c02eb55433258cb"),
    ("encoder-scorer", {"batch_size": 8}, "886b5846f9cd41d0acbd0dd9647d518897bc59aeab851e1b01b91ec310cd12c3"),
    ("encoder-scorer", {"device": "auto"}, "886b5846f9cd41d0acbd0dd9647d518897bc59aeab851e1b01b91ec310cd12c3"),
    ("llm-judge", {}, "f883fd50eb8333b5922c42a407e21d9c425a88c3aa3da836b9070fcdb97304f5"),
    ("llm-judge", {"max_tokens": 8}, "e25add15f95bba225502dac95571bf4fa8b79e2a2b08e4906373524c584077df"),  # demo matrix
    ("llm-judge", {"max_tokens": 3, "max_input_tokens": 192},
     "12840e4b1fb832734d32e5c1a758ebc3dd88d1187d64dcb1d7ea96dfb3e8e6e1"),
    ("llm-judge", {"backend": "vllm"}, "11e479fa396c890ce08efab6cc0a29f0ddc58c8dd068c502988c3cdb1e9972ad"),
    ("llm-judge", {"backend": "vllm-server"}, "c241b7dd3b6c4dae6ebc7589c90a411e7caf5ea276ef70fbb41f10a1b8b92010"),
    ("llm-judge", {"backend": "vllm", "max_tokens": 4, "max_input_tokens": 1000},
     "72dab40cde4e75070210df3967b61f70558c77159ee72ff2c286152007bb9247"),
    ("llm-judge", {"max_tokens": 8, "device": "cuda", "orders": [0]},
     "1cc83d7b8e6c0a6f484f13febfb8d3dadbda67be22c9e5628baee7ea5ca90f46"),
    ("llm-judge", {"backend": "openai", "base_url": "https://api.openai.com/v1", "model": "gpt-4o",
                   "api_key_env": "OPENAI_API_KEY", "concurrency": 8},
     "a4db9bfd07ee3b58e68cdebc9772ccdfc280bf1297b8812603da3df252496726"),
    ("llm-judge", {"backend": "openai", "base_url": "http://127.0.0.1:8000/v1", "model": "tiny",
                   "api_key_env": "VLLM_TEST_NO_KEY", "concurrency": 4, "max_tokens": 4, "top_logprobs": 4,
                   "extra_body": {"truncate_prompt_tokens": 1020, "truncation_side": "left",
                                  "logprob_token_ids": [1, 2]}},
     "c1df236bcaf2b794fa515ca618edd9805331bb4660af6f55e5bec09b5e55c125"),
    ("external", {"format": "llmbar", "source": "gpt-4/llmbar"},
     "6d39abba7f8cc8a4a376c2b3e682820602b30690b581287a26f345567328f316"),  # autorater import
]


@pytest.mark.parametrize(("kind", "config", "sha"), PINNED)
def test_configs_written_as_before_keep_their_evaluator_hash(kind, config, sha):
    """The canonical form of a config written without defaults is that config: its evaluator hash
    (computed with the code before configs were typed) is unchanged, so the judgment cache stays warm."""
    assert evaluator_sha256(kind, C, P, canonical_config(kind, config)) == sha


@pytest.mark.parametrize(("kind", "spellings"), [
    ("llm-judge", [{"max_tokens": 4, "temperature": 0.5, "backend": "openai", "model": "m", "base_url": "u"},
                   {"base_url": "u", "model": "m", "backend": "openai", "temperature": 0.5, "max_tokens": 4},
                   {"backend": "openai", "base_url": "u", "model": "m", "max_tokens": 4.0, "temperature": 0.5,
                    "seed": 0, "top_logprobs": 5, "api_key_env": "OPENAI_API_KEY"}]),
    ("llm-judge", [{"max_tokens": 3}, {"backend": "transformers", "max_tokens": 3, "dtype": "float32"},
                   {"max_tokens": "3", "max_input_tokens": 1024}]),
    ("llm-judge", [{"temperature": 1, "top_p": 1}, {"top_p": 1.0, "temperature": 1.0}]),
    ("llm-judge", [{"backend": "vllm-server", "port": 8000}, {"port": 8000, "backend": "vllm-server",
                                                             "concurrency": 8, "top_logprobs": 20}]),
    ("random", [{}, {"seed": 0}, {"seed": 0.0}]),
    ("encoder-scorer", [{"threshold": 0.5, "device": "cpu"}, {}]),
    ("encoder-scorer", [{"threshold": 1}, {"threshold": 1.0}]),
])
def test_spellings_of_one_config_are_one_canonical_form(kind, spellings):
    """Key order, a default written out or left out, ``1`` vs ``1.0`` where the key is a float."""
    forms = [canonical_config(kind, s) for s in spellings]
    assert all(f == forms[0] for f in forms)
    assert list(forms[0]) == sorted(forms[0])
    assert len({evaluator_sha256(kind, C, P, f) for f in forms}) == 1


def test_different_configs_stay_different():
    assert canonical_config("llm-judge", {"max_tokens": 3}) != canonical_config("llm-judge", {"max_tokens": 4})
    assert canonical_config("llm-judge", {"backend": "vllm"}) == {"backend": "vllm"}
    assert canonical_config("random", {"seed": 1}) == {"seed": 1}


@pytest.mark.parametrize(("kind", "config", "field", "says"), [
    ("llm-judge", {"backend": "vlm"}, "backend", ["allowed backends: openai, transformers, vllm, vllm-server",
                                                 "did you mean 'vllm'"]),
    ("llm-judge", {"max_tokenz": 8}, "max_tokenz", ["unknown key 'max_tokenz'", "allowed keys:", "max_tokens",
                                                    "device", "did you mean 'max_tokens'"]),
    ("llm-judge", {"backend": "vllm", "device": "cuda"}, "device", ["unknown key 'device'", "backend 'vllm'",
                                                                   "max_model_len"]),
    ("llm-judge", {"max_tokens": "many"}, "max_tokens", ["valid integer", "'many'"]),
    ("llm-judge", {"max_tokens": 0}, "max_tokens", ["greater than 0"]),
    ("llm-judge", {"top_p": 1.5}, "top_p", ["less than or equal to 1"]),
    ("llm-judge", {"dtype": "float64"}, "dtype", ["'float64' is not allowed", "'float32' or 'bfloat16'"]),
    ("llm-judge", {"orders": [0, 0]}, "orders", ["[0], [1] or [0, 1]"]),
    ("llm-judge", {"backend": "openai", "model": "m"}, "base_url", ["needs 'base_url'"]),
    ("llm-judge", {"protocol": {"user": "x"}}, "protocol", ["set by the engine"]),
    ("random", {"seed": True}, "seed", ["expected a number"]),
    ("longer", {"seed": 1}, "seed", ["allowed keys: batch_size, orders, samples"]),
    ("encoder-scorer", {"threshold": -0.1}, "threshold", ["greater than or equal to 0"]),
    ("encoder-scorer", {"device": "tpu"}, "device", ["'cpu', 'cuda', 'cuda:N' or 'auto'"]),
    ("encoder-scorer", {"max_length": 4}, "max_length", ["greater than or equal to 8"]),
    ("external", {"format": "llmbar", "notes": "x"}, "notes", ["allowed keys: format, llm, protocol, source"]),
])
def test_bad_configs_name_the_key_and_what_is_allowed(kind, config, field, says):
    with pytest.raises(InvalidInput) as caught:
        canonical_config(kind, config)
    assert caught.value.field == field and caught.value.exit_code == 2
    for text in says:
        assert text in str(caught.value)


def test_an_api_key_is_refused_without_being_shown():
    secret = "sk-test-0123456789-very-secret"
    for config in ({"api_key": secret}, {"api_key_env": secret}):
        with pytest.raises(InvalidInput, match="api_key_env") as caught:
            canonical_config("llm-judge", {"backend": "openai", "base_url": "u", "model": "m", **config})
        assert secret not in str(caught.value)


def test_plugins_take_their_typed_config():
    """The judge's config carries its backend's typed config; the backend takes it as it is."""
    from registry.adapters.backends.openai_http import OpenAICompatibleBackend, OpenAIConfig
    from registry.adapters.evaluators.llm_judge import LLMJudgeConfig

    cfg = LLMJudgeConfig.parse({"backend": "openai", "base_url": "http://127.0.0.1:1/v1", "model": "m",
                                "concurrency": "3", "max_tokens": 5, "batch_size": 16})
    assert cfg.max_tokens == 5 and cfg.generation_overrides() == {"max_tokens": 5}
    backend_cfg = cfg.backend_settings
    assert isinstance(backend_cfg, OpenAIConfig) and backend_cfg.concurrency == 3 and backend_cfg.model == "m"
    backend = build_backend("openai", backend_cfg)
    assert isinstance(backend, OpenAICompatibleBackend) and backend.settings is backend_cfg
    assert backend.concurrency == 3 and backend.top_logprobs == 5
    with pytest.raises(ValidationError, match="frozen"):
        backend_cfg.concurrency = 4  # type: ignore[misc]
    assert config_class("random").__name__ == "RandomConfig"
    assert build_evaluator("random", config_class("random").parse({"seed": 4})).seed == 4


# --------------------------------------------------------------------------- through the CLI
def _evaluators(cli) -> list[dict]:
    return json.loads(cli("evaluator", "list", "--json").stdout)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_evaluator_create_refuses_a_bad_config_and_stores_nothing(cli):
    assert cli("checkpoint", "register", "judge", "--kind", "llm-judge", "--uri", "hf:some/judge").exit_code == 0
    before = _evaluators(cli)
    bad = cli("evaluator", "create", "--checkpoint", "judge@1", "--protocol", "pairwise-base",
              "--config", "backend=vlm")
    assert bad.exit_code == 2
    assert "'backend'" in bad.stderr and "openai, transformers, vllm, vllm-server" in bad.stderr
    assert "Traceback" not in bad.stderr + bad.stdout
    unknown = cli("evaluator", "create", "--checkpoint", "judge@1", "--protocol", "pairwise-base",
                  "--config", "max_tokenz=8")
    assert unknown.exit_code == 2 and "allowed keys:" in unknown.stderr and "max_tokens" in unknown.stderr
    wrong = cli("evaluator", "create", "--checkpoint", "judge@1", "--protocol", "pairwise-base",
                "--config", "temperature=-1")
    assert wrong.exit_code == 2 and "'temperature'" in wrong.stderr
    assert _evaluators(cli) == before


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_two_spellings_of_one_config_are_one_evaluator(cli):
    assert cli("checkpoint", "register", "judge", "--kind", "llm-judge", "--uri", "hf:some/judge").exit_code == 0
    first = json.loads(cli("evaluator", "create", "--checkpoint", "judge@1", "--protocol", "pairwise-base",
                           "--config", "max_tokens=8", "--config", "temperature=1", "--json").stdout)
    again = json.loads(cli("evaluator", "create", "--checkpoint", "judge@1", "--protocol", "pairwise-base",
                           "--config", "temperature=1.0", "--config", "backend=transformers",
                           "--config", "max_tokens=8", "--config", "seed=0", "--json").stdout)
    assert first["created"] and not again["created"]
    assert (again["name"], again["sha256"]) == (first["name"], first["sha256"])
    assert first["config"] == {"max_tokens": 8, "temperature": 1}  # stored in canonical form
    assert len(_evaluators(cli)) == 1
