"""Pure parsers that turn a generative judge's free text into a verdict.

Every parser returns ``(verdict, parsed)``: ``parsed`` is False (and ``verdict`` None) when the
text holds no verdict or an ambiguous one; the caller records the failure per example and keeps
the raw text (the metrics then count it as wrong, or as a seeded coin flip, as their rule says).

Markers are searched in *tiers*, most explicit first; the first tier with any mention decides,
so an explanation that merely talks about "Output (a)" cannot override a final ``[[B]]``.
Inside the deciding tier, ``mention`` chooses how several mentions are resolved:

* ``"unique"`` (default, direct-answer protocols): all mentions must name the same verdict,
  otherwise the text is ambiguous → parse failure (LLMBar's rule: "Output (a)" without
  "Output (b)").
* ``"last"`` (chain-of-thought protocols): the last mention wins, because the final verdict
  comes after the reasoning.

Pairwise tiers (:func:`parse_pairwise`), verdicts ``"A"`` (first shown) / ``"B"`` / ``"tie"``:

1. ``[[A]]``, ``[[B]]``, ``[[C]]`` or ``[[tie]]`` (MT-Bench style; C = tie), case-insensitive;
2. ``Output (a)`` / ``Output (b)`` (LLMBar style), case-insensitive, spaces optional;
3. ``Assistant A``, ``Response B``, ``Answer: A``, ``Verdict: B``, ``Output: A`` (capital letter only);
4. the whole text (stripped of spaces, quotes, ``*``, brackets and final punctuation) is ``A``,
   ``B``, ``tie`` or ``C``, or the text *starts* with a capital ``A``/``B`` followed by the end,
   a newline or ``.``, ``)``, ``:``, ``,`` (``"A\\n\\nBecause..."``; ``"A good answer"`` does not count).

Ratings (:func:`parse_rating`): tiers ``[[7]]``; ``Rating: 7`` / ``Score: 7`` / ``[RESULT] 7``;
``7/10`` or ``7 out of 10`` (denominator must equal the scale maximum, else not a mention);
the whole text is a number. A value outside ``[scale_min, scale_max]`` is refused (parse
failure) by default, or clamped with ``out_of_scale="clamp"``.

Labels (:func:`parse_label`): tiers ``[[label]]``, then any case-insensitive whole-word mention
of a label (``-`` and letters/digits on either side break a word, so ``inconsistent`` does not
mention ``consistent``; a mention inside a longer label's mention, ``harmful`` in ``not harmful``,
does not count); the verdict is the label's spelling in the label set.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Literal

Mention = Literal["unique", "last"]
Result = tuple[str | None, bool]

FAILED: tuple[None, bool] = (None, False)

_PAIRWISE_TIERS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.IGNORECASE),
    re.compile(r"\boutput\s*\(\s*([ab])\s*\)", re.IGNORECASE),
    re.compile(r"\b(?:[Aa]ssistant|[Rr]esponse|[Aa]nswer|[Vv]erdict|[Oo]utput|[Cc]hoice)\s*[:\-]?\s*\(?\s*(A|B)\b(?![\w'])"),
)
_PAIRWISE_NAMES = {"a": "A", "b": "B", "c": "tie", "tie": "tie"}
_BARE_START = re.compile(r"^\W*?(A|B)(?:$|\s*\n|\s*[.):,])")
_STRIP = " \t\r\n\"'`*[]()<>.!:;"


def _decide(values: Sequence[str], mention: Mention) -> Result:
    if not values:
        return FAILED
    if mention == "last":
        return values[-1], True
    if mention != "unique":
        raise ValueError(f"mention must be 'unique' or 'last', got {mention!r}")
    return (values[0], True) if len(set(values)) == 1 else FAILED


def parse_pairwise(text: str | None, *, mention: Mention = "unique") -> Result:
    """Pairwise verdict ``"A"`` / ``"B"`` / ``"tie"`` from a judge's text (tiers in the module doc)."""
    if not text or not text.strip():
        return FAILED
    for tier in _PAIRWISE_TIERS:
        found = [_PAIRWISE_NAMES[m.group(1).lower()] for m in tier.finditer(text)]
        if found:
            return _decide(found, mention)
    whole = text.strip(_STRIP).lower()
    if whole in _PAIRWISE_NAMES:
        return _PAIRWISE_NAMES[whole], True
    m = _BARE_START.match(text)
    if m:
        return m.group(1), True
    return FAILED


_NUM = r"(-?\d+(?:\.\d+)?)"
_RATING_TIERS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\[\[\s*" + _NUM + r"\s*\]\]"),
    re.compile(r"(?:\brating|\bscore|\[result\])\s*\]?\s*[:=]?\s*\**\s*" + _NUM, re.IGNORECASE),
)
_FRACTION = re.compile(_NUM + r"\s*(?:/|\bout\s+of\b)\s*" + _NUM, re.IGNORECASE)


def _number(s: str) -> float:
    return float(s)


def format_number(x: float) -> str:
    """A number as prompts write it: ``5`` for 5.0, ``4.5`` as is (scales, ratings)."""
    return str(int(x)) if float(x).is_integer() else str(x)


def parse_rating(text: str | None, scale_min: float, scale_max: float, *, mention: Mention = "last",
                 out_of_scale: Literal["refuse", "clamp"] = "refuse") -> tuple[float | None, bool]:
    """A score on ``[scale_min, scale_max]`` from a judge's text (tiers in the module doc)."""
    if out_of_scale not in ("refuse", "clamp"):
        raise ValueError(f"out_of_scale must be 'refuse' or 'clamp', got {out_of_scale!r}")
    if not text or not text.strip():
        return None, False
    values: list[float] = []
    for tier in _RATING_TIERS:
        values = [_number(m.group(1)) for m in tier.finditer(text)]
        if values:
            break
    if not values:
        values = [_number(m.group(1)) for m in _FRACTION.finditer(text)
                  if math.isclose(_number(m.group(2)), float(scale_max))]
    if not values:
        whole = text.strip(_STRIP)
        if re.fullmatch(_NUM, whole):
            values = [_number(whole)]
    if not values:
        return None, False
    if mention == "unique" and len(set(values)) > 1:
        return None, False
    value = values[-1]
    if not scale_min <= value <= scale_max:
        if out_of_scale == "refuse":
            return None, False
        value = min(max(value, float(scale_min)), float(scale_max))
    return value, True


def _label_pattern(label: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w-])" + re.escape(label) + r"(?![\w-])", re.IGNORECASE)


def parse_label(text: str | None, labels: Sequence[str], *, mention: Mention = "unique") -> Result:
    """One label of ``labels`` from a judge's text (``[[label]]`` first, then whole-word mentions)."""
    if not text or not text.strip() or not labels:
        return FAILED
    bracketed = []
    for m in re.finditer(r"\[\[\s*(.+?)\s*\]\]", text):
        hit = [lab for lab in labels if lab.lower() == m.group(1).lower()]
        if hit:
            bracketed.append((m.start(), hit[0]))
    if bracketed:
        return _decide([lab for _, lab in sorted(bracketed)], mention)
    spans: list[tuple[int, int, str]] = []
    for lab in labels:
        spans += [(m.start(), m.end(), lab) for m in _label_pattern(lab).finditer(text)]
    # A mention inside a longer label's mention ("harmful" in "not harmful") does not count.
    kept = [(a, lab) for a, b, lab in spans
            if not any(a2 <= a and b <= b2 and (b2 - a2) > (b - a) for a2, b2, _ in spans)]
    return _decide([lab for _, lab in sorted(kept)], mention)


PARSERS = ("pairwise_choice", "rating", "label")
"""Parser names a protocol's ``parser`` key may take."""

__all__ = ["PARSERS", "Mention", "parse_label", "parse_pairwise", "parse_rating"]
