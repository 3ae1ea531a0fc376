"""Training autoraters, the pure part: mixtures, run configs, the unified multitask format
(FLAMe, Vu et al. 2024), row allocation, tail-patch weights and the model card text.

No torch here: the training loop is in :mod:`registry.adapters.training`, the use case in
:mod:`registry.services.training`.

Unified format. Every standardized row becomes one :class:`UnifiedExample` whose ``target`` is a
probability in [0, 1], so one loss (binary cross-entropy on logits) serves the three heads:

* pairwise — ``target`` = P(``response_a`` is better): ``A`` → 1, ``B`` → 0, ``tie`` → ½; the
  logit is the Bradley–Terry margin ``s(a) − s(b)`` of the pairwise head;
* pointwise — ``target`` = ``(score − scale_min) / (scale_max − scale_min)``, the score normalized by
  the dataset's scale; the logit is the pointwise head's ``s`` (the evaluator maps ``sigmoid(s)``
  back onto the dataset's scale);
* classification — ``target`` = 1 for the *good* class (the response is acceptable: consistent,
  true, not hallucinated...), 0 for the bad one; labels that mean "bad" are listed in
  :data:`NEGATIVE_LABELS` (a component may name its ``positive_label``). A shared head can then learn
  one notion of acceptability across datasets whose label lists come in either order.

:func:`render_text` gives the same example as FLAMe-style text-to-text (task description +
inputs → target text), the input a generative (causal LM) autorater would be trained on.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from registry.domain.judgments import encode_verdicts
from registry.domain.metrics.classification import balanced_accuracy_point
from registry.domain.metrics.pairwise import order_credit
from registry.domain.metrics.pointwise import correlation_point
from registry.domain.parsing import format_number
from registry.domain.types import TaskType
from registry.errors import InvalidInput

NEGATIVE_LABELS = frozenset({"hallucinated", "inconsistent", "flagged", "false", "uninformative", "unsafe",
                             "incorrect", "unfaithful", "unsupported", "no", "bad", "harmful"})
"""Classification labels that mean the response is *not* acceptable (target 0)."""
PAIRWISE_TARGETS = {"A": 1.0, "B": 0.0, "tie": 0.5}


# --------------------------------------------------------------------------- mixtures
def _invalid(message: str, *, field: str, hint: str | None = None) -> InvalidInput:
    exc = InvalidInput(message, field=field, hint=hint)
    exc.reason = message  # the bare message, to re-raise it naming the mixture file
    return exc


@dataclass(frozen=True)
class Component:
    """One dataset (version) of a mixture."""

    dataset: str
    """Dataset name; ``name@N`` pins a version (default: the latest)."""
    weight: float = 1.0
    """Relative sampling weight (> 0)."""
    max_rows: int | None = None
    """Cap on this component's rows (overrides the mixture's ``max_rows_per_dataset``)."""
    positive_label: str | None = None
    """Classification only: the label meaning "acceptable" (default: see :data:`NEGATIVE_LABELS`)."""

    @property
    def name(self) -> str:
        """The dataset name without the version pin."""
        return self.dataset.split("@", 1)[0]


@dataclass(frozen=True)
class Mixture:
    """A weighted set of dataset versions to train on, and the datasets never trained on."""

    components: tuple[Component, ...]
    held_out: tuple[str, ...] = ()
    """Dataset names excluded from training (evaluation sets); overlapping a component is an error."""
    max_rows_per_dataset: int | None = None
    total_rows: int | None = None
    """Rows of the whole training set (default: all rows the caps allow)."""
    name: str = "mixture"
    version: int = 1

    def __post_init__(self) -> None:
        if not self.components:
            raise _invalid("a mixture needs at least one component", field="components")
        seen: set[str] = set()
        for i, c in enumerate(self.components):
            where = f"components[{i}]"
            if not isinstance(c.dataset, str) or not c.dataset.strip():
                raise _invalid("dataset must be a non-empty name", field=f"{where}.dataset")
            if not isinstance(c.weight, int | float) or isinstance(c.weight, bool) or not math.isfinite(c.weight) \
                    or c.weight <= 0:
                raise _invalid(f"weight must be a positive number; got {c.weight!r} for {c.dataset}",
                                   field=f"{where}.weight")
            if c.max_rows is not None and (not isinstance(c.max_rows, int) or c.max_rows < 1):
                raise _invalid(f"max_rows must be a positive integer; got {c.max_rows!r}",
                                   field=f"{where}.max_rows")
            if c.name in seen:
                raise _invalid(f"dataset {c.name!r} appears twice", field=f"{where}.dataset")
            seen.add(c.name)
        overlap = sorted(seen & {h.split("@", 1)[0] for h in self.held_out})
        if overlap:
            raise _invalid(f"held-out datasets {overlap} are also training components; a held-out dataset "
                               "must never be trained on", field="held_out",
                               hint="remove them from components or from held_out")
        for key in ("max_rows_per_dataset", "total_rows"):
            v = getattr(self, key)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise _invalid(f"{key} must be a positive integer; got {v!r}", field=key)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, file: str | Path | None = None) -> Mixture:
        """A mixture from its dict/YAML form (``components: [{dataset, version?, weight, max_rows?}]``)."""
        if not isinstance(data, Mapping):
            raise InvalidInput("a mixture must be a mapping with 'components'", file=file)
        unknown = sorted(set(data) - {"name", "version", "components", "held_out", "max_rows_per_dataset",
                                      "total_rows", "description"})
        if unknown:
            raise InvalidInput(f"unknown keys {unknown}", file=file, field=unknown[0])
        raw = data.get("components")
        if not isinstance(raw, list) or not raw:
            raise InvalidInput("components must be a non-empty list", file=file, field="components")
        comps = []
        for i, c in enumerate(raw):
            if isinstance(c, str):
                c = {"dataset": c}
            if not isinstance(c, Mapping) or "dataset" not in c:
                raise InvalidInput("each component needs a 'dataset'", file=file, field=f"components[{i}].dataset")
            bad = sorted(set(c) - {"dataset", "version", "weight", "max_rows", "positive_label"})
            if bad:
                raise InvalidInput(f"unknown keys {bad}", file=file, field=f"components[{i}].{bad[0]}")
            ds = str(c["dataset"])
            if c.get("version") is not None:
                if "@" in ds:
                    raise InvalidInput("give the version either as name@N or as 'version', not both", file=file,
                                       field=f"components[{i}].version")
                ds = f"{ds}@{int(c['version'])}"
            comps.append(Component(dataset=ds, weight=c.get("weight", 1.0), max_rows=c.get("max_rows"),
                                   positive_label=c.get("positive_label")))
        held = data.get("held_out") or []
        if not isinstance(held, list) or not all(isinstance(h, str) for h in held):
            raise InvalidInput("held_out must be a list of dataset names", file=file, field="held_out")
        try:
            return cls(components=tuple(comps), held_out=tuple(held),
                       max_rows_per_dataset=data.get("max_rows_per_dataset"), total_rows=data.get("total_rows"),
                       name=str(data.get("name", "mixture")), version=int(data.get("version", 1)))
        except InvalidInput as exc:
            if file is not None and exc.file is None:
                raise InvalidInput(getattr(exc, "reason", str(exc)), file=file, field=exc.field, hint=exc.hint) from exc
            raise

    @classmethod
    def from_yaml(cls, path: str | Path) -> Mixture:
        """Read a mixture YAML file (see ``mixtures/default.yaml``)."""
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInput(f"cannot read mixture: {exc}", file=path) from exc
        return cls.from_dict(data, file=path)

    def to_dict(self) -> dict[str, Any]:
        """The dict/YAML form (round-trips through :meth:`from_dict`)."""
        comps = []
        for c in self.components:
            d: dict[str, Any] = {"dataset": c.dataset, "weight": c.weight}
            if c.max_rows is not None:
                d["max_rows"] = c.max_rows
            if c.positive_label is not None:
                d["positive_label"] = c.positive_label
            comps.append(d)
        out: dict[str, Any] = {"name": self.name, "version": self.version, "components": comps,
                               "held_out": list(self.held_out)}
        if self.max_rows_per_dataset is not None:
            out["max_rows_per_dataset"] = self.max_rows_per_dataset
        if self.total_rows is not None:
            out["total_rows"] = self.total_rows
        return out

    def with_weights(self, weights: Mapping[str, float], *, total_rows: int | None = None,
                     name: str | None = None) -> Mixture:
        """The same mixture re-weighted (components with weight ≤ 0 or missing are dropped)."""
        comps = tuple(replace(c, weight=float(weights[c.name])) for c in self.components
                      if weights.get(c.name, 0) > 0)
        return replace(self, components=comps, total_rows=total_rows if total_rows is not None else self.total_rows,
                       name=name or self.name)


def allocate_rows(available: Mapping[str, int], weights: Mapping[str, float], total: int | None) -> dict[str, int]:
    """Rows per component: proportional to the weights, never more than a component has; what a
    small component cannot use goes to the others (water-filling). ``total=None`` takes everything."""
    if total is None:
        return {k: int(v) for k, v in available.items()}
    alloc = {k: 0 for k in available}
    open_ = {k for k, v in available.items() if v > 0 and weights.get(k, 0) > 0}
    left = min(int(total), sum(available[k] for k in open_))
    while left > 0 and open_:
        wsum = sum(weights[k] for k in open_)
        shares = {k: left * weights[k] / wsum for k in open_}
        full = {k for k in open_ if alloc[k] + shares[k] >= available[k]}
        if full:
            for k in full:
                left -= available[k] - alloc[k]
                alloc[k] = available[k]
            open_ -= full
            continue
        # largest remainder rounding, ties broken by name: deterministic
        floors = {k: math.floor(shares[k]) for k in open_}
        rest = left - sum(floors.values())
        for k in sorted(open_, key=lambda k: (-(shares[k] - floors[k]), k))[:rest]:
            floors[k] += 1
        for k in open_:
            alloc[k] += floors[k]
        left = 0
    return alloc


# --------------------------------------------------------------------------- run config
@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run besides its data (recorded in the lineage)."""

    seed: int = 0
    epochs: float = 1.0
    """Passes over the mixture's rows (fractions allowed); ``max_steps`` stops earlier."""
    max_steps: int | None = None
    batch_size: int = 16
    """Examples per optimizer step (a pairwise example is two sequences)."""
    lr: float = 5e-5
    """AdamW learning rate of the trained encoder layers."""
    head_lr: float = 1e-3
    """AdamW learning rate of the three heads."""
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_length: int = 128
    train_layers: int = 2
    """Top encoder layers fine-tuned (the rest stay frozen; 0 = heads only, encoder untouched)."""
    device: str = "cpu"
    """``cpu`` (default), ``cuda`` or ``auto``."""
    shuffle_labels: bool = False
    """Permute the targets within each dataset: a deliberately degraded checkpoint (regression tests)."""
    threads: int | None = None
    """torch CPU threads (default: torch's)."""
    lora: bool = False
    """Kept for old lineages; LoRA applies to causal-LM judges (:class:`LoRAConfig`, ``train_llm_judge``)."""

    def __post_init__(self) -> None:
        checks = {"batch_size": self.batch_size >= 1, "epochs": self.epochs > 0, "lr": self.lr > 0,
                  "head_lr": self.head_lr > 0, "max_length": self.max_length >= 8,
                  "train_layers": self.train_layers >= 0, "warmup_ratio": 0 <= self.warmup_ratio < 1,
                  "max_steps": self.max_steps is None or self.max_steps >= 1}
        for key, ok in checks.items():
            if not ok:
                raise InvalidInput(f"invalid value {getattr(self, key)!r}", field=key)
        if self.lora:
            raise InvalidInput("LoRA (peft) applies to causal-LM judges (`autorater train lora`); the encoder "
                               "scorer is fine-tuned directly (see train_layers)", field="lora")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LoRAConfig:
    """A LoRA fine-tuning run of a causal-LM judge (recorded in the lineage).

    The judge learns to answer the registry's own protocol prompts (:data:`JUDGE_PROTOCOLS`) with the
    human judgment, so the trained checkpoint is meta-evaluated by the ``llm-judge`` evaluator under
    the same protocols; the adapters are merged into the saved weights (a plain causal-LM folder that
    every generation backend loads), and the adapter itself is kept beside them."""

    seed: int = 0
    epochs: float = 1.0
    """Passes over the training rows (fractions allowed); ``max_steps`` stops earlier."""
    max_steps: int | None = None
    batch_size: int = 8
    """Prompts per optimizer step."""
    lr: float = 2e-4
    """AdamW learning rate of the LoRA matrices."""
    weight_decay: float = 0.0
    warmup_ratio: float = 0.06
    max_length: int = 512
    """Tokens of prompt + answer; longer prompts lose tokens from the left (as the backends cut them)."""
    rank: int = 8
    """LoRA rank r."""
    alpha: int = 16
    """LoRA scaling numerator (the update is ``alpha / rank · B A``)."""
    dropout: float = 0.05
    target_modules: str | tuple[str, ...] = "all-linear"
    """Modules that get adapters: peft's ``all-linear`` (every linear layer but the output head) or names."""
    both_orders: bool = True
    """Pairwise rows are trained in both orders (the answer flips with the order): no position prior to learn."""
    device: str = "cpu"
    """``cpu`` (default), ``cuda`` or ``auto``."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    shuffle_labels: bool = False
    """Permute the targets within each dataset: a deliberately degraded checkpoint."""
    threads: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, list):
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
        checks = {"batch_size": self.batch_size >= 1, "epochs": self.epochs > 0, "lr": self.lr > 0,
                  "max_length": self.max_length >= 16, "rank": self.rank >= 1, "alpha": self.alpha > 0,
                  "dropout": 0 <= self.dropout < 1, "warmup_ratio": 0 <= self.warmup_ratio < 1,
                  "max_steps": self.max_steps is None or self.max_steps >= 1,
                  "dtype": self.dtype in ("float32", "bfloat16"),
                  "target_modules": bool(self.target_modules)}
        for key, ok in checks.items():
            if not ok:
                raise InvalidInput(f"invalid value {getattr(self, key)!r}", field=key)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if isinstance(d["target_modules"], tuple):
            d["target_modules"] = list(d["target_modules"])
        return d


# --------------------------------------------------------------------------- unified format
@dataclass(frozen=True)
class UnifiedExample:
    """One training example in the unified multitask format."""

    task_type: TaskType
    dataset: str
    example_id: str
    instruction: str
    responses: tuple[str, ...]
    """Two responses (pairwise) or one."""
    target: float
    """Probability target in [0, 1] (see the module docstring)."""
    label: str
    """The human judgment as written in the dataset (label, or the raw score as text)."""
    scale: tuple[float, float] | None = None
    """Pointwise: the ``(scale_min, scale_max)`` the raw score is on."""
    criterion: str | None = None
    """Pointwise: what the score measures (the prompt of a generative judge names it)."""


def classification_polarity(labels: Sequence[str], positive_label: str | None = None) -> tuple[str, str]:
    """(good label, bad label) of a binary classification dataset."""
    labels = [str(x) for x in labels]
    if len(labels) != 2:
        raise InvalidInput(f"classification training needs exactly two labels; got {labels}", field="labels")
    if positive_label is not None:
        if positive_label not in labels:
            raise InvalidInput(f"positive_label {positive_label!r} is not one of {labels}", field="positive_label")
        return positive_label, next(x for x in labels if x != positive_label)
    neg = [x for x in labels if x.lower() in NEGATIVE_LABELS]
    if len(neg) == 1:
        return next(x for x in labels if x not in neg), neg[0]
    return labels[0], labels[1]


def to_unified(columns: Mapping[str, Sequence[Any]], *, task_type: str, dataset: str,
               labels: Sequence[str] | None = None, scale: Sequence[float] | None = None,
               positive_label: str | None = None) -> list[UnifiedExample]:
    """Rows of one standardized dataset version (column name → values) in the unified format."""
    n = len(columns["example_id"])
    ids = [str(x) for x in columns["example_id"]]
    instr = [str(x or "") for x in columns["instruction"]]
    out: list[UnifiedExample] = []
    if task_type == "pairwise":
        for i in range(n):
            lab = str(columns["label"][i])
            if lab not in PAIRWISE_TARGETS:
                raise InvalidInput(f"pairwise label must be A, B or tie; got {lab!r}", row=ids[i], field="label")
            out.append(UnifiedExample("pairwise", dataset, ids[i], instr[i],
                                      (str(columns["response_a"][i] or ""), str(columns["response_b"][i] or "")),
                                      PAIRWISE_TARGETS[lab], lab))
    elif task_type == "pointwise":
        lo_col, hi_col, crit_col = columns.get("scale_min"), columns.get("scale_max"), columns.get("criterion")
        for i in range(n):
            score = columns["score"][i]
            if score is None or not math.isfinite(float(score)):
                continue  # no human score, nothing to learn
            lo = float(lo_col[i]) if lo_col is not None and lo_col[i] is not None else float(scale[0]) if scale else None
            hi = float(hi_col[i]) if hi_col is not None and hi_col[i] is not None else float(scale[1]) if scale else None
            if lo is None or hi is None or not hi > lo:
                raise InvalidInput(f"pointwise training needs scale_min < scale_max; got {lo}, {hi}", row=ids[i],
                                   field="scale_min")
            target = min(1.0, max(0.0, (float(score) - lo) / (hi - lo)))
            out.append(UnifiedExample("pointwise", dataset, ids[i], instr[i], (str(columns["response"][i] or ""),),
                                      target, f"{float(score):g}", (lo, hi),
                                      str(crit_col[i]) if crit_col is not None and crit_col[i] else None))
    elif task_type == "classification":
        good, _bad = classification_polarity(labels or sorted({str(x) for x in columns["label"]}), positive_label)
        for i in range(n):
            lab = str(columns["label"][i])
            out.append(UnifiedExample("classification", dataset, ids[i], instr[i],
                                      (str(columns["response"][i] or ""),), 1.0 if lab == good else 0.0, lab))
    else:
        raise InvalidInput(f"cannot train on task type {task_type!r}", field="task_type")
    return out


def render_text(ex: UnifiedExample) -> tuple[str, str]:
    """FLAMe-style text-to-text form ``(input text, target text)`` of a unified example."""
    if ex.task_type == "pairwise":
        prompt = (f"Task ({ex.dataset}): which response better answers the instruction? Answer A, B or tie.\n"
                  f"Instruction: {ex.instruction}\nResponse A: {ex.responses[0]}\nResponse B: {ex.responses[1]}")
    elif ex.task_type == "pointwise":
        prompt = (f"Task ({ex.dataset}): rate the response (0 = worst, 1 = best).\n"
                  f"Context: {ex.instruction}\nResponse: {ex.responses[0]}")
        return prompt, f"{ex.target:.2f}"
    else:
        prompt = (f"Task ({ex.dataset}): classify the response.\n"
                  f"Context: {ex.instruction}\nResponse: {ex.responses[0]}")
    return prompt, ex.label


JUDGE_PROTOCOLS: dict[str, str] = {"pairwise": "pairwise-base", "pointwise": "pointwise-rating",
                                   "classification": "classification-direct"}
"""The protocol whose prompt a generative judge is trained on, per task type (and then judged under)."""


def judge_example(ex: UnifiedExample, *, labels: Sequence[str] | None = None,
                  swap: bool = False) -> tuple[dict[str, str], str] | None:
    """The protocol placeholder values and the answer a generative judge should give for ``ex``
    (the answer the protocol's parser reads back as the human judgment), or ``None`` when the
    protocol has no answer for it (a pairwise tie: ``pairwise-base`` answers A or B only).

    ``swap`` shows a pair in the other order (the answer flips with it); ``labels`` is the
    classification dataset's label set as the prompt lists it."""
    values = {"instruction": ex.instruction, "reference": "", "criterion": ex.criterion or "overall quality"}
    if ex.task_type == "pairwise":
        if ex.label not in ("A", "B"):
            return None
        a, b = ex.responses
        answer = ex.label
        if swap:
            a, b, answer = b, a, "B" if answer == "A" else "A"
        return {**values, "response_a": a, "response_b": b}, answer
    if ex.task_type == "pointwise":
        if ex.scale is None:
            raise InvalidInput("a pointwise example needs its scale to be written as a rating", row=ex.example_id,
                               field="scale")
        lo, hi = ex.scale
        rating = round(float(ex.label), 1)
        return ({**values, "response": ex.responses[0], "scale_min": format_number(lo), "scale_max": format_number(hi)},
                f"Rating: {format_number(rating)}")
    return {**values, "response": ex.responses[0], "labels": ", ".join(labels or ())}, ex.label


def shuffle_targets(examples: Sequence[UnifiedExample], seed: int) -> list[UnifiedExample]:
    """Targets permuted within each dataset (seeded): same inputs, label distribution kept,
    the input → label link destroyed."""
    by_ds: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        by_ds.setdefault(ex.dataset, []).append(i)
    out = list(examples)
    for ds, idx in sorted(by_ds.items()):
        rng = random.Random(f"{seed}:shuffle:{ds}")
        perm = idx[:]
        rng.shuffle(perm)
        # a pairwise permutation alone keeps ~the same target where labels are balanced; flipping the
        # response order at random as well makes the target independent of the content
        for i, j in zip(idx, perm):
            ex = examples[i]
            tgt, lab = examples[j].target, examples[j].label
            if ex.task_type == "pairwise" and rng.random() < 0.5:
                ex = replace(ex, responses=ex.responses[::-1])
            out[i] = replace(ex, target=tgt, label=lab)
    return out


# --------------------------------------------------------------------------- tail-patch
@dataclass(frozen=True)
class PatchDelta:
    """The effect of a brief fine-tune on one candidate task on the target metric."""

    dataset: str
    baseline: float
    patched: float
    rows: int

    @property
    def delta(self) -> float:
        return self.patched - self.baseline


def tail_patch_weights(deltas: Sequence[PatchDelta], *, min_delta: float = 0.0) -> dict[str, float]:
    """Mixture weights from tail-patch deltas (FLAMe-Opt): positive deltas normalized to sum 1,
    tasks that did not help (delta ≤ ``min_delta``) dropped. When no task helps, every task keeps
    an equal weight (nothing to choose from) — the caller reports it."""
    pos = {d.dataset: d.delta for d in deltas if d.delta > min_delta}
    if not pos:
        return {d.dataset: 1.0 / len(deltas) for d in deltas} if deltas else {}
    s = sum(pos.values())
    return {k: v / s for k, v in sorted(pos.items())}


def quick_metric(task_type: str, logits: Sequence[float], targets: Sequence[float]) -> tuple[str, float]:
    """The headline metric of in-memory scores against unified targets (tail-patch probes), without
    a CI, computed by the registry's metric functions: pairwise accuracy over non-tie pairs (verdict A
    for a positive margin, B otherwise, tie at a zero margin, which earns ½), pointwise Spearman,
    classification balanced accuracy at logit 0. Full meta-evaluation goes through ``run_evaluation``."""
    if task_type == "pairwise":
        pairs = [(m, t) for m, t in zip(logits, targets) if t != 0.5]
        if not pairs:
            return "accuracy", float("nan")
        labels = encode_verdicts(["A" if t > 0.5 else "B" for _, t in pairs])
        verdicts = encode_verdicts(["A" if m > 0 else "tie" if m == 0 else "B" for m, _ in pairs])
        return "accuracy", float(order_credit(labels, verdicts, "expected").mean())
    if task_type == "pointwise":
        return "spearman", correlation_point("spearman", np.asarray(logits, dtype=float),
                                             np.asarray(targets, dtype=float))
    predicted = [1.0 if x >= 0 else 0.0 for x in logits]
    return "balanced_accuracy", balanced_accuracy_point(list(targets), predicted, classes=[0.0, 1.0])


# --------------------------------------------------------------------------- model card
def _card_value(v: Any) -> Any:
    """A value as the card's front matter holds it: floats to 6 decimals, tuples as lists, anything
    that is not a number, boolean, list or null as its text."""
    if v is None or isinstance(v, bool | int):
        return v
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, list | tuple):
        return [_card_value(x) for x in v]
    return str(v)


@dataclass(frozen=True)
class ModelCardInfo:
    """What a model card says about one training run."""

    autorater: str
    base_model: str
    mixture: Mixture
    datasets: list[dict[str, Any]]
    """One dict per trained dataset version: dataset, version, content_hash, task_type, rows, weight."""
    config: TrainConfig | LoRAConfig
    metrics: dict[str, float]
    """Training metrics (final losses per task, rows/s, seconds)."""
    eval_metrics: list[dict[str, Any]] = field(default_factory=list)
    """Held-out results: dataset, metric, value, ci_low, ci_high, n."""
    checkpoint_sha256: str | None = None
    parent: str | None = None
    code_revision: str | None = None
    method: Literal["encoder-multitask", "causal-lm-lora"] = "encoder-multitask"
    """What was trained: the encoder scorer's heads/layers, or LoRA adapters of a causal-LM judge."""


def _method_text(info: ModelCardInfo) -> tuple[list[str], list[str], list[str]]:
    """(description, intended use, limitations) paragraphs of the model card, per training method."""
    c = info.config
    if info.method == "causal-lm-lora":
        assert isinstance(c, LoRAConfig)
        protocols = ", ".join(f"`{p}` ({t})" for t, p in JUDGE_PROTOCOLS.items())
        modules = c.target_modules if isinstance(c.target_modules, str) else ", ".join(c.target_modules)
        return ([f"A generative judge trained with the Autorater Registry: {info.base_model} fine-tuned with LoRA "
                 f"(peft; rank {c.rank}, alpha {c.alpha}, modules {modules}) to answer the registry's "
                 f"protocol prompts with the human judgment (FLAMe-style multitask, text-to-text): {protocols}. "
                 "The adapters are merged into these weights; the adapter alone is in `adapter/`."],
                ["Judging pairs, ratings and labels under the protocols it was trained on, through the registry's "
                 "`llm-judge` evaluator on any local backend (transformers, vLLM).", ],
                ["- Trained on short direct answers: it is not taught to reason before answering, and other "
                 "protocols' formats may parse worse than the base model's.",
                 f"- Prompts longer than {c.max_length} tokens were cut from the left during training.",
                 "- Its quality is bounded by the base model; held-out results below are on datasets never trained "
                 "on, other data may differ."])
    return ([f"An encoder autorater trained with the Autorater Registry: {info.base_model} (mean pooling) with three "
             "scalar heads trained jointly (FLAMe-style multitask): a pairwise Bradley–Terry head (verdict A when "
             "s(a) > s(b)), a pointwise regression head (scores normalized by each dataset's scale) and a "
             "classification head (P(the response is acceptable))."],
            ["Scoring and comparing responses for pairwise preference, pointwise quality and binary "
             "acceptability tasks similar to its training data (chat preferences, translation, summarization, "
             "factual consistency, truthfulness), as a cheap CPU autorater, a baseline for LLM judges, or a "
             "reward-model starting point. Load it with the registry's `encoder-scorer` evaluator."],
            [f"- A 22M-parameter encoder that reads at most {c.max_length} tokens of (instruction, response): long "
             "documents and dialogues are truncated; it cannot follow complex instructions the way large LLM judges "
             "do (LLMBar-style adversarial pairs are hard for it).",
             "- It sees no task description or criterion: criteria of the same outputs are not distinguished.",
             "- English-centric training data; scores are not calibrated across datasets.",
             "- Held-out results below are on datasets never trained on; other data may differ."])


def render_model_card(info: ModelCardInfo) -> str:
    """A Hugging Face model card (README.md with YAML front matter) for a training run."""
    import yaml

    m, c = info.mixture, info.config
    lora = info.method == "causal-lm-lora"
    tags = ["autorater", "reward-model", "flame-multitask", "autorater-registry"]
    if lora:
        tags += ["llm-judge", "lora", "peft"]
    if c.shuffle_labels:
        tags.append("degraded-shuffled-labels")
    # an empty list is written as null, as the card always had it
    front: dict[str, Any] = {
        "library_name": "transformers", "pipeline_tag": "text-generation" if lora else "text-classification",
        "base_model": str(info.base_model), "tags": tags,
        "datasets": [f"{d['dataset']}@{d['version']}" for d in info.datasets] or None,
        "autorater_registry": {
            "autorater": str(info.autorater), "mixture": str(m.name), "mixture_version": m.version,
            "checkpoint_sha256": info.checkpoint_sha256 or "", "parent": info.parent or "",
            "code_revision": info.code_revision or "", "held_out": [str(h) for h in m.held_out] or None,
            "training": {k: _card_value(v) for k, v in c.to_dict().items()},
            "training_data": [{"dataset": str(d["dataset"]), "version": d["version"], "task_type": d["task_type"],
                               "content_hash": str(d["content_hash"]), "rows": d["rows"],
                               "weight": _card_value(float(d["weight"]))} for d in info.datasets] or None,
            "training_metrics": {k: _card_value(v) for k, v in sorted(info.metrics.items())} or None,
        },
    }
    if info.eval_metrics:
        front["model-index"] = [{"name": str(info.autorater), "results": [
            {"task": {"type": "text-classification"}, "dataset": {"name": str(e["dataset"]), "type": str(e["dataset"])},
             "metrics": [{"type": str(e["metric"]), "value": _card_value(float(e["value"]))}]}
            for e in info.eval_metrics]}]
    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=1000).rstrip("\n"), "---"]
    rows = sum(d["rows"] for d in info.datasets)
    description, intended, limitations = _method_text(info)
    body = [f"# {info.autorater}", "", *description, ""]
    if c.shuffle_labels:
        body += ["**Degraded on purpose:** trained on *shuffled labels* (targets permuted within each dataset). "
                 "It exists to test regression detection; do not use it to judge anything.", ""]
    body += ["## Intended use", "", *intended, "", "## Limitations", "", *limitations, "",
             "## Training", "",
             f"Mixture `{m.name}` v{m.version}: {len(info.datasets)} dataset versions, {rows} rows; held out: "
             f"{', '.join(m.held_out) or 'none'}.", "",
             "| dataset@version | task type | rows | weight | content hash |", "|---|---|---:|---:|---|"]
    body += [f"| {d['dataset']}@{d['version']} | {d['task_type']} | {d['rows']} | {float(d['weight']):.4g} | "
             f"{d['content_hash'][:12]} |" for d in info.datasets]
    body += ["", "Parameters: " + ", ".join(f"{k}={v}" for k, v in c.to_dict().items()) + ".", "",
             "Training metrics: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                              for k, v in sorted(info.metrics.items())) + "."]
    if info.eval_metrics:
        body += ["", "## Held-out evaluation", "", "| dataset | metric | value | 95% CI | n |", "|---|---|---:|---|---:|"]
        body += [f"| {e['dataset']} | {e['metric']} | {e['value']:.3f} | [{e.get('ci_low', float('nan')):.3f}, "
                 f"{e.get('ci_high', float('nan')):.3f}] | {e.get('n', '')} |" for e in info.eval_metrics]
    return "\n".join(lines + body) + "\n"


__all__ = ["JUDGE_PROTOCOLS", "NEGATIVE_LABELS", "Component", "LoRAConfig", "Mixture", "ModelCardInfo", "PatchDelta",
           "TrainConfig", "UnifiedExample", "allocate_rows", "classification_polarity", "judge_example", "quick_metric",
           "render_model_card", "render_text", "shuffle_targets", "tail_patch_weights", "to_unified"]
