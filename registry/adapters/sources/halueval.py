"""HaluEval general (Li et al., 2023): does a ChatGPT response contain hallucinated content?

File: ``data/general_data.json``, JSON lines despite its name, one record per line:
``{"ID": "1", "user_query", "chatgpt_response", "hallucination": "yes" | "no",
"hallucination_spans": [...]}``. Only the final human label is published (no per-annotator
labels).

Labels: ``hallucination`` "yes" → ``hallucinated``, "no" → ``not_hallucinated``; any other
value raises ``InvalidInput``. Every record of the released file has a label, so nothing is
skipped; a record without one is malformed and raises ``InvalidInput`` naming the field.

Ids: ``ID`` is the line number as a string, except on 3 lines of the released file (lines 1975,
2059, 2159) where it is ``""`` or the header text ``"ID"``; those rows keep their data and get a
content id from their query (:func:`content_id`). The hallucinated ``hallucination_spans`` go
into ``metadata``.
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
    content_id,
    frame,
    read_jsonl,
    require,
    to_json,
)
from registry.adapters.sources.base import map_label, require_text

LABELS = ("hallucinated", "not_hallucinated")
_LABEL_OF = {"yes": "hallucinated", "no": "not_hallucinated"}


class HaluEvalAdapter(SourceAdapter):
    """HaluEval's human-annotated general-query set."""

    info = SourceInfo(
        name="halueval",
        title="HaluEval (general)",
        origin="https://github.com/RUCAIBox/HaluEval",
        license="MIT",
        citation="Li et al., HaluEval: A Large-Scale Hallucination Evaluation Benchmark for Large "
                 "Language Models, EMNLP 2023",
        task_types=("classification",),
        description="ChatGPT responses to user queries, labelled by humans as hallucinated or not.",
    )

    def catalog(self) -> list[DatasetDef]:
        return [DatasetDef(name="halueval-general", task_type="classification",
                           path="RUCAIBox__HaluEval/data/general_data.json", labels=LABELS,
                           description="HaluEval general: user queries with ChatGPT responses")]

    def read(self, path: Path, **_: Any) -> pd.DataFrame:
        path = Path(path)
        rows = []
        for lineno, rec in enumerate(read_jsonl(path), start=1):
            query = require_text(rec, "user_query", file=path, row=lineno)
            source_id = str(require(rec, "ID", file=path, row=lineno))
            rows.append({
                "example_id": source_id if source_id.isdigit() else content_id(query),
                "instruction": query,
                "response": require_text(rec, "chatgpt_response", file=path, row=lineno, allow_empty=True),
                "label": map_label(require(rec, "hallucination", file=path, row=lineno), _LABEL_OF,
                                   file=path, row=lineno, field="hallucination"),
                "num_annotators": None,
                "metadata": to_json({"hallucination_spans": spans} if (spans := rec.get("hallucination_spans"))
                                    else None),
            })
        return frame(rows, COLUMNS["classification"])
