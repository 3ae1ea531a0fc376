"""Anthropic HH-RLHF (Bai et al., 2022): chosen / rejected dialogue continuations.

File: ``harmless-base/test.jsonl.gz``, one JSON object per line, ``{"chosen", "rejected"}``: two
full dialogues (``"\\n\\nHuman: ...\\n\\nAssistant: ..."``) that share their beginning and differ in
the assistant's last turn; crowdworkers picked the less harmful one ("chosen").

Standardization: the instruction is the shared dialogue up to the last ``"\\n\\nAssistant:"``
marker inside the common prefix of the two texts (the marker itself is dropped, so it ends with the
human's turn); the responses are what follows that marker in each text. In 2307 of the 2312 test
rows this is exactly the final assistant turn; in 5 rows the two dialogues already diverge before
the last turn, so a response holds several turns (flagged ``multi_turn_response`` in metadata).
Rows have no ids: the id hashes the instruction (``stable_ids``).

The file always lists the preferred dialogue first, so positions are assigned by
:func:`~registry.adapters.sources.base.place_pair`: the chosen response is ``response_b``
(label ``B``) when the xxh3-64 hash of the example id is odd, else ``response_a`` (label ``A``).
One label per row (no annotator list).

Empty turns are kept as ``""``: in 4 rows of ``harmless-base/test`` (file lines 87, 517, 926,
1104) the chosen dialogue ends in an empty assistant turn, so the preferred response is ``""``.
Skipped: only rows whose shared dialogue before the compared turn is empty (none in the file),
so the dataset has all 2312 rows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from registry.adapters.sources.base import (
    COLUMNS,
    DatasetDef,
    SourceAdapter,
    SourceInfo,
    frame,
    place_pair,
    read_jsonl,
    require,
    stable_ids,
    to_json,
)
from registry.errors import InvalidInput

ASSISTANT = "\n\nAssistant:"
HUMAN = "\n\nHuman:"


def split_dialogues(chosen: str, rejected: str) -> tuple[str, str, str] | None:
    """``(prompt, chosen_turn, rejected_turn)`` cut at the last assistant marker the two share;
    ``None`` if they share none."""
    cut = os.path.commonprefix([chosen, rejected]).rfind(ASSISTANT)
    if cut < 0:
        return None
    start = cut + len(ASSISTANT)
    return chosen[:cut].strip(), chosen[start:].strip(), rejected[start:].strip()


class HHRLHFAdapter(SourceAdapter):
    """HH-RLHF harmlessness preference pairs (test split)."""

    info = SourceInfo(
        name="hh-rlhf",
        title="Anthropic HH-RLHF",
        origin="https://github.com/anthropics/hh-rlhf",
        license="MIT",
        citation="Bai et al., Training a Helpful and Harmless Assistant with Reinforcement Learning "
                 "from Human Feedback, arXiv:2204.05862, 2022",
        task_types=("pairwise",),
        description="Two assistant continuations of one dialogue; crowdworkers chose the less harmful.",
    )

    def catalog(self) -> list[DatasetDef]:
        return [DatasetDef(
            name="hh-rlhf-harmless", task_type="pairwise",
            path="anthropics__hh-rlhf/harmless-base/test.jsonl.gz",
            description="HH-RLHF harmless-base test split: chosen vs rejected final assistant turn",
            options={"category": "harmless-base"},
        )]

    def read(self, path: Path, *, category: str | None = None, **_: Any) -> pd.DataFrame:
        path = Path(path)
        parts = []
        for line, rec in enumerate(read_jsonl(path), start=1):
            chosen = require(rec, "chosen", file=path, row=line)
            rejected = require(rec, "rejected", file=path, row=line)
            for name, text in (("chosen", chosen), ("rejected", rejected)):
                if not isinstance(text, str):
                    raise InvalidInput(f"expected a dialogue string, got {type(text).__name__}",
                                       file=path, row=line, field=name)
            split = split_dialogues(chosen, rejected)
            if split is None:
                raise InvalidInput(f"chosen and rejected share no {ASSISTANT.strip()!r} turn",
                                   file=path, row=line, field="chosen")
            prompt, good, bad = split
            if not prompt:
                continue  # no instruction (documented above); empty turns are kept as ""
            parts.append((prompt, good, bad))
        ids = stable_ids([p for p, _, _ in parts])
        rows = []
        for example_id, (prompt, good, bad) in zip(ids, parts):
            a, b, label = place_pair(example_id, good, bad)
            multi = any(m in t for t in (good, bad) for m in (ASSISTANT, HUMAN))
            rows.append({
                "example_id": example_id, "instruction": prompt, "response_a": a, "response_b": b,
                "label": label, "category": category, "num_annotators": None,
                "metadata": to_json({"multi_turn_response": True} if multi else None),
            })
        return frame(rows, COLUMNS["pairwise"])
