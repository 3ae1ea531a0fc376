"""TruthfulQA judge data (Lin et al., 2022; re-release by Wang): is an answer true / informative?

Files: ``data/finetune_{truth,info}_{train,dev}.jsonl``, the human-labelled answers TruthfulQA
uses to fine-tune its GPT-judge and GPT-info. Each line is an OpenAI fine-tuning record
``{"prompt": "Q: <question>\\nA: <answer>\\nTrue:", "completion": " yes" | " no"}`` (``Helpful:``
instead of ``True:`` in the info files). The question is everything up to the first
``"\\nA: "`` (questions are one line); the answer is the rest, which may itself span lines or
contain ``"A: "`` (model continuations).

Labels: truth files → ("true", "false"), info files → ("informative", "uninformative"),
from the completion " yes" / " no"; anything else raises ``InvalidInput``.

Nothing is skipped: every record becomes a row, so each dataset has as many rows as its file.
Empty answers (the judged model said nothing) are kept as ``""`` with their label: 57 in
truth-train (56 true, 1 false), 10 in truth-dev (all true), 59 in info-train (56
uninformative, 3 informative), 8 in info-dev (all uninformative). A record without a
``completion`` or with an unknown one raises ``InvalidInput``. Kept as in the source: repeated
(question, answer) records — 3,392 repeats in truth-train (25 pairs carry both labels), 73 in
truth-dev, 3,443 in info-train (43 with both labels), 59 in info-dev (1). Ids are content ids of
(question, answer), since the answer is what is judged; repeats get ``-2``, ``-3``... in file
order.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from registry.adapters.sources.base import (
    COLUMNS,
    DatasetDef,
    SourceAdapter,
    SourceInfo,
    frame,
    map_label,
    read_jsonl,
    require,
    stable_ids,
)
from registry.errors import InvalidInput

_ROOT = "yizhongw__truthfulqa_reeval/data"
_PROMPT = re.compile(r"Q: (?P<question>[^\n]+)\nA: (?P<answer>.*)\n(?P<cue>True|Helpful):", re.DOTALL)
_ASPECTS = {  # aspect → (prompt cue, labels for " yes"/" no", description)
    "truth": ("True", ("true", "false"), "is the answer true (no false statement)?"),
    "info": ("Helpful", ("informative", "uninformative"), "is the answer informative?"),
}


class TruthfulQAAdapter(SourceAdapter):
    """TruthfulQA's human truthfulness / informativeness judgments, one dataset per aspect × split."""

    info = SourceInfo(
        name="truthfulqa",
        title="TruthfulQA judge training data",
        origin="https://github.com/yizhongw/truthfulqa_reeval",
        license="Apache-2.0",
        citation="Lin et al., TruthfulQA: Measuring How Models Mimic Human Falsehoods, ACL 2022",
        task_types=("classification",),
        description="Answers to TruthfulQA questions labelled by humans as true / informative or not.",
    )

    def catalog(self) -> list[DatasetDef]:
        return [
            DatasetDef(name=f"truthfulqa-{aspect}-{split}", task_type="classification",
                       path=f"{_ROOT}/finetune_{aspect}_{split}.jsonl", labels=labels,
                       description=f"TruthfulQA {split}: {desc}", options={"aspect": aspect})
            for aspect, (_, labels, desc) in _ASPECTS.items()
            for split in ("train", "dev")
        ]

    def read(self, path: Path, *, aspect: str = "truth", **_: Any) -> pd.DataFrame:
        path = Path(path)
        if aspect not in _ASPECTS:
            raise InvalidInput(f"unknown aspect {aspect!r}; expected one of {', '.join(_ASPECTS)}")
        cue, (yes, no), _ = _ASPECTS[aspect]
        label_of = {" yes": yes, " no": no}
        rows = []
        for lineno, rec in enumerate(read_jsonl(path), start=1):
            prompt = require(rec, "prompt", file=path, row=lineno)
            match = _PROMPT.fullmatch(prompt) if isinstance(prompt, str) else None
            if match is None or match["cue"] != cue:
                raise InvalidInput(f'expected "Q: <question>\\nA: <answer>\\n{cue}:", got {prompt!r:.60}',
                                   file=path, row=lineno, field="prompt")
            label = map_label(require(rec, "completion", file=path, row=lineno), label_of,
                              file=path, row=lineno, field="completion")
            rows.append({"instruction": match["question"], "response": match["answer"], "label": label})
        df = frame(rows, COLUMNS["classification"])
        df["example_id"] = stable_ids(list(zip(df["instruction"], df["response"])))
        return df
