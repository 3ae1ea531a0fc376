"""Importing predictions of external evaluators (real LLM judges run elsewhere) as evaluation
runs, matched to a registered dataset version by example *content* (the judge-visible inputs),
or by example id where a format carries no content (PandaLM).

Formats: ``llmbar`` (LLMBar ``result.json``, both orders), ``pandalm`` (PandaLM prediction
files), ``unieval`` (UniEval ``*_result.json`` with ``predict_scores``), ``reife`` (ReIFE
JSON-lines results; a file and its ``_swap`` twin), ``mapped`` (any JSON / JSON-lines / CSV with
an example key column and a verdict or score column per order).
"""

from __future__ import annotations

import ast
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from registry.adapters.sources.base import check_input, read_json, read_json_or_jsonl, reading_inputs, require
from registry.domain.entities import EvaluationRun
from registry.domain.judgments import PREDICTION_COLUMNS, Verdict, example_input_hashes
from registry.domain.names import validate_new_name
from registry.domain.serialization import Serializable
from registry.domain.types import PAIRWISE_LABELS
from registry.errors import InvalidInput, NotFound, RegistryError
from registry.hashing import canonical_json, sha256_file, sha256_json
from registry.services.app import RegistryContext
from registry.services.evaluation import PREDICTION_SCHEMA, _store_predictions, task_context
from registry.services.evaluators import create_evaluator, evaluator_exists, register_checkpoint

IMPORT_FORMATS = ("llmbar", "pandalm", "unieval", "reife", "mapped")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Imported:
    """Judgments read from a file, before matching: one :class:`~registry.domain.judgments.Verdict`
    per (example, order), with what matches it to a dataset example."""

    order: list[int] = field(default_factory=list)
    judgments: list[Verdict] = field(default_factory=list)
    """One per entry, in the original orientation once :func:`_match` has seen it."""
    #: judge-visible inputs per entry (field → values) for content matching, or None
    inputs: dict[str, list] | None = None
    #: example ids per entry, when the format carries ids instead of content
    example_ids: list[str] | None = None
    #: row of the file each entry came from (for error messages), where the reader knows it
    rows: list[int] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def add(self, order: int, judgment: Verdict) -> None:
        """One more entry: ``judgment`` of an example in ``order``."""
        self.order.append(order)
        self.judgments.append(judgment)

    @property
    def verdicts(self) -> list[str | None]:
        """The verdict of each entry (``None``: none parsed)."""
        return [j.label for j in self.judgments]


# ----------------------------------------------------------------------------- readers


def _read_llmbar(path: Path, **_: Any) -> Imported:
    from registry.domain.metrics.llmbar import parse_llmbar_result

    records = read_json(path)
    if not isinstance(records, list):
        raise InvalidInput("expected LLMBar's result.json: a list of records", file=path)
    try:
        labels, v0, v1 = parse_llmbar_result(records)
    except InvalidInput as exc:
        raise exc.in_file(path) from None
    out = Imported(inputs={"instruction": [], "response_a": [], "response_b": [], "reference": []})
    codes = {0: "A", 1: "B", 2: "tie"}
    for i, rec in enumerate(records):
        for order, verdicts in ((0, v0), (1, v1)):
            code = int(verdicts[i])
            out.add(order, Verdict(label=codes.get(code), parsed=code in codes))
            out.inputs["instruction"].append(require(rec, "input", file=path, row=i))
            out.inputs["response_a"].append(require(rec, "output_1", file=path, row=i))
            out.inputs["response_b"].append(require(rec, "output_2", file=path, row=i))
            out.inputs["reference"].append(None)
    return out


def _read_pandalm(path: Path, **_: Any) -> Imported:
    from registry.domain.metrics.pandalm import parse_pandalm_predictions, prediction_field, prediction_idx

    records = read_json(path)
    if not isinstance(records, list) or not records:
        raise InvalidInput("expected a PandaLM prediction file: a list of records", file=path)
    try:
        key = prediction_field(records[0])
        codes = parse_pandalm_predictions(records, key)
    except InvalidInput as exc:
        raise exc.in_file(path) from None
    names = {0: "A", 1: "B", 2: "tie"}
    out = Imported(example_ids=[])
    for i, rec in enumerate(records):
        idx = prediction_idx(rec["idx"], row=i)  # (checked by parse_pandalm_predictions)
        verdict = names.get(codes[idx])
        reason = next((rec[k] for k in rec if k.endswith("_reason")), None)
        out.add(0, Verdict(label=verdict, parsed=verdict is not None, raw=None if reason is None else str(reason)))
        out.example_ids.append(str(idx))
    out.meta["verdict_field"] = key
    return out


def _read_unieval(path: Path, *, criterion: str, subset: str | None = None, **_: Any) -> Imported:
    from registry.adapters.sources.unieval import UniEvalAdapter

    records = read_json(path)
    rows = UniEvalAdapter().read(path, subset=subset, criterion=criterion)
    if len(rows) != len(records):  # the adapter skips a record without a source: no entry to pair it with
        skipped = next(i for i, rec in enumerate(records)
                       if not (isinstance(rec.get("source"), str) and rec["source"].strip()))
        raise InvalidInput("a prediction for a record without a source text", file=path, row=skipped, field="source")
    out = Imported(inputs={f: list(rows[f]) for f in ("instruction", "response", "reference", "criterion")})
    for i, rec in enumerate(records):
        raw = require(rec, "predict_scores", file=path, row=i)
        try:
            scores = ast.literal_eval(raw) if isinstance(raw, str) else raw  # a Python dict literal, never code
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            raise InvalidInput(f"predict_scores is not a literal dict: {exc or type(exc).__name__}", file=path,
                               row=i, field="predict_scores") from None
        if not isinstance(scores, dict):
            raise InvalidInput(f"predict_scores is a {type(scores).__name__}, not an object of scores", file=path,
                               row=i, field="predict_scores")
        if criterion not in scores:
            raise InvalidInput(f"no {criterion!r} in predict_scores {sorted(map(str, scores))}", file=path, row=i,
                               field="predict_scores")
        score = scores[criterion]
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise InvalidInput(f"score {score!r} is not a finite number", file=path, row=i,
                               field=f"predict_scores.{criterion}")
        out.add(0, Verdict(score=float(score)))
    return out


def _reife_records(path: Path) -> list[dict]:
    data = read_json_or_jsonl(path)
    return data if isinstance(data, list) else [data]


def _read_reife(path: Path, **_: Any) -> Imported:
    """A ReIFE results file (and its ``_swap`` twin beside it, when present). Each record has
    ``instruction``, ``output_1``, ``output_2`` and ``result: {winner: 1|2, tie, fail}``; which
    order a record was shown in is found by matching its outputs to the dataset (see
    :func:`_match`), so both files can be given in any order."""
    paths = [path]
    twin = path.with_name(path.name.replace(".jsonl", "_swap.jsonl"))
    if twin != path and twin.exists():
        paths.append(twin)
    out = Imported(inputs={"instruction": [], "response_a": [], "response_b": [], "reference": []})
    for p in paths:
        for i, rec in enumerate(_reife_records(p)):
            result = require(rec, "result", file=p, row=i)
            fail = bool(result.get("fail")) if isinstance(result, dict) else True
            winner = result.get("winner") if isinstance(result, dict) else None
            if fail or winner not in (1, 2, "1", "2"):
                verdict = "tie" if not fail and result.get("tie") else None
            else:
                verdict = "A" if str(winner) == "1" else "B"
            texts = rec.get("response") or []
            raw = texts[0].get("text") if texts and isinstance(texts[0], dict) else None
            out.add(0, Verdict(label=verdict, parsed=not fail, raw=raw))
            out.inputs["instruction"].append(require(rec, "instruction", file=p, row=i))
            out.inputs["response_a"].append(require(rec, "output_1", file=p, row=i))
            out.inputs["response_b"].append(require(rec, "output_2", file=p, row=i))
            out.inputs["reference"].append(None)
    out.meta["files"] = [str(p) for p in paths]
    return out


MAPPED_FIELDS = ("example_id", "verdict_0", "verdict_1", "score_0", "score_1", "prob_a_0", "prob_a_1", "raw_0",
                 "raw_1")
"""Fields ``--map`` takes for ``--format mapped``: the example key, and per order (0 = as given, 1 = with
the responses swapped) a verdict, a score, a probability that response A is better and the raw output."""

UNMAPPED_POLICIES = ("error", "failure")
SWAPPED_CONVENTIONS = ("as-original", "as-positions")
"""What a verdict of order 1 (the responses shown swapped) refers to: ``as-original`` — the original
response (``A`` = the dataset's ``response_a``, the file already mapped it back; the default) or
``as-positions`` — the position shown (``A`` = the first response shown, i.e. the original ``response_b``)."""

READER_OPTIONS: dict[str, tuple[str, ...]] = {
    "llmbar": (), "pandalm": (), "reife": (), "unieval": ("criterion", "subset"),
    "mapped": ("mapping", "label_map", "unmapped", "swapped_verdicts"),
}
"""The options each format takes (``--option KEY=VALUE``; ``mapped`` gets its own flags)."""


def check_options(fmt: str, options: Mapping[str, Any]) -> None:
    """Unknown reader options are an error naming the allowed ones (never silently ignored)."""
    allowed = READER_OPTIONS[fmt]
    for key in options:
        if key not in allowed:
            raise InvalidInput(f"the {fmt} format takes no option {key!r}; "
                               f"options: {', '.join(allowed) if allowed else 'none'}", field=key)
    if "unmapped" in options and options["unmapped"] not in UNMAPPED_POLICIES:
        raise InvalidInput(f"--unmapped must be one of {', '.join(UNMAPPED_POLICIES)}", field="unmapped")
    if "swapped_verdicts" in options and options["swapped_verdicts"] not in SWAPPED_CONVENTIONS:
        raise InvalidInput(f"--swapped-verdicts must be one of {', '.join(SWAPPED_CONVENTIONS)}",
                           field="swapped_verdicts")


def _check_mapping(mapping: Mapping[str, str], path: Path) -> None:
    for key, column in mapping.items():
        if key not in MAPPED_FIELDS:
            raise InvalidInput(f"unknown field {key!r} in --map; fields: {', '.join(MAPPED_FIELDS)}", file=path,
                               field=key, hint="e.g. --map example_id=id --map verdict_0=winner")
        if not str(column).strip():
            raise InvalidInput(f"--map {key}= names no column", file=path, field=key)
    if "example_id" not in mapping:
        raise InvalidInput("the mapped format needs --map example_id=COLUMN (or example_id=@row to align by row "
                           "order)", file=path, field="example_id")
    if not any(k.startswith(("verdict_", "score_", "prob_a_")) for k in mapping):
        raise InvalidInput("map at least verdict_0=COLUMN, score_0=COLUMN or prob_a_0=COLUMN", file=path,
                           field="verdict_0")


def _number(value: Any, *, path: Path, row: int, field: str, low: float | None = None,
            high: float | None = None) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{value!r} is not a number", file=path, row=row, field=field)
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{str(value)[:80]!r} is not a number", file=path, row=row, field=field) from None
    if math.isnan(x):
        return None
    if not math.isfinite(x):
        raise InvalidInput(f"{value!r} is not a finite number", file=path, row=row, field=field)
    if (low is not None and x < low) or (high is not None and x > high):
        raise InvalidInput(f"{x} is outside [{low}, {high}]", file=path, row=row, field=field)
    return x


def _read_mapped(path: Path, *, mapping: Mapping[str, str] | None = None,
                 label_map: Mapping[str, str] | None = None, **_: Any) -> Imported:
    """Any table with an example key and, per order, a verdict, score or probability column:
    ``--map example_id=COL --map verdict_0=COL [--map verdict_1=COL] [--map score_0=COL]``. Columns
    may be dotted paths into nested JSON (``judgments.0.decision``), ``@row`` (the record's row number,
    for files that line up with their dataset by row order) or ``@key`` (the key of a dict-of-lists
    file). Verdict values are kept as text here (after ``label_map``) and checked against the dataset's
    labels by :func:`import_predictions`."""
    from registry.adapters.sources.generic import select_fields

    mapping = dict(mapping or {})
    _check_mapping(mapping, path)
    cols = select_fields(path, mapping)
    lm = {str(k): str(v) for k, v in (label_map or {}).items()}
    orders = sorted({int(k.rsplit("_", 1)[1]) for k in mapping if k != "example_id" and not k.startswith("raw_")})
    out = Imported(example_ids=[])
    ids = cols["example_id"]
    for i, eid in enumerate(ids):
        if eid is None or (isinstance(eid, float) and math.isnan(eid)) or not str(eid).strip():
            raise InvalidInput("the example id is missing", file=path, row=i, field="example_id")
        if isinstance(eid, float) and eid.is_integer():
            eid = int(eid)  # a CSV column of ids with gaps reads as floats
        for order in orders:
            v = cols[f"verdict_{order}"][i] if f"verdict_{order}" in cols else None
            missing = v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())
            verdict = None if missing else lm.get(str(v), str(v).strip())
            score = _number(cols[f"score_{order}"][i], path=path, row=i, field=f"score_{order}") \
                if f"score_{order}" in cols else None
            prob = _number(cols[f"prob_a_{order}"][i], path=path, row=i, field=f"prob_a_{order}", low=0.0,
                           high=1.0) if f"prob_a_{order}" in cols else None
            raw = cols[f"raw_{order}"][i] if f"raw_{order}" in cols else (None if missing else str(v))
            out.add(order, Verdict(label=verdict, score=score, prob_a=prob,
                                   parsed=verdict is not None or score is not None or prob is not None,
                                   raw=None if raw is None else str(raw)))
            out.example_ids.append(str(eid))
            out.rows.append(i)
    return out


def _check_verdicts(imp: Imported, version, *, path: Path, label_map: Mapping[str, str],
                    policy: str) -> None:
    """Verdicts must be the dataset's labels (after ``--label-map``): values outside them are an error
    listing each distinct value and its count, unless ``--unmapped failure`` makes them parse failures."""
    if version.task_type == "pointwise":
        if any(v is not None for v in imp.verdicts):
            raise InvalidInput(f"{version.ref} is pointwise: map score_0 (the predicted rating), not verdict_0",
                               file=path, field="verdict_0")
        return
    allowed = set(PAIRWISE_LABELS) if version.task_type == "pairwise" else set(version.labels or ())
    verdicts = imp.verdicts
    bad: Counter = Counter(v for v in verdicts if v is not None and v not in allowed)
    if not bad:
        return
    if policy == "failure":
        for j, v in enumerate(imp.judgments):
            if v.label is not None and v.label not in allowed:
                imp.judgments[j] = replace(v, label=None, parsed=v.score is not None or v.prob_a is not None)
        imp.meta["unmapped_values"] = dict(bad.most_common())
        return
    first = next(j for j, v in enumerate(verdicts) if v is not None and v not in allowed)
    shown = ", ".join(f"{v!r} ×{n}" for v, n in bad.most_common(20))
    more = f" and {len(bad) - 20} more" if len(bad) > 20 else ""
    raise InvalidInput(
        f"{sum(bad.values())} verdict(s) are not labels of {version.ref} ({', '.join(sorted(allowed))}): "
        f"{shown}{more}", file=path, row=imp.rows[first] if imp.rows else None,
        field=f"verdict_{imp.order[first]}",
        hint="map them with --label-map VALUE=LABEL" + (f" (given: {dict(label_map)})" if label_map else "")
             + ", or pass --unmapped failure to count them as parse failures")


def _apply_swapped_convention(imp: Imported, convention: str) -> None:
    """Bring order-1 verdicts to the registry's convention (the original response) from a file that
    wrote them as the positions shown."""
    if convention != "as-positions":
        return
    for j, o in enumerate(imp.order):
        if o == 1:
            imp.judgments[j] = imp.judgments[j].swapped()


def convention_warning(labels: Sequence[str], v0: Sequence[str | None], v1: Sequence[str | None],
                       convention: str) -> str | None:
    """A warning when order-1 verdicts agree with the human labels far below chance while order 0 is above
    it: the file most likely uses the other ``--swapped-verdicts`` convention."""
    from scipy.stats import binomtest

    def agreement(verdicts):
        pairs = [(lab, v) for lab, v in zip(labels, verdicts) if lab in ("A", "B") and v in ("A", "B")]
        return sum(lab == v for lab, v in pairs), len(pairs)

    k1, n1 = agreement(v1)
    k0, n0 = agreement(v0)
    if n1 < 10 or n0 < 10:
        return None
    below = binomtest(k1, n1, 0.5, alternative="less").pvalue < 0.01
    if below and k0 / n0 > 0.5:
        other = next(c for c in SWAPPED_CONVENTIONS if c != convention)
        return (f"order-1 verdicts agree with the human labels on {k1}/{n1} ({k1 / n1:.0%}, far below chance) while "
                f"order 0 agrees on {k0}/{n0} ({k0 / n0:.0%}): the file probably writes swapped-order verdicts "
                f"{other}; re-import with --swapped-verdicts {other} if so")
    return None


READERS: dict[str, Callable[..., Imported]] = {
    "llmbar": _read_llmbar, "pandalm": _read_pandalm, "unieval": _read_unieval,
    "reife": _read_reife, "mapped": _read_mapped,
}


# ---------------------------------------------------------------------------- matching


def _match(table: pa.Table, task_type: str, imp: Imported) -> tuple[list[tuple[int, int, int]], int]:
    """(entry, dataset row, order) triples and the number of unmatched entries.

    Content matching uses the hash of the judge-visible inputs; identical inputs in the dataset
    (the same output of two systems, say) all receive the entry's judgment, as a judge would give
    them the same one. A pairwise entry shown swapped (its responses in the other positions) is
    recognised and mapped back to the original orientation."""
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    if imp.inputs is None:
        index: dict[str, list[int]] = {}
        for i, eid in enumerate(cols["example_id"]):
            index.setdefault(eid, []).append(i)
        keys = imp.example_ids or []
        triples = [(j, r, imp.order[j]) for j, k in enumerate(keys) for r in index.get(k, [])]
        return triples, sum(k not in index for k in keys)
    index = {}
    for i, k in enumerate(example_input_hashes(cols, task_type)):
        index.setdefault(k, []).append(i)
    imp_keys = example_input_hashes(imp.inputs, task_type)
    swapped_keys: list[str | None] = [None] * len(imp_keys)
    if task_type == "pairwise":
        sw = dict(imp.inputs)
        sw["response_a"], sw["response_b"] = imp.inputs["response_b"], imp.inputs["response_a"]
        swapped_keys = example_input_hashes(sw, task_type)
    triples, unmatched = [], 0
    for j, key in enumerate(imp_keys):
        if key in index:
            triples += [(j, r, imp.order[j]) for r in index[key]]
        elif swapped_keys[j] in index:
            imp.judgments[j] = imp.judgments[j].swapped()
            triples += [(j, r, 1 - imp.order[j]) for r in index[swapped_keys[j]]]
        else:
            unmatched += 1
    return triples, unmatched


def _import_key(fmt: str, files: Sequence[Path], version, evaluator: str, options: Mapping[str, Any], seed: int,
                n_boot: int, slice_by: Sequence[str] | None) -> tuple[str, list[str]]:
    """Content address of an import: the files' bytes, the format and options, the dataset version's
    content, the evaluator and the scoring settings. A repeat with the same key returns the same run."""
    digests = [sha256_file(p) for p in files]
    spec = {"format": fmt, "files": digests, "options": _plain_options(options), "dataset": version.content_hash,
            "evaluator": evaluator, "seed": seed, "n_boot": n_boot, "slice_by": list(slice_by or [])}
    return sha256_json(spec), digests


def _plain_options(options: Mapping[str, Any]) -> dict:
    return json.loads(canonical_json(dict(options or {})))


def _files_of(fmt: str, path: Path) -> list[Path]:
    if fmt == "reife":
        twin = path.with_name(path.name.replace(".jsonl", "_swap.jsonl"))
        return [path, twin] if twin != path and twin.is_file() else [path]
    return [path]


def _check_path(reg: RegistryContext, path: Path) -> None:
    """A regular file within the input size limit (never a folder, FIFO or device), checked before it is opened."""
    check_input(path, max_bytes=int(reg.settings.max_input_mb * 2**20))


def import_predictions(reg: RegistryContext, fmt: str, path: Path, dataset: str, *, evaluator: str,
                       options: Mapping[str, Any] | None = None, seed: int = 0, n_boot: int = 1000,
                       min_coverage: float = 0.5, slice_by: Sequence[str] | None = None) -> EvaluationRun:
    """Import ``path`` (format ``fmt``) as a run of external evaluator ``evaluator`` on
    ``dataset``. Entries that match no example are counted and reported; fewer than
    ``min_coverage`` of the dataset's examples matched is an error.

    Imports are content-addressed like dataset versions: importing the same file(s) with the same
    options into the same dataset version and evaluator again returns the existing run."""
    return _import(reg, fmt, path, dataset, evaluator=evaluator, options=options, seed=seed, n_boot=n_boot,
                   min_coverage=min_coverage, slice_by=slice_by)[0]


def _import(reg: RegistryContext, fmt: str, path: Path, dataset: str, *, evaluator: str,
            options: Mapping[str, Any] | None, seed: int, n_boot: int, min_coverage: float,
            slice_by: Sequence[str] | None, judge: Mapping[str, str] | None = None) -> tuple[EvaluationRun, bool]:
    """:func:`import_predictions`, and whether the run is new (``False``: an earlier identical import).
    ``judge`` (``{"llm": …, "protocol": …}``) goes into a new evaluator's config, for the ReIFE analyses."""
    from registry.services.datasets import load_table
    from registry.services.scoring import compute_metrics

    started_at = utcnow()
    if fmt not in READERS:
        raise NotFound.named("import format", fmt, READERS)
    validate_new_name("evaluator", evaluator, lambda n: evaluator_exists(reg, n), field="evaluator")
    path = Path(path)
    _check_path(reg, path)
    options = dict(options or {})
    check_options(fmt, options)
    t0 = time.perf_counter()
    version = reg.store.get_version(dataset)
    key, digests = _import_key(fmt, _files_of(fmt, path), version, evaluator, options, seed, n_boot, slice_by)
    existing = reg.store.find_run_by_provenance(evaluator, version.ref, "import_key", key)
    if existing is not None:
        return existing, False
    # reader options default to the adapter options the dataset version was registered with
    # (e.g. UniEval's subset and criterion)
    reader_opts = {k: v for k, v in options.items() if k not in ("unmapped", "swapped_verdicts")}
    if fmt == "unieval":
        reader_opts = {**dict(version.provenance.get("options") or {}), **reader_opts}
    with reading_inputs(reg.settings.max_input_mb) as inputs:
        imp = READERS[fmt](path, **reader_opts)
    if fmt == "mapped":
        _check_verdicts(imp, version, path=path, label_map=options.get("label_map") or {},
                        policy=options.get("unmapped", "error"))
        _apply_swapped_convention(imp, options.get("swapped_verdicts", "as-original"))
    table = load_table(reg, version.ref)
    triples, unmatched = _match(table, version.task_type, imp)
    ids = table.column("example_id").to_pylist()
    seen: dict[tuple[int, int], int] = {}
    for j, r, o in triples:
        seen[(r, o)] = j  # a later duplicate entry wins
    covered = {r for r, _ in seen}
    if len(covered) < min_coverage * len(ids):
        hint = ("align by row order: register the dataset with --id-from-row and map example_id=@row"
                if fmt == "mapped" else None)
        raise InvalidInput(f"only {len(covered)} of {len(ids)} examples of {version.ref} match the file "
                           f"({unmatched} entries unmatched); is it the right dataset?", file=path, hint=hint)
    data: dict[str, list] = {c: [] for c in PREDICTION_COLUMNS}
    for (r, o), j in sorted(seen.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        data["example_id"].append(ids[r])
        data["order"].append(o)
        data["sample"].append(0)
        v = imp.judgments[j]
        data["verdict"].append(v.label)
        data["score"].append(v.score)
        data["prob_a"].append(v.prob_a)
        data["parsed"].append(v.parsed)
        data["raw"].append(v.raw)
        data["prompt_tokens"].append(0)
        data["completion_tokens"].append(0)
        data["seconds"].append(0.0)
    warnings = []
    if inputs.replaced_surrogates:
        warnings.append(f"{inputs.replaced_surrogates} lone surrogate(s) in the file's texts replaced with U+FFFD")
    if version.task_type == "pairwise" and {0, 1} <= set(data["order"]):
        by = {(e, o): v for e, o, v in zip(data["example_id"], data["order"], data["verdict"])}
        labels = table.column("label").to_pylist()
        rows = sorted(covered)
        warning = convention_warning([labels[r] for r in rows], [by.get((ids[r], 0)) for r in rows],
                                     [by.get((ids[r], 1)) for r in rows],
                                     options.get("swapped_verdicts", "as-original"))
        if warning:
            warnings.append(warning)
    predictions = pa.Table.from_pydict(data, schema=PREDICTION_SCHEMA)
    uri, digest = _store_predictions(reg, predictions)
    metrics = compute_metrics(version.task_type, table, predictions, ctx=task_context(version), seed=seed,
                              n_boot=n_boot, **({"slice_by": list(slice_by)} if slice_by else {}))

    autorater = evaluator.split("/")[0]
    ckpt, _ = register_checkpoint(reg, autorater, kind="external", uri=f"external:{autorater}")
    ev = _external_evaluator(reg, ckpt.ref, evaluator, {"format": fmt, "source": evaluator}, judge)
    provenance = {"imported_from": str(path), "format": fmt, "file_sha256": digests[0], "files_sha256": digests,
                  "import_key": key, "unmatched_entries": unmatched, "dataset_examples": len(ids),
                  "options": _plain_options(options), "warnings": warnings, **imp.meta}
    return reg.store.add_finished_run(
        evaluator=ev.name, dataset=version.ref, started_at=started_at, finished_at=utcnow(),
        seconds=time.perf_counter() - t0, seed=seed, n_examples=len(covered), n_judgments=predictions.num_rows,
        predictions_uri=uri, predictions_sha256=digest, provenance=provenance, metrics=metrics), True


# ------------------------------------------------------------------------ batch imports


LLMBAR_RESULT_GLOB = "**/evaluators/*/*/result.json"


def _external_evaluator(reg: RegistryContext, checkpoint: str, name: str, config: dict,
                        judge: Mapping[str, str] | None):
    """The external evaluator ``name`` with ``config`` (and ``judge``'s base LLM and protocol): an
    evaluator of that name imported before the config held them (``config`` alone) is reused."""
    from registry.errors import AlreadyExists

    try:
        return create_evaluator(reg, checkpoint=checkpoint, protocol="external", name=name, kind="external",
                                config={**config, **(judge or {})})[0]
    except AlreadyExists:
        existing = reg.store.get_evaluator(name)
        if not judge or existing.kind != "external" or existing.config != config:
            raise
        return existing


def llmbar_judge(result: Path) -> dict[str, str]:
    """``{"llm": "<judge>", "protocol": "llmbar-<protocol>"}`` (lower case) of an LLMBar
    ``…/evaluators/<judge>/<protocol>/result.json``: what :func:`llmbar_evaluator_name` joins with ``/``."""
    return {"llm": result.parent.parent.name.lower(), "protocol": f"llmbar-{result.parent.name.lower()}"}


def llmbar_evaluator_name(result: Path) -> str:
    """``<judge>/llmbar-<protocol>`` (lower case) from ``…/evaluators/<judge>/<protocol>/result.json``."""
    judge = llmbar_judge(result)
    return f"{judge['llm']}/{judge['protocol']}"


@dataclass(frozen=True)
class BatchItem(Serializable):
    """What happened to one file of a batch import."""

    path: str
    status: Literal["imported", "unchanged", "skipped", "failed"]
    evaluator: str | None = None
    dataset: str | None = None
    run_id: int | None = None
    headline: str | None = None
    value: float | None = None
    message: str | None = None


class _DatasetFinder:
    """Finds the registered dataset an LLMBar ``result.json`` belongs to: the dataset whose version was
    registered from the ``dataset.json`` of the same folder, else the pairwise dataset its records match
    best by content (tables loaded once per batch)."""

    def __init__(self, reg: RegistryContext) -> None:
        self.reg = reg
        self.by_path: dict[str, str] = {}
        self.pairwise: list[str] = []
        for ds in reg.store.list_datasets(task_type="pairwise"):
            self.pairwise.append(ds.name)
            for v in reg.store.list_versions(ds.name):
                p = v.provenance.get("path")
                if p:
                    self.by_path.setdefault(str(Path(p).resolve()), ds.name)
        self._index: dict[str, dict[str, int]] | None = None

    def find(self, result: Path) -> str | None:
        sibling = (result.parent.parent.parent.parent / "dataset.json").resolve()
        if str(sibling) in self.by_path:
            return self.by_path[str(sibling)]
        return self._by_content(result)

    def _by_content(self, result: Path) -> str | None:
        from registry.services.datasets import load_table

        if self._index is None:
            self._index = {}
            for name in self.pairwise:
                cols = load_table(self.reg, name).to_pydict()
                for k in example_input_hashes(cols, "pairwise"):
                    self._index.setdefault(k, {}).setdefault(name, 0)
                    self._index[k][name] += 1
        imp = _read_llmbar(result)
        votes: Counter = Counter()
        for k in example_input_hashes(imp.inputs, "pairwise"):
            votes.update(self._index.get(k, {}).keys())
        return votes.most_common(1)[0][0] if votes else None


def import_tree(reg: RegistryContext, root: Path | Sequence[Path], *, fmt: str = "llmbar", seed: int = 0,
                n_boot: int = 1000, on_progress: Callable[[int, int, str], None] | None = None) -> list[BatchItem]:
    """Import every LLMBar ``evaluators/<judge>/<protocol>/result.json`` under ``root`` (or the given
    files) in one process, each matched to its registered dataset and named ``<judge>/llmbar-<protocol>``.
    A file that matches no registered dataset is skipped, one that fails is reported; neither stops the
    batch. Repeats return the existing runs (``unchanged``)."""
    from registry.services.scoring import headline_for

    if fmt != "llmbar":
        raise InvalidInput(f"batch import reads the LLMBar layout (evaluators/<judge>/<protocol>/result.json); "
                           f"--format {fmt} files are imported one at a time with --dataset and --evaluator",
                           field="format")
    if isinstance(root, (str, Path)):
        root = Path(root)
        if not root.is_dir():
            raise InvalidInput("not a folder", file=root)
        files = sorted(p for p in root.glob(LLMBAR_RESULT_GLOB) if p.is_file())
        if not files:
            raise InvalidInput(f"no {LLMBAR_RESULT_GLOB} under the folder", file=root)
    else:
        files = [Path(p) for p in root]
    finder = _DatasetFinder(reg)
    items: list[BatchItem] = []
    for i, path in enumerate(files):
        if on_progress:
            on_progress(i, len(files), str(path))
        evaluator = llmbar_evaluator_name(path)
        try:
            dataset = finder.find(path)
            if dataset is None:
                items.append(BatchItem(str(path), "skipped", evaluator,
                                       message="no registered pairwise dataset matches its examples"))
                continue
            run, created = _import(reg, fmt, path, dataset, evaluator=evaluator, options=None, seed=seed,
                                   n_boot=n_boot, min_coverage=0.5, slice_by=None, judge=llmbar_judge(path))
            metric = headline_for(reg.store.get_version(run.dataset))
            m = run.metric(metric)
            status = "imported" if created else "unchanged"
            items.append(BatchItem(str(path), status, evaluator, run.dataset, run.id, metric,
                                   m.value if m else None))
        except RegistryError as exc:
            items.append(BatchItem(str(path), "failed", evaluator, message=str(exc)))
    if on_progress:
        on_progress(len(files), len(files), "")
    return items
