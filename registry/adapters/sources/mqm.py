"""WMT21 TED talks MQM (Freitag et al., 2021): expert error annotations turned into segment scores.

Files: ``ted/{ende,zhen}/mqm_ted_<lp>.tsv``, UTF-8, tab-separated with a header ``system doc
doc_id seg_id rater source target category severity [comment]``, **one row per error**: a
segment a rater found flawless has one row with severity ``No-error``. The error span is marked
``<v>…</v>`` inside ``target`` (or ``source`` for omissions and source errors); the marks are
removed from the texts and the span kept. Fields are never quoted: texts may start with ``"``,
so lines are split on tabs only (no CSV quoting).

Score: MQM weights of Freitag et al. (2021), as in the data's README — Major 5, Minor 1, Minor
``Fluency/Punctuation`` 0.1, ``Non-translation`` 25, No-error/Neutral 0 (source errors count
like any other category; this reproduces the README's system-level TED scores, e.g. zh-en ref.A
5.52, DIDI-NLP 1.65). A rater's segment score is **minus** the sum of their error weights, so
higher is better; raters marked at most five errors per segment, so it lies in [-25, 0]
(``scale`` = (-25, 0); a larger penalty raises ``InvalidInput``). ``score`` is the mean over the
segment's raters, ``annotator_scores`` the per-rater scores (the TED files have one rater per
segment and system). Unknown severities raise ``InvalidInput``.

Rows: one per (system, segment): ``system_id`` = MT system (``ref``/``refB`` are human
translations, rated like the systems), ``instruction`` = source, ``response`` = translation,
``category`` = talk (``doc``), ``reference`` = ``None``; ``example_id`` = ``<seg_id>:<system>``.
Errors (rater, category, severity, span, comment) go into ``metadata``. No row is skipped.
"""

from __future__ import annotations

import re
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
    read_text,
    to_json,
)
from registry.errors import InvalidInput

SCALE = (-25.0, 0.0)
_COLUMNS = ("system", "doc", "doc_id", "seg_id", "rater", "source", "target", "category", "severity")
_SPAN = re.compile(r"<v>(.*?)</v>", re.DOTALL)
_MARK = re.compile(r"</?v>")
_PAIRS = {"ende": ("en-de", "English→German"), "zhen": ("zh-en", "Chinese→English")}


def error_weight(severity: str, category: str) -> float:
    """MQM weight of one error (Freitag et al., 2021); ``KeyError`` for an unknown severity."""
    sev = severity.strip().lower()
    if sev in ("no-error", "neutral"):
        return 0.0
    if sev == "major":
        return 25.0 if category.lower().startswith("non-translation") else 5.0
    if sev == "minor":
        return 0.1 if category == "Fluency/Punctuation" else 1.0
    raise KeyError(severity)


def read_tsv(path: Path) -> list[dict[str, str]]:
    """Rows of an unquoted TSV with a header, as dicts; wrong field counts name the line."""
    lines = read_text(path).split("\n")
    header = lines[0].rstrip("\r").split("\t")
    for col in _COLUMNS:
        if col not in header:
            raise InvalidInput("missing column", file=path, row=1, field=col)
    rows = []
    for lineno, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise InvalidInput(f"expected {len(header)} tab-separated fields, got {len(fields)}",
                               file=path, row=lineno)
        rows.append({"_line": lineno, **dict(zip(header, fields, strict=True))})
    return rows


class MQMAdapter(SourceAdapter):
    """Google's expert MQM annotations of the WMT21 TED talks test suite, one dataset per pair."""

    info = SourceInfo(
        name="wmt-mqm",
        title="WMT MQM human evaluation (TED)",
        origin="https://github.com/google/wmt-mqm-human-evaluation",
        license="Apache-2.0",
        citation="Freitag et al., Experts, Errors, and Context: A Large-Scale Study of Human "
                 "Evaluation for Machine Translation, TACL 2021",
        task_types=("pointwise",),
        description="Machine translations scored by professional translators with MQM error annotations.",
    )

    def catalog(self) -> list[DatasetDef]:
        return [
            DatasetDef(name=f"wmt-mqm-ted-{lp}", task_type="pointwise", scale=SCALE,
                       path=f"google__wmt-mqm-human-evaluation/ted/{code}/mqm_ted_{code}.tsv",
                       description=f"WMT21 TED talks {words}: segment score = -MQM (0 = no error)")
            for code, (lp, words) in _PAIRS.items()
        ]

    def read(self, path: Path, **_: Any) -> pd.DataFrame:
        path = Path(path)
        segments: dict[tuple[str, str], list[dict[str, str]]] = {}
        for row in read_tsv(path):
            segments.setdefault((row["system"], row["seg_id"]), []).append(row)
        return frame([self._segment(path, errs) for errs in segments.values()], COLUMNS["pointwise"])

    @staticmethod
    def _segment(path: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
        first = rows[0]
        penalty: dict[str, float] = {}
        errors = []
        for r in rows:
            try:
                weight = error_weight(r["severity"], r["category"])
            except KeyError:
                raise InvalidInput(f"unknown severity {r['severity']!r}; expected Major, Minor, Neutral "
                                   "or No-error", file=path, row=r["_line"], field="severity") from None
            penalty[r["rater"]] = penalty.get(r["rater"], 0.0) + weight
            if r["severity"].lower() != "no-error":
                side = "source" if "<v>" in r["source"] else "target"
                span = _SPAN.search(r[side])
                errors.append({"rater": r["rater"], "category": r["category"], "severity": r["severity"],
                               "span": span.group(1) if span else None, "side": side,
                               **({"comment": r["comment"]} if r.get("comment") else {})})
            if penalty[r["rater"]] > -SCALE[0] + 1e-9:
                raise InvalidInput(f"MQM penalty {penalty[r['rater']]:g} of {r['rater']} exceeds "
                                   f"{-SCALE[0]:g}, the most five errors can weigh", file=path,
                                   row=r["_line"], field="severity")
        texts = {}
        for field in ("source", "target"):
            texts[field] = _MARK.sub("", first[field])
            if not texts[field].strip():
                raise InvalidInput("empty text", file=path, row=first["_line"], field=field)
        scores = [round(0.0 - p, 4) for p in penalty.values()]
        return {
            "example_id": f"{first['seg_id']}:{first['system']}",
            "instruction": texts["source"],
            "response": texts["target"],
            "score": round(fmean(scores), 4),
            "criterion": "mqm",
            "scale_min": SCALE[0],
            "scale_max": SCALE[1],
            "reference": None,
            "system_id": first["system"],
            "annotator_scores": scores,
            "num_annotators": len(scores),
            "category": first["doc"],
            "metadata": to_json({"doc": first["doc"], "doc_id": first["doc_id"], "seg_id": first["seg_id"],
                                 "raters": list(penalty), "errors": errors}),
        }
