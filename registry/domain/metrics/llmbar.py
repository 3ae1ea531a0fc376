"""LLMBar's evaluator outputs and its ``statistics.json``, reproduced exactly.

LLMBar (Zeng et al., ICLR 2024, ``LLMEvaluator/evaluate.py``) stores, per example, ``label``
(1 or 2) and ``results``: a list whose *last* element is the final judgment
``{"swap = False": {"winner": …}, "swap = True": {"winner": …}}``. Earlier elements are
auxiliary generations (the Metrics/Reference protocols' ``[text, finish_reason]`` pairs) or, for
Swap/Swap_CoT, the first-round judgments that a synthesis round replaced after the two orders
disagreed. ``winner`` is already mapped back to the original orientation ("1" = ``output_1``);
``None`` is a parse failure. Rating protocols derive the winner from ``score_1``/``score_2``
(``"1" if score_1 > score_2 else "2"`` as given, ``"2" if score_2 > score_1 else "1"`` swapped),
so a tied rating disagrees with itself across orders by construction.

``statistics.json`` fields, as LLMBar computes them over the last result:

- ``correct_False``/``correct_True``: winner == label as given / swapped (a failure is wrong),
  printed ``"{count} / {n} = {count / n * 100}%"``; ``correct_average`` their mean;
  ``correct_both`` both right; ``equal`` the two winners are equal — compared as raw values, so
  two failures (``None == None``) count as agreeing.
- ``kappa_False``/``kappa_True``/``kappa_agreement``: ``sklearn.metrics.cohen_kappa_score`` after
  mapping each winner to ``1`` if it is "1" and to ``0`` otherwise ("2" and failures alike),
  while the label keeps its values 1 and 2. Against the label the classes therefore do not line
  up (prediction "2" becomes 0, never equal to label 2): these κ values are a *compatibility*
  figure only. ``kappa_average`` is the mean of the first two. ``cohen_kappa_*`` below are the
  correct Cohen's κ on the codes themselves (a failure is its own category).

:func:`llmbar_statistics` keeps LLMBar's own field names (it reproduces their file); the stored
metrics of :func:`llmbar_metrics` name the compatibility figures ``llmbar_kappa_agreement`` and
``llmbar_kappa_average`` (extra ``llmbar_kappa_False``/``llmbar_kappa_True``), so no ``kappa_*``
name sits beside ``cohen_kappa_*`` with a different meaning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from registry.domain.judgments import FAIL, VERDICT_CODES
from registry.domain.metrics._counts import as_runs, confusion, kappa_from_confusion
from registry.domain.metrics.bootstrap import Bootstrap, ensure_bootstrap
from registry.domain.metrics.pairwise import (
    cohen_kappa,
    correct_both,
    pairwise_accuracy_many,
    positional_agreement,
)
from registry.domain.metrics.value import MetricValue, from_samples
from registry.errors import InvalidInput

A, B = VERDICT_CODES["A"], VERDICT_CODES["B"]
_LABELS = {1: A, 2: B, "1": A, "2": B}
_WINNERS = {"1": A, "2": B}
ORDER_KEYS = ("swap = False", "swap = True")


def parse_llmbar_result(records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LLMBar ``result.json`` records (already loaded) → (labels, v0, v1) int8 codes.

    The last element of ``results`` is the final judgment; a ``winner`` other than "1"/"2"
    (``None`` in the shipped files) is a parse failure (FAIL)."""
    labels = np.empty(len(records), dtype=np.int8)
    verdicts = np.empty((2, len(records)), dtype=np.int8)
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping) or "label" not in rec or "results" not in rec:
            raise InvalidInput("expected an object with 'label' and 'results'", row=i)
        label = rec["label"]
        if isinstance(label, bool) or not isinstance(label, (int, str)) or label not in _LABELS:  # true is not 1
            raise InvalidInput(f"unknown label {rec['label']!r}; expected 1 or 2", row=i, field="label")
        labels[i] = _LABELS[rec["label"]]
        results = rec["results"]
        final = results[-1] if isinstance(results, list) and results else None
        if not isinstance(final, Mapping) or any(k not in final for k in ORDER_KEYS):
            raise InvalidInput(f"the last element of 'results' must hold {list(ORDER_KEYS)}", row=i, field="results")
        for o, key in enumerate(ORDER_KEYS):
            judged = final[key]
            if not isinstance(judged, Mapping) or "winner" not in judged:
                raise InvalidInput("missing 'winner'", row=i, field=f"results[-1][{key!r}]")
            winner = judged["winner"]
            if isinstance(winner, (list, dict)):
                raise InvalidInput(f"'winner' must be a number or text, not {type(winner).__name__}", row=i,
                                   field=f"results[-1][{key!r}].winner")
            verdicts[o, i] = _WINNERS.get(winner, FAIL)
    return labels, verdicts[0], verdicts[1]


def _compat_codes(verdicts: np.ndarray) -> np.ndarray:
    """LLMBar's κ input: 1 for winner "1", 0 for anything else."""
    return (np.asarray(verdicts) == A).astype(np.int8)


def _percent(count: int, n: int) -> str:
    # the exact format of LLMEvaluator/evaluate.py: "{} / {} = {}%".format(c, n, c / n * 100)
    return f"{count} / {n} = {count / n * 100}%"


def llmbar_statistics(labels: np.ndarray, v0: np.ndarray, v1: np.ndarray) -> dict[str, str | float]:
    """The nine ``statistics.json`` fields exactly as LLMBar writes them (strings and floats),
    followed by the correct Cohen's κ values (``cohen_kappa_False`` … ``cohen_kappa_agreement``)."""
    labels, (v0, v1), _ = as_runs(labels, v0, v1)
    v0, v1 = v0[0], v1[0]
    n = int(labels.shape[0])
    c_false, c_true = int((v0 == labels).sum()), int((v1 == labels).sum())
    both = int(((v0 == labels) & (v1 == labels)).sum())
    equal = int((v0 == v1).sum())                      # raw comparison: FAIL == FAIL agrees
    label_12 = np.where(labels == A, 1, 2)
    k_false = cohen_kappa(_compat_codes(v0), label_12)
    k_true = cohen_kappa(_compat_codes(v1), label_12)
    ck_false, ck_true = cohen_kappa(v0, labels), cohen_kappa(v1, labels)
    return {
        "correct_False": _percent(c_false, n),
        "correct_True": _percent(c_true, n),
        "correct_average": f"{(c_false + c_true) / 2 / n * 100}%",
        "correct_both": _percent(both, n),
        "equal": _percent(equal, n),
        "kappa_False": k_false,
        "kappa_True": k_true,
        "kappa_average": (k_false + k_true) / 2,
        "kappa_agreement": cohen_kappa(_compat_codes(v0), _compat_codes(v1)),
        "cohen_kappa_False": ck_false,
        "cohen_kappa_True": ck_true,
        "cohen_kappa_average": (ck_false + ck_true) / 2,
        "cohen_kappa_agreement": cohen_kappa(v0, v1),
    }


def llmbar_metrics(labels: np.ndarray, v0: np.ndarray, v1: np.ndarray, *, boot: Bootstrap | None = None
                   ) -> list[MetricValue]:
    """LLMBar's figures as metric values with bootstrap CIs, under LLMBar's names.

    ``correct_*`` and ``equal`` follow LLMBar (failures wrong; two failures agree in ``equal``).
    ``cohen_kappa_agreement`` (between the orders) and ``cohen_kappa_average`` (against the label,
    mean of the orders) are the correct Cohen's κ, with CIs. ``llmbar_kappa_agreement`` and
    ``llmbar_kappa_average`` are LLMBar's ``kappa_agreement``/``kappa_average`` compatibility
    figures (point values only, no CI)."""
    labels, (v0, v1), _ = as_runs(labels, v0, v1)
    n = labels.shape[0]
    boot = ensure_bootstrap(boot, n)
    out = [
        pairwise_accuracy_many(labels, v0, None, boot=boot, name="correct_False")[0],
        pairwise_accuracy_many(labels, v1, None, boot=boot, name="correct_True")[0],
        pairwise_accuracy_many(labels, v0, v1, boot=boot, name="correct_average")[0],
        correct_both(labels, v0[0], v1[0], boot=boot),
        replace(positional_agreement(v0[0], v1[0], boot=boot, failures_agree=True), name="equal"),
    ]
    cats = np.union1d(np.union1d(labels, v0), v1)
    kappas = {}
    for name, (a, b) in {"agreement": (v0[0], v1[0]), "False": (v0[0], labels), "True": (v1[0], labels)}.items():
        point, samples = confusion(a, b, cats, boot)
        kappas[name] = (kappa_from_confusion(point), kappa_from_confusion(samples))
    out.append(from_samples("cohen_kappa_agreement", float(kappas["agreement"][0]), kappas["agreement"][1], n))
    out.append(from_samples("cohen_kappa_average", float((kappas["False"][0] + kappas["True"][0]) / 2),
                            (kappas["False"][1] + kappas["True"][1]) / 2, n,
                            extra={"cohen_kappa_False": float(kappas["False"][0]),
                                   "cohen_kappa_True": float(kappas["True"][0])}))
    compat = llmbar_statistics(labels, v0[0], v1[0])
    note = {"compat": "LLMBar statistics.json: predictions mapped to 1 ('1') / 0 (other), labels kept 1/2"}
    out.append(from_samples("llmbar_kappa_agreement", compat["kappa_agreement"], None, n, extra=note))
    out.append(from_samples("llmbar_kappa_average", compat["kappa_average"], None, n,
                            extra={**note, "llmbar_kappa_False": compat["kappa_False"],
                                   "llmbar_kappa_True": compat["kappa_True"]}))
    return out
