"""LLMBar (Zeng et al., 2024): instruction-following pairs with one gold label.

Files: ``Dataset/LLMBar/{Natural,Adversarial/<subset>}/dataset.json`` and
``Dataset/Processed/{MT-Bench,FairEval,LLMEval^2}/dataset.json``: a list of
``{"input", "output_1", "output_2", "label": 1 | 2}``. Records have no ids, so the example id
is a hash of the input (``stable_ids``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from registry.adapters.sources.base import (
    COLUMNS,
    DatasetDef,
    SourceAdapter,
    SourceInfo,
    frame,
    iter_records,
    map_label,
    read_json,
    require,
    stable_ids,
)

_ROOT = "princeton-nlp__LLMBar/Dataset"
_SUBSETS = {
    "llmbar-natural": ("LLMBar/Natural", "LLMBar Natural: instances from existing benchmarks, filtered"),
    "llmbar-adversarial-neighbor": ("LLMBar/Adversarial/Neighbor", "Adversarial: output for a neighbour instruction"),
    "llmbar-adversarial-gptinst": ("LLMBar/Adversarial/GPTInst", "Adversarial: output for a GPT-4-written similar instruction"),
    "llmbar-adversarial-gptout": ("LLMBar/Adversarial/GPTOut", "Adversarial: GPT-4-written superficially good output"),
    "llmbar-adversarial-manual": ("LLMBar/Adversarial/Manual", "Adversarial: manually constructed"),
    "mtbench-human": ("Processed/MT-Bench", "MT-Bench human judgments (LLMBar processed, ties removed)"),
    "faireval": ("Processed/FairEval", "FairEval human judgments (LLMBar processed)"),
    "llmeval2": ("Processed/LLMEval^2", "LLMEval^2 human judgments (LLMBar processed)"),
}
_LABELS = {1: "A", 2: "B", "1": "A", "2": "B"}


class LLMBarAdapter(SourceAdapter):
    """LLMBar and the human-judged sets LLMBar ships in its processed format."""

    info = SourceInfo(
        name="llmbar",
        title="LLMBar",
        origin="https://github.com/princeton-nlp/LLMBar",
        license="MIT",
        citation="Zeng et al., Evaluating Large Language Models at Evaluating Instruction Following, ICLR 2024",
        task_types=("pairwise",),
        description="Pairs of outputs for one instruction; label says which follows the instruction.",
    )

    def catalog(self) -> list[DatasetDef]:
        return [
            DatasetDef(name=name, task_type="pairwise", path=f"{_ROOT}/{sub}/dataset.json", description=desc,
                       options={"category": name.removeprefix("llmbar-")})
            for name, (sub, desc) in _SUBSETS.items()
        ]

    def read(self, path: Path, *, category: str | None = None, **_: Any) -> pd.DataFrame:
        path = Path(path)
        data = read_json(path)
        rows = []
        for i, rec in iter_records(data, file=path):
            label = map_label(require(rec, "label", file=path, row=i), _LABELS, file=path, row=i, field="label")
            rows.append({
                "instruction": require(rec, "input", file=path, row=i),
                "response_a": require(rec, "output_1", file=path, row=i),
                "response_b": require(rec, "output_2", file=path, row=i),
                "label": label,
                "category": category,
                "num_annotators": None,
            })
        df = frame(rows, COLUMNS["pairwise"])
        df["example_id"] = stable_ids(list(df["instruction"]))
        return df
