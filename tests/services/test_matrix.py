"""ReIFE-style matrix runs: tiny checkpoints of two sizes × every pairwise generative-judge protocol
× the LLMBar datasets (registered from the real files with the LLMBar adapter), through the real
transformers backend and the real database; a second run executes nothing.

The grid test runs the complete sets (419 pairs × 13 protocols × 2 checkpoints = 130 cells, ~80,000
judgments including ~8,400 sampled self-consistency generations; about 7 minutes on a shared 2-core
machine), so it is marked slow; ``AUTORATER_MATRIX_ROWS=N`` cuts every file to its first N pairs (the
files' own format, cut short) for a quick local run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from registry.services.matrix import evaluator_name, missing_pairs, run_matrix

from bench.reife_analyses import TINY_CONFIG as CONFIG  # the setup is shared with bench/reife_analyses.py
from bench.reife_analyses import register_llmbar_sets, register_models, tiny_models


def _pairwise_protocols() -> list[str]:
    from registry.protocols import load_protocol_files

    return sorted(p.name for p in load_protocol_files() if p.config.get("task_types") == ["pairwise"])


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Two random tiny chat models of different sizes."""
    pytest.importorskip("transformers")
    return tiny_models(tmp_path_factory.mktemp("matrix-models"))


def _setup(reg, data_root: Path, tmp_path: Path, models: dict[str, Path], rows: int | None) -> tuple[list, list]:
    """Register the LLMBar sets (the first ``rows`` of each file, or all) and the checkpoints."""
    return register_llmbar_sets(reg, data_root, rows=rows, cut_dir=tmp_path), register_models(reg, models)


def _check_matrix(reg, refs, ckpts, monkeypatch) -> None:
    from registry.adapters.backends.hf import TransformersBackend

    first = run_matrix(reg, ckpts, "all", refs, config=CONFIG, n_boot=50)
    protocols = _pairwise_protocols()
    assert [p.split("@")[0] for p in first.protocols] == sorted(protocols, key=lambda p: (p == "pairwise-vote", p))
    assert len(first.cells) == len(ckpts) * len(protocols) * len(refs)
    assert first.count("ran") == len(first.cells), [c for c in first.cells if c.status != "ran"]
    for cell in first.cells:            # every cell meta-evaluated: headline metric with its CI recorded
        run = reg.store.get_run(cell.run_id)
        assert cell.metric == "accuracy" and 0.0 <= cell.value <= 1.0
        assert run.metric("accuracy").ci_low is not None and run.metric("positional_agreement") is not None
    # cells sharing stages or votes computed nothing twice: the vote and metrics+reference are cheap
    vote = reg.store.get_run(first.cell(evaluator_name(ckpts[0], "pairwise-vote", CONFIG), refs[0]).run_id)
    members = vote.provenance["vote_members"]                     # its members' cells ran before it
    assert len(members) == 3 and all(m["executed"] == 0 for m in members.values())
    ref = reg.store.get_run(first.cell(evaluator_name(ckpts[0], "pairwise-reference", CONFIG), refs[0]).run_id)
    assert ref.provenance["stages"]["generated"] == 0             # metrics-reference made the references

    judgments = reg.store.count_judgments()
    calls: list = []
    real = TransformersBackend.generate
    monkeypatch.setattr(TransformersBackend, "generate", lambda self, reqs: calls.append(reqs) or real(self, reqs))
    second = run_matrix(reg, ckpts, "all", refs, config=CONFIG, n_boot=50)
    assert second.count("cached") == len(second.cells) and second.n_executed == 0
    assert [(c.evaluator, c.dataset, c.value) for c in second.cells] == \
        [(c.evaluator, c.dataset, c.value) for c in first.cells]
    assert calls == [] and reg.store.count_judgments() == judgments
    assert missing_pairs(reg, datasets=refs) == []


@pytest.mark.slow
def test_matrix_two_checkpoints_all_pairwise_protocols_llmbar(sqlite_registry, data_root, tmp_path, tiny_checkpoints,
                                                              monkeypatch):
    rows = int(os.environ.get("AUTORATER_MATRIX_ROWS", "0")) or None
    refs, ckpts = _setup(sqlite_registry, data_root, tmp_path, tiny_checkpoints, rows=rows)
    _check_matrix(sqlite_registry, refs, ckpts, monkeypatch)


def test_matrix_cli_skips_done_cells_and_refuses_bad_input(cli, registry, data_root, tmp_path, tiny_checkpoints):
    refs, ckpts = _setup(registry, data_root, tmp_path, {"tiny-s": tiny_checkpoints["tiny-s"]}, rows=2)
    args = ["eval", "matrix", "--checkpoints", ckpts[0], "--protocols", "pairwise-base,llmbar-rating",
            "--datasets", ",".join(refs[:2]), "--max-tokens", "2", "--config", "max_input_tokens=128", "--n-boot", "20"]
    first = cli(*args)
    assert first.exit_code == 0, first.output
    assert "4 cells: ran 4 (" in " ".join(first.stdout.split()) and "llmbar-natural@1" in first.stdout
    second = cli(*args, "--json")
    assert second.exit_code == 0
    out = json.loads(second.stdout)
    assert out["n_executed"] == 0 and {c["status"] for c in out["cells"]} == {"cached"}
    assert "tiny-s@1/pairwise-base[max_input_tokens=128,max_tokens=2]" in {c["evaluator"] for c in out["cells"]}
    assert len(registry.store.list_evaluators()) == 2            # idempotent evaluator creation
    bad = cli("eval", "matrix", "--checkpoints", ckpts[0], "--protocols", "pairwise-bse", "--datasets", refs[0])
    assert bad.exit_code != 0 and "pairwise-bse" in bad.output
    pointwise = cli("eval", "matrix", "--checkpoints", ckpts[0], "--protocols", "pointwise-rating",
                    "--datasets", refs[0], "--json")
    assert json.loads(pointwise.stdout)["cells"][0]["status"] == "incompatible"
