"""SummaC benchmark (Laban et al., 2022): is a summary consistent with its document?

Files: ``data/{factcc,polytope,summeval,xsumfaith}.json``, each one JSON object keyed by the
benchmark's own id (``"factcc_0"``...), the validation cut SummaC released. Every record has
``document``, ``claim`` (the summary), ``label`` (1 = consistent, 0 = inconsistent) and
``annotations``, plus per-subset extras (``model_name``, ``cnndm_id``, ``bbcid``, Polytope's
``errors``...) kept in ``metadata``. ``category`` is the summarizer (``model_name``) where the
subset names one.

Annotators: ``annotations`` holds one value per annotator. FactCC and Polytope have a single one
(equal to ``label``). XSumFaith has 3 to 13 binary ones (1 = no hallucination). SummEval has
three 1–5 expert consistency scores; following SummaC, an annotator counts as "consistent" only
for a 5 (the raw scores stay in ``metadata["annotations"]``).

Gold label: SummaC's own ``label`` is kept as is, so SummaC's published numbers can be
reproduced. For SummEval it equals the strict majority of ``annotator_labels``; for XSumFaith
SummaC labels a summary consistent when "no hallucination" is the most common of the raw
hallucination *types* (intrinsic / extrinsic / none), so it can differ from the majority of
the binary ``annotator_labels``: 2 of 485 records where at most half the annotators say
consistent ([1,1,0,0] and [1,1,0,0,0]) are labelled consistent. No record is skipped.

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
    require_text,
    to_json,
)
from registry.errors import InvalidInput

CONSISTENCY_LABELS = ("consistent", "inconsistent")
"""Label set of the consistency datasets; 1 / 0 in the sources."""
BINARY_CONSISTENCY = {1: "consistent", 0: "inconsistent"}

_ROOT = "tingofurro__summac/data"
_SUBSETS = {
    "factcc": "FactCC: CNN/DM claims, one annotator",
    "polytope": "Polytope: CNN/DM summaries of 9 systems, consistent when no error was logged",
    "summeval": "SummEval: CNN/DM summaries, consistent when most of 3 experts give consistency 5",
    "xsumfaith": "XSumFaith: XSum summaries with hallucination annotations",
}
_EXTRAS = ("model_name", "cnndm_id", "bbcid", "id", "ID", "filepath", "cut", "origin", "error_type",
           "errors", "overall_label", "omission_label", "addition_label", "duplication_label",
           "inaccuracy_label")


def _annotator_label(value: Any, *, likert: bool, file: Path, row: str) -> str:
    if likert:  # SummEval: 1-5 expert score, consistent only for a 5 (SummaC's rule)
        if isinstance(value, bool) or value not in (1, 2, 3, 4, 5):  # true is not the score 1
            raise InvalidInput(f"annotation {value!r} is not a 1-5 score", file=file, row=row,
                               field="annotations")
        return "consistent" if value == 5 else "inconsistent"
    return map_label(value, BINARY_CONSISTENCY, file=file, row=row, field="annotations")


class SummaCAdapter(SourceAdapter):
    """The four SummaC benchmark subsets shipped in the SummaC repository."""

    info = SourceInfo(
        name="summac",
        title="SummaC benchmark",
        origin="https://github.com/tingofurro/summac",
        license="Apache-2.0",
        citation="Laban et al., SummaC: Re-Visiting NLI-based Models for Inconsistency Detection "
                 "in Summarization, TACL 2022",
        task_types=("classification",),
        description="Document-summary pairs labelled consistent or inconsistent by humans.",
    )

    def catalog(self) -> list[DatasetDef]:
        return [
            DatasetDef(name=f"summac-{sub}", task_type="classification", path=f"{_ROOT}/{sub}.json",
                       description=desc, labels=CONSISTENCY_LABELS,
                       options={"likert_annotations": sub == "summeval"})
            for sub, desc in _SUBSETS.items()
        ]

    def read(self, path: Path, *, likert_annotations: bool = False, **_: Any) -> pd.DataFrame:
        path = Path(path)
        rows = []
        for key, rec in iter_records(read_json(path), file=path):
            raw_annotations = require(rec, "annotations", file=path, row=key)
            if not isinstance(raw_annotations, list) or not raw_annotations:
                raise InvalidInput("expected a non-empty list", file=path, row=key, field="annotations")
            annotator_labels = [_annotator_label(a, likert=likert_annotations, file=path, row=key)
                                for a in raw_annotations]
            extras = {k: rec[k] for k in _EXTRAS if k in rec}
            if likert_annotations:
                extras["annotations"] = raw_annotations
            rows.append({
                "example_id": str(key),
                "instruction": require_text(rec, "document", file=path, row=key),
                "response": require_text(rec, "claim", file=path, row=key, allow_empty=True),
                "label": map_label(require(rec, "label", file=path, row=key), BINARY_CONSISTENCY,
                                   file=path, row=key, field="label"),
                "category": rec.get("model_name"),
                "num_annotators": len(annotator_labels),
                "annotator_labels": annotator_labels,
                "metadata": to_json(extras),
            })
        return frame(rows, COLUMNS["classification"])
