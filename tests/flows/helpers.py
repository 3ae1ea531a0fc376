"""Counting evaluation runs straight from the database (what the flows must have produced)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

DATA = {
    "llmbar-natural": ("llmbar", "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/dataset.json"),
    "llmbar-adversarial-manual": ("llmbar", "princeton-nlp__LLMBar/Dataset/LLMBar/Adversarial/Manual/dataset.json"),
    "llmbar-adversarial-gptout": ("llmbar", "princeton-nlp__LLMBar/Dataset/LLMBar/Adversarial/GPTOut/dataset.json"),
    "faireval": ("llmbar", "princeton-nlp__LLMBar/Dataset/Processed/FairEval/dataset.json"),
    "summac-factcc": ("summac", "tingofurro__summac/data/factcc.json"),
    "qags-cnndm-consistency": ("unieval", "maszhongming__UniEval/reproduce/data/fact/qags_cnndm.json"),
}


def run_counts(reg) -> Counter:
    """Counter of (evaluator, ``dataset@version``, status) over every evaluation run row."""
    from registry.adapters.store.orm import SqlDataset, SqlDatasetVersion, SqlEvaluationRun, SqlEvaluator

    q = (select(SqlEvaluator.name, SqlDataset.name, SqlDatasetVersion.version, SqlEvaluationRun.status)
         .join(SqlEvaluator, SqlEvaluationRun.evaluator_id == SqlEvaluator.id)
         .join(SqlDatasetVersion, SqlEvaluationRun.dataset_version_id == SqlDatasetVersion.id)
         .join(SqlDataset, SqlDatasetVersion.dataset_id == SqlDataset.id))
    with reg.store.session() as s:
        return Counter((ev, f"{ds}@{v}", status) for ev, ds, v, status in s.execute(q))


def succeeded(reg) -> Counter:
    """Counter of (evaluator, ``dataset@version``) over succeeded runs."""
    return Counter({(ev, ds): n for (ev, ds, status), n in run_counts(reg).items() if status == "succeeded"})


def compatible(evaluators, datasets: dict[str, str]) -> set[tuple[str, str]]:
    """Expected matrix: (evaluator, ref) for every evaluator that can judge the ref's task type."""
    from registry.adapters.evaluators import EVALUATORS

    return {(e.name, ref) for e in evaluators for ref, task_type in datasets.items()
            if task_type in EVALUATORS.get(e.kind).task_types}
