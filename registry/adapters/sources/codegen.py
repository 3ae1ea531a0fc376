"""CoNaLa code-generation grades (Evtikhiev et al., 2023): how useful is a snippet for an intent?

Files: ``data/to-grade/conala/conala-human-grades.json``, a JSON list of 472 records, one per
natural-language ``intent``, holding the human reference ``snippet`` (a list of 1–5 equivalent
solutions) and the outputs of five systems (``baseline``, ``tranx-annot``, ``best-tranx``,
``best-tranx-rerank``, ``codex``), each with ``grade-<system>``: ``{"graderN": 0..4}``, the
grades of 2–10 graders (0 = useless, 4 = solves the task). The reference snippet is graded too,
as ``grade-snippet``. ``conala-aggregated-grades.json`` beside it holds the authors' own
aggregate per (intent, system) (not a mean), kept as ``metadata["published_grade"]``
(absent for the reference snippet, which that file leaves unaggregated).

Rows: one per (intent, system), ``system_id`` = the system (``snippet`` for the human
reference), ``instruction`` = the intent, ``response`` = the code (the reference's solutions
joined by newlines), ``reference`` = the reference code for generated systems (``None`` on the
reference's own rows). ``score`` is the mean of ``annotator_scores`` (one per grader, in file
order; grader names in ``metadata["graders"]``), scale 0–4.

Nothing is skipped: the 2 rows whose generated code is empty (``tranx-annot`` for the intents
at positions 128 and 396, graded 0 by every grader) are kept with ``response`` ``""``, so the
dataset has 472 × 6 = 2,832 rows. A record with a blank ``intent`` raises ``InvalidInput``.
Ids: content ids of (intent, system).
"""

from __future__ import annotations

from pathlib import Path
from statistics import fmean
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
    require_text,
    stable_ids,
    to_json,
)
from registry.errors import InvalidInput

SYSTEMS = ("snippet", "baseline", "tranx-annot", "best-tranx", "best-tranx-rerank", "codex")
REFERENCE_SYSTEM = "snippet"
SCALE = (0.0, 4.0)
_DIR = "JetBrains-Research__codegen-metrics/data/to-grade/conala"


def _code(value: Any, *, file: Path, row: int, field: str) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    if isinstance(value, str):
        return value
    raise InvalidInput(f"expected code as a string or list of strings, got {type(value).__name__}",
                       file=file, row=row, field=field)


def _grades(value: Any, *, file: Path, row: int, field: str) -> dict[str, float]:
    if not isinstance(value, dict) or not value:
        raise InvalidInput("expected a non-empty object {grader: grade}", file=file, row=row, field=field)
    for grader, grade in value.items():
        number = isinstance(grade, int | float) and not isinstance(grade, bool)
        if not number or not SCALE[0] <= grade <= SCALE[1]:
            raise InvalidInput(f"grade {grade!r} of {grader} is not a number in 0-4", file=file, row=row,
                               field=field)
    return {grader: float(grade) for grader, grade in value.items()}


def _published(path: Path, records: list[Any], *, source: Path) -> list[dict[str, Any]]:
    """The aggregated-grades file's records, checked to align with the human-grades records (of ``source``)."""
    data = read_json(path)
    if not isinstance(data, list) or len(data) != len(records):
        raise InvalidInput(f"expected a list of {len(records)} records like the human grades", file=path)
    for i, (agg, rec) in enumerate(zip(data, records, strict=True)):
        if not isinstance(rec, dict):
            raise InvalidInput(f"expected a record (JSON object), got {type(rec).__name__}", file=source, row=i)
        if require(agg, "intent", file=path, row=i) != rec.get("intent"):
            raise InvalidInput("intent differs from the human-grades file's", file=path, row=i,
                               field="intent")
    return data


class ConalaAdapter(SourceAdapter):
    """Human usefulness grades of CoNaLa code snippets from five generators and the reference."""

    info = SourceInfo(
        name="codegen-conala",
        title="CoNaLa human grades (codegen-metrics)",
        origin="https://github.com/JetBrains-Research/codegen-metrics",
        license="Apache-2.0",
        citation="Evtikhiev et al., Out of the BLEU: How Should We Assess Quality of the Code "
                 "Generation Models?, Journal of Systems and Software, 2023",
        task_types=("pointwise",),
        description="Python snippets for CoNaLa intents graded 0-4 for usefulness by several graders.",
    )

    def catalog(self) -> list[DatasetDef]:
        return [DatasetDef(name="conala-usefulness", task_type="pointwise",
                           path=f"{_DIR}/conala-human-grades.json", scale=SCALE,
                           description="CoNaLa: usefulness (0-4) of generated and reference snippets",
                           options={"aggregated": "conala-aggregated-grades.json"})]

    def read(self, path: Path, *, aggregated: str | None = None, **_: Any) -> pd.DataFrame:
        path = Path(path)
        data = read_json(path)
        if not isinstance(data, list):
            raise InvalidInput(f"expected a list of records, got {type(data).__name__}", file=path)
        published = _published(path.parent / aggregated, data, source=path) if aggregated else None
        rows = []
        for i, rec in iter_records(data, file=path):
            intent = require_text(rec, "intent", file=path, row=i)
            reference = _code(require(rec, REFERENCE_SYSTEM, file=path, row=i), file=path, row=i,
                              field=REFERENCE_SYSTEM)
            for system in SYSTEMS:
                code = _code(require(rec, system, file=path, row=i), file=path, row=i, field=system)
                field = f"grade-{system}"
                grades = _grades(require(rec, field, file=path, row=i), file=path, row=i, field=field)
                extras: dict[str, Any] = {"graders": list(grades)}
                agg = published[i].get(field) if published is not None else None
                if isinstance(agg, int | float):
                    extras["published_grade"] = agg
                rows.append({
                    "instruction": intent,
                    "response": code,
                    "score": fmean(grades.values()),
                    "criterion": "usefulness",
                    "scale_min": SCALE[0],
                    "scale_max": SCALE[1],
                    "reference": None if system == REFERENCE_SYSTEM else reference,
                    "system_id": system,
                    "annotator_scores": list(grades.values()),
                    "num_annotators": len(grades),
                    "metadata": to_json(extras),
                })
        df = frame(rows, COLUMNS["pointwise"])
        df["example_id"] = stable_ids(list(zip(df["instruction"], df["system_id"])))
        return df
