"""HANNA story ratings (Chhun et al., 2022; LLM ratings from Chhun et al., 2024).

Two CSV files in ``dig-team__hanna-benchmark-asg/``:

* ``hanna_metric_scores_llm.csv``: one row per story source (``Model``: ``Human`` and 10 story
  generators), every other cell a JSON list of 96 values, one per WritingPrompts prompt, in
  prompt order. Columns: the six criteria as the mean human rating (``Relevance``,
  ``Coherence``, ``Empathy``, ``Surprise``, ``Engagement``, ``Complexity``); the three human
  raters' scores ``Human <k> <RE|CH|EM|SU|EG|CX>`` (integers 1-5); leave-one-out averages
  (``Human Avg <k> ...``); ~70 automatic metrics; and LLM ratings ``<LLM> <abbr> <p>`` for five
  LLMs and four evaluation prompts ``p`` (means of three samples, where an unparsable answer
  counted below 1, so values down to -1 occur). This file *is* the human-judgment data.
* ``hanna_llm_stories.csv``: ``Prompt``, ``Human`` (the human-written WritingPrompts story),
  ``Story``, ``Model``: 96 prompts x 6 LLM story generators (Llama-7b ... Platypus2-70b). These
  LLM stories carry no human ratings, so they are not a dataset; the file is used only for the
  prompt and the human story texts (the 96 prompts appear in the same order as the lists above,
  checked against the ``Text length`` metric of the ``Human`` row).

Standardization: one pointwise dataset per criterion, scale 1-5. ``annotator_scores`` = the three
human raters, ``score`` = their mean (checked equal to the file's criterion column),
``num_annotators`` = 3; LLM ratings go to ``metadata.llm_ratings`` (``{LLM: [prompt 1..4]}``),
never to the gold. Instruction = the prompt, response = the story, ``system_id`` = ``Model``.
Example id = hash of system + prompt (``stable_ids``); ``metadata.story_index`` = the position
in the lists.

Skipped: the ratings of the 10 generator systems (960 rows per criterion): their story texts
are not in these files (they are in HANNA's ``hanna_stories_annotations.csv``, not shipped
here). Only the ``Human`` system's 96 stories can be standardized. Also skipped: a story whose
prompt or text cell is blank (none in the shipped files): a blank CSV cell is a missing
human-written text, not an empty model output.
"""

from __future__ import annotations

import io
import json
import math
import re
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
    parse_json,
    read_text,
    stable_ids,
    to_json,
)
from registry.errors import InvalidInput

_ROOT = "dig-team__hanna-benchmark-asg"
RATINGS_FILE = "hanna_metric_scores_llm.csv"
STORIES_FILE = "hanna_llm_stories.csv"
CRITERIA = {"Relevance": "RE", "Coherence": "CH", "Empathy": "EM", "Surprise": "SU",
            "Engagement": "EG", "Complexity": "CX"}
SCALE = (1.0, 5.0)
HUMAN_RATERS = 3
# systems whose story texts the files hold: Model value -> column of the stories file
_TEXT_COLUMNS = {"Human": "Human"}
_LLM_COLUMN = re.compile(r"^(?P<llm>.+) (?P<abbr>RE|CH|EM|SU|EG|CX) (?P<prompt>\d+)$")


def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    try:
        df = pd.read_csv(io.StringIO(read_text(path)), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise InvalidInput(f"malformed CSV: {exc}", file=path) from exc
    for col in columns:
        if col not in df.columns:
            raise InvalidInput("missing column", file=path, field=col)
    return df


def _list(cell: str, *, file: Path, row: str, field: str, size: int) -> list[Any]:
    try:
        values = parse_json(cell, file=file, row=row)  # nested too deeply: a clear error
    except json.JSONDecodeError:
        values = None
    if not isinstance(values, list) or len(values) != size:
        raise InvalidInput(f"expected a JSON list of {size} values, got {cell[:40]!r}", file=file, row=row, field=field)
    return values


class HannaAdapter(SourceAdapter):
    """HANNA human story ratings, one dataset per criterion."""

    info = SourceInfo(
        name="hanna",
        title="HANNA (Human-ANnotated NArratives)",
        origin="https://github.com/dig-team/hanna-benchmark-asg",
        license="MIT",
        citation="Chhun et al., Of Human Criteria and Automatic Metrics: A Benchmark of the Evaluation "
                 "of Story Generation, COLING 2022; Chhun et al., Do Language Models Enjoy Their Own "
                 "Stories? Prompting Large Language Models for Automatic Story Evaluation, TACL 2024",
        task_types=("pointwise",),
        description="Stories written for WritingPrompts prompts, rated 1-5 on six criteria by three humans.",
    )

    def catalog(self) -> list[DatasetDef]:
        return [
            DatasetDef(name=f"hanna-{name.lower()}", task_type="pointwise", path=_ROOT,
                       description=f"HANNA {name.lower()} ratings of human-written stories (1-5, 3 raters)",
                       options={"criterion": name}, scale=SCALE)
            for name in CRITERIA
        ]

    def read(self, path: Path, *, criterion: str | None = None, **_: Any) -> pd.DataFrame:
        path = Path(path)
        folder = path if path.is_dir() else path.parent
        name = next((c for c in CRITERIA if c.lower() == str(criterion).lower()), None)
        if name is None:
            raise InvalidInput(f"unknown criterion {criterion!r}; expected one of {', '.join(CRITERIA)}",
                               file=path, field="criterion")
        abbr = CRITERIA[name]
        rater_cols = [f"Human {k} {abbr}" for k in range(1, HUMAN_RATERS + 1)]
        ratings_path, stories_path = folder / RATINGS_FILE, folder / STORIES_FILE
        ratings = _read_csv(ratings_path, ["Model", name, *rater_cols])
        stories = _read_csv(stories_path, ["Prompt", *_TEXT_COLUMNS.values()])
        prompts = stories.drop_duplicates("Prompt").reset_index(drop=True)
        for col in _TEXT_COLUMNS.values():
            if stories.groupby("Prompt", sort=False)[col].nunique().max() > 1:
                raise InvalidInput("one prompt has several different texts", file=stories_path, field=col)
        llm_cols = {c: m for c in ratings.columns if (m := _LLM_COLUMN.match(c)) and m["abbr"] == abbr}
        llm_cols = dict(sorted(llm_cols.items(), key=lambda kv: (kv[1]["llm"], int(kv[1]["prompt"]))))

        parts = []
        for _, rec in ratings.iterrows():
            system = rec["Model"]
            if system not in _TEXT_COLUMNS:
                continue  # no story texts for this system (documented above)
            n = len(prompts)
            gold = _list(rec[name], file=ratings_path, row=system, field=name, size=n)
            raters = [_list(rec[c], file=ratings_path, row=system, field=c, size=n) for c in rater_cols]
            llm = {c: _list(rec[c], file=ratings_path, row=system, field=c, size=n) for c in llm_cols}
            for i in range(n):
                row = f"{system}[{i}]"
                scores = [checked_score(r[i], SCALE, file=ratings_path, row=row, field=c)
                          for r, c in zip(raters, rater_cols)]
                mean = sum(scores) / len(scores)
                if not math.isclose(mean, checked_score(gold[i], SCALE, file=ratings_path, row=row, field=name)):
                    raise InvalidInput(f"{name} {gold[i]!r} is not the mean of the raters' scores {scores}",
                                       file=ratings_path, row=row, field=name)
                story = prompts.at[i, _TEXT_COLUMNS[system]]
                if not prompts.at[i, "Prompt"].strip() or not story.strip():
                    continue  # missing text (none in the shipped files; documented above)
                by_llm: dict[str, list[float]] = {}
                for c, m in llm_cols.items():
                    rating = llm[c][i]
                    if isinstance(rating, bool) or not isinstance(rating, (int, float)) or not math.isfinite(rating):
                        raise InvalidInput(f"LLM rating {rating!r} is not a number", file=ratings_path, row=row,
                                           field=c)
                    by_llm.setdefault(m["llm"], []).append(float(rating))
                parts.append({
                    "instruction": prompts.at[i, "Prompt"], "response": story, "score": mean,
                    "criterion": name.lower(), "scale_min": SCALE[0], "scale_max": SCALE[1],
                    "system_id": system, "annotator_scores": scores, "num_annotators": len(scores),
                    "reference": None, "category": None,
                    "metadata": to_json({"story_index": i, "llm_ratings": by_llm}),
                })
        df = frame(parts, COLUMNS["pointwise"])
        df["example_id"] = stable_ids([f"{r['system_id']}\n{r['instruction']}" for r in parts])
        return df
