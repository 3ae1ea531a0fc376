"""Human-judgment sets shipped with BARTScore (Yuan et al., 2021), pickles converted to JSON.

Every file is a JSON object keyed by id (the pickle's dict):

* ``WMT/<lp>/data.json`` (WMT19 DA relative ranking, kk-en / gu-en / lt-en): ``{"<n>": {"src",
  "ref", "better": {"sys_name", "sys", "scores"}, "worse": {...}}}``: two system translations
  of one source sentence whose DA scores differ enough that one counts as better (``scores`` are
  empty metric slots). -> pairwise: instruction = source sentence, ``reference`` = the reference
  translation, id = the key. The better translation always comes first in the file, so its
  position comes from :func:`~registry.adapters.sources.base.place_pair` (``B`` when the
  xxh3-64 hash of the id is odd). System names go to ``metadata`` (``system_a``/``system_b``).
* ``SUM/{SummEval,REALSumm,Newsroom}/data.json``: ``{"<doc id>": {"src", "ref_summ"
  [, "ref_summs"], "sys_summs": {"<system>": {"sys_summ", "scores": {criterion: value}}}}}``
  -> pointwise, one dataset per criterion; id = ``<doc id>/<system>``, ``system_id`` = the system
  key as written (REALSumm's keep their ``.txt``), ``reference`` = ``ref_summ``; SummEval's other
  crowd references (``ref_summs`` minus ``ref_summ``) go to ``metadata.other_references``.
* ``D2T/BAGEL/data.json``: ``{"<n>": {"src" (a dialogue act), "sys_summ", "scores",
  "ref_summs"}}`` -> pointwise; id = the key; no system names (``system_id`` is null);
  ``reference`` = the first reference, the other distinct ones go to ``metadata``.

Score scales (checked against every value in the files):

* SummEval (Fabbri et al., 2021): coherence, consistency, fluency, relevance, 1-5, mean of three
  expert ratings (``num_annotators`` 3; single ratings are not shipped).
* REALSumm (Bhandari et al., 2020): ``litepyramid_recall``, 0-1 (share of reference SCUs present).
* Newsroom (Grusky et al., 2018): coherence, fluency, informativeness, relevance, 1-5, mean of
  three crowd ratings (``num_annotators`` 3).
* BAGEL (Mairesse et al., 2010; ratings of Novikova et al., 2017): informativeness, naturalness,
  quality, 1-6 (half points occur).

Skipped: only records whose source (the instruction) is blank; the shipped files have none. An
empty output is kept as ``""`` (none in the shipped files); a missing or non-string one raises
``InvalidInput``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from registry.adapters.sources.base import (
    COLUMNS,
    DatasetDef,
    SourceAdapter,
    SourceInfo,
    checked_score,
    frame,
    iter_records,
    place_pair,
    read_json,
    require,
    require_text,
    to_json,
)
from registry.errors import InvalidInput

_ROOT = "neulab__BARTScore"
_ORIGIN = "https://github.com/neulab/BARTScore"
_CITATION = "Yuan, Neubig and Liu, BARTScore: Evaluating Generated Text as Text Generation, NeurIPS 2021"


# ------------------------------------------------------------------------------ WMT (pairwise)

_LANG_PAIRS = {"kk-en": "Kazakh", "gu-en": "Gujarati", "lt-en": "Lithuanian"}


class BARTScoreWMTAdapter(SourceAdapter):
    """WMT19 DA relative-ranking translation pairs (better / worse) from BARTScore."""

    info = SourceInfo(
        name="bartscore-wmt",
        title="WMT19 DARR pairs (BARTScore copy)",
        origin=_ORIGIN,
        license="Apache-2.0",
        citation=_CITATION + "; data from Ma et al., Results of the WMT19 Metrics Shared Task, WMT 2019",
        task_types=("pairwise",),
        description="Two MT outputs for one source sentence; human DA scores say which is better.",
    )

    def catalog(self) -> list[DatasetDef]:
        return [
            DatasetDef(name=f"wmt19-{lp}", task_type="pairwise", path=f"{_ROOT}/WMT/{lp}/data.json",
                       description=f"WMT19 {lang}-English DA relative-ranking pairs (better vs worse translation)",
                       options={"lp": lp})
            for lp, lang in _LANG_PAIRS.items()
        ]

    def read(self, path: Path, *, lp: str | None = None, **_: Any) -> pd.DataFrame:
        path = Path(path)
        lp = lp or path.parent.name  # the standard layout names the folder after the language pair
        rows = []
        for key, rec in iter_records(read_json(path), file=path):
            example_id = str(key)
            src, ref = require(rec, "src", file=path, row=key), require(rec, "ref", file=path, row=key)
            outs = {}
            for side in ("better", "worse"):
                out = require(rec, side, file=path, row=key)
                outs[side] = (require_text(out, "sys", file=path, row=key, allow_empty=True),
                              require(out, "sys_name", file=path, row=key))
            if not (isinstance(src, str) and src.strip()):
                continue  # blank source sentence: no instruction (none in the shipped files)
            a, b, label = place_pair(example_id, outs["better"][0], outs["worse"][0])
            names = (outs["better"][1], outs["worse"][1]) if label == "A" else (outs["worse"][1], outs["better"][1])
            rows.append({
                "example_id": example_id, "instruction": src, "response_a": a, "response_b": b,
                "label": label, "reference": ref, "category": lp, "num_annotators": None,
                "metadata": to_json({"system_a": names[0], "system_b": names[1]}),
            })
        return frame(rows, COLUMNS["pairwise"])


# --------------------------------------------------------------- summaries, data-to-text (pointwise)


@dataclass(frozen=True)
class _Corpus:
    path: str
    criteria: tuple[str, ...]
    scale: tuple[float, float]
    num_annotators: int | None
    description: str


_CORPORA = {
    "summeval": _Corpus("SUM/SummEval/data.json", ("coherence", "consistency", "fluency", "relevance"), (1.0, 5.0), 3,
                        "SummEval CNN/DM summaries of 16 systems, expert {criterion} (1-5, mean of 3)"),
    "realsumm": _Corpus("SUM/REALSumm/data.json", ("litepyramid_recall",), (0.0, 1.0), None,
                        "REALSumm CNN/DM summaries of 24 systems, LitePyramid recall (0-1)"),
    "newsroom": _Corpus("SUM/Newsroom/data.json", ("coherence", "fluency", "informativeness", "relevance"),
                        (1.0, 5.0), 3, "Newsroom summaries of 7 systems, crowd {criterion} (1-5, mean of 3)"),
    "bagel": _Corpus("D2T/BAGEL/data.json", ("informativeness", "naturalness", "quality"), (1.0, 6.0), None,
                     "BAGEL restaurant data-to-text outputs, human {criterion} (1-6)"),
}


def _outputs(key: str, rec: Any, *, file: Path) -> list[tuple[str, str | None, Any]]:
    """``(example id, system, output record)`` for one source record."""
    if isinstance(rec, dict) and "sys_summs" in rec:
        systems = rec["sys_summs"]
        if not isinstance(systems, dict):
            raise InvalidInput("expected an object of systems", file=file, row=key, field="sys_summs")
        return [(f"{key}/{name}", str(name), out) for name, out in systems.items()]
    return [(str(key), None, rec)]


def _references(rec: Any, *, file: Path, row: int | str) -> list[str]:
    """Distinct non-empty references, the main one (``ref_summ``) first; ``ref_summs`` must be a list."""
    more = rec.get("ref_summs") or []
    if not isinstance(more, list):
        raise InvalidInput(f"expected a list of references, got {type(more).__name__}", file=file, row=row,
                           field="ref_summs")
    refs = [rec.get("ref_summ")] + more
    return list(dict.fromkeys(r for r in refs if isinstance(r, str) and r.strip()))


class BARTScorePointwiseAdapter(SourceAdapter):
    """SummEval, REALSumm, Newsroom and BAGEL human scores, one dataset per criterion."""

    info = SourceInfo(
        name="bartscore",
        title="BARTScore summarization and data-to-text sets",
        origin=_ORIGIN,
        license="Apache-2.0",
        citation=_CITATION + "; data from Fabbri et al. 2021 (SummEval), Bhandari et al. 2020 "
                 "(REALSumm), Grusky et al. 2018 (Newsroom), Mairesse et al. 2010 (BAGEL)",
        task_types=("pointwise",),
        description="System summaries / data-to-text outputs with human scores per criterion.",
    )

    def catalog(self) -> list[DatasetDef]:
        return [
            DatasetDef(name=f"{corpus}-{criterion.replace('_', '-')}", task_type="pointwise",
                       path=f"{_ROOT}/{c.path}", description=c.description.format(criterion=criterion),
                       options={"corpus": corpus, "criterion": criterion}, scale=c.scale)
            for corpus, c in _CORPORA.items() for criterion in c.criteria
        ]

    def read(self, path: Path, *, corpus: str | None = None, criterion: str | None = None,
             **_: Any) -> pd.DataFrame:
        path = Path(path)
        corpus = corpus or path.parent.name.lower()  # the standard layout names the folder
        if corpus not in _CORPORA:
            raise InvalidInput(f"unknown corpus {corpus!r}; expected one of {', '.join(_CORPORA)}",
                               file=path, field="corpus")
        spec = _CORPORA[corpus]
        if criterion not in spec.criteria:
            raise InvalidInput(f"criterion {criterion!r} is not one of {', '.join(spec.criteria)}",
                               file=path, field="criterion")
        rows = []
        for key, rec in iter_records(read_json(path), file=path):
            src = require(rec, "src", file=path, row=key)
            refs = _references(rec, file=path, row=key)
            for example_id, system, out in _outputs(str(key), rec, file=path):
                text = require_text(out, "sys_summ", file=path, row=example_id, allow_empty=True)
                raw = require(require(out, "scores", file=path, row=example_id), criterion, file=path, row=example_id)
                score = checked_score(raw, spec.scale, file=path, row=example_id, field=f"scores.{criterion}")
                if not (isinstance(src, str) and src.strip()):
                    continue  # blank source: no instruction (none in the shipped files)
                rows.append({
                    "example_id": example_id, "instruction": src, "response": text, "score": score,
                    "criterion": criterion, "scale_min": spec.scale[0], "scale_max": spec.scale[1],
                    "reference": refs[0] if refs else None, "system_id": system, "category": None,
                    "num_annotators": spec.num_annotators,
                    "metadata": to_json({"other_references": refs[1:]} if len(refs) > 1 else None),
                })
        return frame(rows, COLUMNS["pointwise"])
