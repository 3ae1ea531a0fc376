"""Human scores UniEval (Zhong et al., 2022) was meta-evaluated on, from ``reproduce/data/``.

Each file is a JSON list of records with ``"scores": {criterion: value}``:

* ``dialogue/topical_chat.json`` (USR Topical-Chat, Mehri & Eskenazi 2020): ``{"source" (dialogue
  history, turns separated by " \\n "), "context" (the knowledge fact), "system_id",
  "system_output", "scores"}``; 60 dialogues x 6 systems; no record id. Criteria and scales (mean
  of 3 annotators, ``num_annotators`` 3): understandability 0-1, naturalness 1-3, coherence 1-3,
  engagingness 1-3, groundedness 0-1, overall 1-5. Instruction = ``"dialogue history:\\n<source>
  \\n\\nfact:\\n<context>"`` (both shown to the annotators).
* ``data2text/{sfhot,sfres}.json`` (SF hotel / restaurant, Wen et al. 2015, ratings of Novikova et
  al. 2017): ``{"doc_id", "source" (dialogue act), "reference", "system_output", "scores"}``;
  informativeness, naturalness, overall on 1-6 (half points occur); no system names.
* ``fact/qags_{cnndm,xsum}.json`` (QAGS, Wang et al. 2020): ``{"doc_id", "system_id" (always 0),
  "source" (article), "reference", "system_output", "scores"}``; consistency 0-1 (share of
  summary sentences judged consistent).

One dataset per criterion per file. Example ids: ``doc_id`` where the file has one (it equals
the record's position); for Topical-Chat a content hash of ``(source, context, system_id)``
(:func:`example_ids`). ``reproduce/unieval_predict/<same path>_result.json`` holds UniEval's own
predictions: the same records, in the same order, plus ``"predict_scores"``; they are not
datasets, but :func:`example_ids` applied to a prediction file yields exactly the ids of the
matching rows here. Skipped: only records whose source (the instruction) is blank or null; the shipped
files have none. An empty ``system_output`` is kept as ``""`` (none in the shipped files); a
missing or non-string one raises ``InvalidInput``.
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
    checked_score,
    frame,
    iter_records,
    read_json,
    require,
    require_text,
    stable_ids,
)
from registry.errors import InvalidInput

_ROOT = "maszhongming__UniEval/reproduce/data"
_DIALOGUE = {"understandability": (0.0, 1.0), "naturalness": (1.0, 3.0), "coherence": (1.0, 3.0),
             "engagingness": (1.0, 3.0), "groundedness": (0.0, 1.0), "overall": (1.0, 5.0)}
_D2T = {c: (1.0, 6.0) for c in ("informativeness", "naturalness", "overall")}
_FACT = {"consistency": (0.0, 1.0)}
# dataset prefix -> (file under reproduce/data, criterion scales, num_annotators, what it is)
_FILES: dict[str, tuple[str, dict[str, tuple[float, float]], int | None, str]] = {
    "topical-chat": ("dialogue/topical_chat.json", _DIALOGUE, 3, "USR Topical-Chat knowledge-grounded responses"),
    "sfhot": ("data2text/sfhot.json", _D2T, None, "SF hotel dialogue-act-to-text outputs"),
    "sfres": ("data2text/sfres.json", _D2T, None, "SF restaurant dialogue-act-to-text outputs"),
    "qags-cnndm": ("fact/qags_cnndm.json", _FACT, None, "QAGS CNN/DM summaries, factual consistency"),
    "qags-xsum": ("fact/qags_xsum.json", _FACT, None, "QAGS XSum summaries, factual consistency"),
}


def example_ids(records: list[Any], *, file: Path | str = "<records>") -> list[str]:
    """Example ids for UniEval records (data or ``unieval_predict`` result files alike):
    ``doc_id`` as text where present, else a hash of ``(source, context, system_id)``."""
    # a file whose records carry doc_id (any of them) must carry it in every record: record 0 without it
    # must not switch the whole file to hashed ids and drop the others' doc_id silently
    if any(isinstance(r, dict) and "doc_id" in r for r in records):
        ids = [str(require(r, "doc_id", file=file, row=i)) for i, r in enumerate(records)]
        if len(set(ids)) < len(ids):
            dup = next(x for x in ids if ids.count(x) > 1)
            raise InvalidInput(f"duplicate doc_id {dup!r}", file=file, row=ids.index(dup), field="doc_id")
        return ids
    keys = [(require(r, "source", file=file, row=i), r.get("context"), r.get("system_id"))
            for i, r in enumerate(records)]
    return stable_ids(["\x1f".join(str(p) for p in key) for key in keys])


def _instruction(rec: dict[str, Any]) -> str:
    source = rec["source"].strip()
    context = rec.get("context")
    if isinstance(context, str) and context.strip():  # Topical-Chat: history plus the knowledge fact
        return f"dialogue history:\n{source}\n\nfact:\n{context.strip()}"
    return source


class UniEvalAdapter(SourceAdapter):
    """Topical-Chat, SFHOT/SFRES and QAGS human scores as packaged by UniEval."""

    info = SourceInfo(
        name="unieval",
        title="UniEval meta-evaluation data",
        origin="https://github.com/maszhongming/UniEval",
        license="MIT",
        citation="Zhong et al., Towards a Unified Multi-Dimensional Evaluator for Text Generation, EMNLP 2022",
        task_types=("pointwise",),
        description="Dialogue responses, data-to-text outputs and summaries with human scores per criterion.",
    )

    def catalog(self) -> list[DatasetDef]:
        return [
            DatasetDef(name=f"{prefix}-{criterion}", task_type="pointwise", path=f"{_ROOT}/{file}",
                       description=f"{what}: {criterion} ({scale[0]:g}-{scale[1]:g})",
                       options={"subset": prefix, "criterion": criterion}, scale=scale)
            for prefix, (file, scales, _, what) in _FILES.items() for criterion, scale in scales.items()
        ]

    def read(self, path: Path, *, subset: str | None = None, criterion: str | None = None,
             **_: Any) -> pd.DataFrame:
        path = Path(path)
        # without ``subset``, the standard layout tells which file this is
        subset = subset or next((k for k, v in _FILES.items() if path.as_posix().endswith(v[0])), None)
        if subset not in _FILES:
            raise InvalidInput(f"unknown UniEval subset {subset!r}; expected one of {', '.join(_FILES)}",
                               file=path, field="subset")
        spec = _FILES[subset]
        _, scales, num_annotators, _ = spec
        if criterion not in scales:
            raise InvalidInput(f"criterion {criterion!r} is not one of {', '.join(scales)}", file=path, field="criterion")
        scale = scales[criterion]
        data = read_json(path)
        if not isinstance(data, list):
            raise InvalidInput(f"expected a list of records, got {type(data).__name__}", file=path)
        rows = []
        for example_id, (i, rec) in zip(example_ids(data, file=path), iter_records(data, file=path)):
            source = require(rec, "source", file=path, row=i)
            output = require_text(rec, "system_output", file=path, row=i, allow_empty=True)
            raw = require(require(rec, "scores", file=path, row=i), criterion, file=path, row=i)
            score = checked_score(raw, scale, file=path, row=i, field=f"scores.{criterion}")
            if source is None or isinstance(source, str) and not source.strip():
                continue  # blank source: no instruction (none in the shipped files)
            if not isinstance(source, str):
                raise InvalidInput(f"expected a string, got {source!r:.40}", file=path, row=i, field="source")
            system = rec.get("system_id")
            rows.append({
                "example_id": example_id, "instruction": _instruction(rec), "response": output,
                "score": score, "criterion": criterion, "scale_min": scale[0], "scale_max": scale[1],
                "reference": rec.get("reference"), "system_id": None if system is None else str(system),
                "category": None, "num_annotators": num_annotators, "metadata": None,
            })
        return frame(rows, COLUMNS["pointwise"])
