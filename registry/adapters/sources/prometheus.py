"""HHH alignment pairs as shipped in Prometheus 2's benchmark data (Kim et al., 2024).

File: ``eval/benchmark/data/hhh_alignment_eval.json``, a list of ``{"source", "chosen_instruction",
"rejected_instruction"}``. ``source`` is the HHH subset (``harmless``, ``helpful``, ``honest``,
``other``; Askell et al., 2021). Each ``*_instruction`` is a full Prometheus absolute-grading judge
prompt wrapping one response::

    ###Task Description: ...
    ###The instruction to evaluate:\\n<instruction>
    ###Response to evaluate:\\n<response>
    [###Reference Answer (...):\\n<reference>]      (absent in this file)
    ###Score Rubrics:\\n<rubric>
    ###Feedback:

The gold label is encoded by the key: the response inside ``chosen_instruction`` is the one the
HHH annotators preferred. Both prompts must wrap the same instruction and rubric, else the row is
rejected. Standardization: instruction and the two responses are cut out of the wrapper; the
rubric goes to ``metadata``; category = ``source``. Rows have no ids: the id hashes
``source`` + instruction (``stable_ids``; the 221 pairs share 102 instructions, so repeats get
``-2``, ``-3``... in file order). The preferred response's position comes from
:func:`~registry.adapters.sources.base.place_pair` (B when the id's xxh3-64 hash is odd).
No rows are skipped. An empty response inside a judge prompt is kept as ``""`` (none in the file);
an empty instruction raises ``InvalidInput``.
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
    iter_records,
    place_pair,
    read_json,
    require,
    stable_ids,
    to_json,
)
from registry.errors import InvalidInput

_WRAPPER = re.compile(
    r"###The instruction to evaluate:\n(?P<instruction>.*?)\n\n"
    r"###Response to evaluate:\n(?P<response>.*?)\n\n"
    r"(?:###Reference Answer[^\n]*:\n(?P<reference>.*?)\n\n)?"
    r"###Score Rubrics:\n(?P<rubric>.*?)\n\n###Feedback:\s*\Z",
    re.S,
)


def unwrap(prompt: Any, *, file: Path, row: int | str, field: str) -> dict[str, str | None]:
    """Instruction, response, reference (or ``None``) and rubric inside a Prometheus judge prompt."""
    m = _WRAPPER.search(prompt) if isinstance(prompt, str) else None
    if m is None:
        raise InvalidInput("not a Prometheus judge prompt (expected '###The instruction to evaluate:', "
                           "'###Response to evaluate:', '###Score Rubrics:', '###Feedback:')",
                           file=file, row=row, field=field)
    parts = {k: (v.strip() if v is not None else None) for k, v in m.groupdict().items()}
    if not parts["instruction"]:  # an empty response is data (kept as ""), an empty instruction is not
        raise InvalidInput("empty instruction inside the judge prompt", file=file, row=row, field=field)
    return parts


class PrometheusHHHAdapter(SourceAdapter):
    """HHH alignment (helpful / harmless / honest / other) pairs from Prometheus' benchmark files."""

    info = SourceInfo(
        name="prometheus-hhh",
        title="HHH Alignment (Prometheus 2 benchmark copy)",
        origin="https://github.com/prometheus-eval/prometheus-eval",
        license="Apache-2.0",
        citation="Kim et al., Prometheus 2: An Open Source Language Model Specialized in Evaluating "
                 "Other Language Models, EMNLP 2024; data from Askell et al., A General Language "
                 "Assistant as a Laboratory for Alignment, arXiv:2112.00861, 2021",
        task_types=("pairwise",),
        description="Two assistant responses to one prompt; the helpful/harmless/honest one is preferred.",
    )

    def catalog(self) -> list[DatasetDef]:
        return [DatasetDef(
            name="prometheus-hhh-alignment", task_type="pairwise",
            path="prometheus-eval__prometheus-eval/eval/benchmark/data/hhh_alignment_eval.json",
            description="HHH alignment eval (221 pairs over harmless/helpful/honest/other), unwrapped "
                        "from Prometheus judge prompts",
        )]

    def read(self, path: Path, **_: Any) -> pd.DataFrame:
        path = Path(path)
        parts = []
        for i, rec in iter_records(read_json(path), file=path):
            source = require(rec, "source", file=path, row=i)
            good = unwrap(require(rec, "chosen_instruction", file=path, row=i),
                          file=path, row=i, field="chosen_instruction")
            bad = unwrap(require(rec, "rejected_instruction", file=path, row=i),
                         file=path, row=i, field="rejected_instruction")
            for key in ("instruction", "rubric", "reference"):
                if good[key] != bad[key]:
                    raise InvalidInput(f"chosen and rejected prompts wrap a different {key}",
                                       file=path, row=i, field="rejected_instruction")
            parts.append((str(source), good, bad["response"]))
        ids = stable_ids([f"{source}\n{good['instruction']}" for source, good, _ in parts])
        rows = []
        for example_id, (source, good, bad_response) in zip(ids, parts):
            a, b, label = place_pair(example_id, good["response"], bad_response)
            rows.append({
                "example_id": example_id, "instruction": good["instruction"], "response_a": a,
                "response_b": b, "label": label, "reference": good["reference"], "category": source,
                "num_annotators": None, "metadata": to_json({"rubric": good["rubric"]}),
            })
        return frame(rows, COLUMNS["pairwise"])
