"""SummEdits (Laban et al., 2023): is an (edited) summary consistent with its document?

Files: ``data/summedits/summedits_<domain>.json``, one per domain (ectsum, news, podcast,
qmsumm, sales_call, sales_email, samsum, scitldr), each a JSON list of ``{"id", "doc",
"summary", "label": 1 | 0, "original_summary", "edit_types", "split"}``. ``label`` 1 means
consistent, 0 inconsistent; it is the single label SummEdits publishes per edited summary
(annotator-validated), so ``annotator_labels`` is empty. ``id`` is the source's own id (the seed
summary ends in ``_og``, its edits in ``_0``, ``_1``...). ``category`` is the domain;
``split``, ``edit_types`` and ``original_summary`` (the seed summary the edit started from) go
into ``metadata``. No record is skipped.
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
    read_json,
    require,
    to_json,
)
from registry.adapters.sources.base import map_label, require_text
from registry.adapters.sources.summac import BINARY_CONSISTENCY, CONSISTENCY_LABELS

_ROOT = "salesforce__factualNLG/data/summedits"
_DOMAINS = {
    "ectsum": "earnings call transcripts (ECTSum)",
    "news": "news articles",
    "podcast": "podcast transcripts",
    "qmsumm": "meeting transcripts (QMSum)",
    "sales_call": "sales call transcripts",
    "sales_email": "sales emails",
    "samsum": "chat dialogues (SAMSum)",
    "scitldr": "scientific paper abstracts (SciTLDR)",
}


class SummEditsAdapter(SourceAdapter):
    """SummEdits: seed summaries and their minimal edits, one dataset per domain."""

    info = SourceInfo(
        name="summedits",
        title="SummEdits",
        origin="https://github.com/salesforce/factualNLG",
        license="Apache-2.0",
        citation="Laban et al., SummEdits: Measuring LLM Ability at Factual Reasoning Through "
                 "The Lens of Summarization, EMNLP 2023",
        task_types=("classification",),
        description="Summaries (seed and minimally edited) labelled consistent or inconsistent "
                    "with their document.",
    )

    def catalog(self) -> list[DatasetDef]:
        return [
            DatasetDef(name=f"summedits-{domain.replace('_', '-')}", task_type="classification",
                       path=f"{_ROOT}/summedits_{domain}.json", labels=CONSISTENCY_LABELS,
                       description=f"SummEdits, {desc}", options={"domain": domain})
            for domain, desc in _DOMAINS.items()
        ]

    def read(self, path: Path, *, domain: str | None = None, **_: Any) -> pd.DataFrame:
        path = Path(path)
        rows = []
        for i, rec in iter_records(read_json(path), file=path):
            rows.append({
                "example_id": str(require(rec, "id", file=path, row=i)),
                "instruction": require_text(rec, "doc", file=path, row=i),
                "response": require_text(rec, "summary", file=path, row=i, allow_empty=True),
                "label": map_label(require(rec, "label", file=path, row=i), BINARY_CONSISTENCY,
                                   file=path, row=i, field="label"),
                "category": domain,
                "num_annotators": None,
                "metadata": to_json({k: rec[k] for k in ("split", "edit_types", "original_summary")
                                     if k in rec}),
            })
        return frame(rows, COLUMNS["classification"])
