"""PandaLM test set (Wang et al., 2024): response pairs judged by three human annotators.

File: ``data/testset-v1.json``, a list of ``{"idx", "motivation_app", "cmp_key", "instruction",
"input", "response1", "response2", "annotator1", "annotator2", "annotator3"}`` where each
annotator gives ``0`` (tie), ``1`` (response1 better) or ``2`` (response2 better).
``cmp_key`` names the two compared models (e.g. ``bloom-7b_llama-7b``), ``motivation_app`` the
application the instruction was written for. The sibling ``gpt-3.5-turbo-testset-v1.json`` and
``pandalm-7b-testset-v1.json`` hold judge predictions keyed by the same ``idx``; they are not
datasets.

Standardization: example id = ``idx`` (as text); instruction = ``instruction`` followed by a
blank line and ``input`` when ``input`` is non-empty; annotator labels 0/1/2 become
``tie``/``A``/``B`` and are all kept; the label is their strict plurality, ``tie`` when there is
none (three different votes; no such row in v1). Category = ``cmp_key`` (the model pair).
Six responses are JSON ``true`` rather than a string (answers to "Verify the correctness of the
given statement"): they are read as the text ``"True"``.

Empty responses are kept as ``""`` (a model that output nothing is judged too): 54 of the 999
rows in v1, 29 with an empty ``response1`` and 25 with an empty ``response2`` (never both; mostly
voted for the other response). Skipped: only rows whose instruction and input are both blank
(none in v1), so the dataset has all 999 rows.
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
    majority_label,
    read_json,
    require,
    to_json,
)
from registry.errors import InvalidInput

_VOTES = {0: "tie", 1: "A", 2: "B", "0": "tie", "1": "A", "2": "B"}
_ANNOTATORS = ("annotator1", "annotator2", "annotator3")


def _text(value: Any, *, file: Path, row: int | str, field: str) -> str:
    if isinstance(value, bool):  # a YAML-ish "True" answer stored as a JSON boolean
        return str(value)
    if not isinstance(value, str):
        raise InvalidInput(f"expected text, got {type(value).__name__}", file=file, row=row, field=field)
    return value


class PandaLMAdapter(SourceAdapter):
    """PandaLM's human-annotated test set (pairwise with ties)."""

    info = SourceInfo(
        name="pandalm",
        title="PandaLM test set",
        origin="https://github.com/WeOpenML/PandaLM",
        license="Apache-2.0",
        citation="Wang et al., PandaLM: An Automatic Evaluation Benchmark for LLM Instruction "
                 "Tuning Optimization, ICLR 2024",
        task_types=("pairwise",),
        description="Two 7B-model responses to one instruction, judged better/worse/tie by three annotators.",
    )

    def catalog(self) -> list[DatasetDef]:
        return [DatasetDef(
            name="pandalm-test", task_type="pairwise", path="WeOpenML__PandaLM/data/testset-v1.json",
            description="PandaLM test set v1: 3 human annotators per pair, ties allowed",
        )]

    def read(self, path: Path, **_: Any) -> pd.DataFrame:
        path = Path(path)
        rows = []
        for i, rec in iter_records(read_json(path), file=path):
            example_id = str(require(rec, "idx", file=path, row=i))
            votes = []
            for field in _ANNOTATORS:
                raw = require(rec, field, file=path, row=i)
                if isinstance(raw, bool) or not isinstance(raw, (int, float, str)) or raw not in _VOTES:
                    raise InvalidInput(f"unknown label {raw!r}; expected 0 (tie), 1 or 2",
                                       file=path, row=i, field=field)
                votes.append(_VOTES[raw])
            texts = {f: _text(require(rec, f, file=path, row=i), file=path, row=i, field=f)
                     for f in ("instruction", "input", "response1", "response2")}
            instruction = "\n\n".join(t.strip() for t in (texts["instruction"], texts["input"]) if t.strip())
            if not instruction:
                continue  # nothing to respond to (documented above); empty responses are kept
            rows.append({
                "example_id": example_id,
                "instruction": instruction,
                "response_a": texts["response1"],
                "response_b": texts["response2"],
                "label": majority_label(votes),
                "annotator_labels": votes,
                "num_annotators": len(votes),
                "category": rec.get("cmp_key"),
                "metadata": to_json({"motivation_app": rec.get("motivation_app"), "cmp_key": rec.get("cmp_key")}),
            })
        df = frame(rows, COLUMNS["pairwise"])
        if not df["example_id"].is_unique:
            dup = df.loc[df["example_id"].duplicated(), "example_id"].iloc[0]
            raise InvalidInput(f"duplicate idx {dup!r}", file=path, row=dup, field="idx")
        return df
