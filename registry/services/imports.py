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
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from registry.adapters.sources.base import read_json, read_json_or_jsonl, require
from registry.adapters.store.orm import SqlEvaluationRun, utcnow
from registry.domain.entities import EvaluationRun
from registry.domain.judgments import PREDICTION_COLUMNS, example_input_hashes
from registry.errors import InvalidInput
from registry.services.app import Registry
from registry.services.evaluation import PREDICTION_SCHEMA, _store_predictions, task_context
from registry.services.evaluators import create_evaluator, register_checkpoint

IMPORT_FORMATS = ("llmbar", "pandalm", "unieval", "reife", "mapped")


@dataclass
class Imported:
    """Judgments read from a file, before matching: one entry per (example, order)."""

    order: list[int] = field(default_factory=list)
    verdict: list[str | None] = field(default_factory=list)
    score: list[float | None] = field(default_factory=list)
    prob_a: list[float | None] = field(default_factory=list)
    parsed: list[bool] = field(default_factory=list)
    raw: list[str | None] = field(default_factory=list)
    #: judge-visible inputs per entry (field → values) for content matching, or None
    inputs: dict[str, list] | None = None
    #: example ids per entry, when the format carries ids instead of content
    example_ids: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def add(self, order: int, verdict: str | None = None, score: float | None = None, prob_a: float | None = None,
            parsed: bool = True, raw: str | None = None) -> None:
        self.order.append(order)
        self.verdict.append(verdict)
        self.score.append(score)
        self.prob_a.append(prob_a)
        self.parsed.append(parsed)
        self.raw.append(raw)


# ----------------------------------------------------------------------------- readers


def _read_llmbar(path: Path, **_: Any) -> Imported:
    from registry.domain.metrics.llmbar import parse_llmbar_result

    records = read_json(path)
    if not isinstance(records, list):
        raise InvalidInput("expected LLMBar's result.json: a list of records", file=path)
    labels, v0, v1 = parse_llmbar_result(records)
    out = Imported(inputs={"instruction": [], "response_a": [], "response_b": [], "reference": []})
    codes = {0: "A", 1: "B", 2: "tie"}
    for i, rec in enumerate(records):
        for order, verdicts in ((0, v0), (1, v1)):
            code = int(verdicts[i])
            out.add(order, verdict=codes.get(code), parsed=code in codes)
            out.inputs["instruction"].append(require(rec, "input", file=path, row=i))
            out.inputs["response_a"].append(require(rec, "output_1", file=path, row=i))
            out.inputs["response_b"].append(require(rec, "output_2", file=path, row=i))
            out.inputs["reference"].append(None)
    return out


def _read_pandalm(path: Path, **_: Any) -> Imported:
    from registry.domain.metrics.pandalm import parse_pandalm_predictions, prediction_field

    records = read_json(path)
    if not isinstance(records, list) or not records:
        raise InvalidInput("expected a PandaLM prediction file: a list of records", file=path)
    try:
        key = prediction_field(records[0])
        codes = parse_pandalm_predictions(records, key)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, file=path, row=exc.row, field=exc.field) from None
    names = {0: "A", 1: "B", 2: "tie"}
    out = Imported(example_ids=[])
    for i, rec in enumerate(records):
        verdict = names.get(codes[int(rec["idx"])])
        reason = next((rec[k] for k in rec if k.endswith("_reason")), None)
        out.add(0, verdict=verdict, parsed=verdict is not None, raw=reason)
        out.example_ids.append(str(rec["idx"]))
    out.meta["verdict_field"] = key
    return out


def _read_unieval(path: Path, *, criterion: str, subset: str | None = None, **_: Any) -> Imported:
    from registry.adapters.sources.unieval import UniEvalAdapter

    records = read_json(path)
    rows = UniEvalAdapter().read(path, subset=subset, criterion=criterion)
    out = Imported(inputs={f: list(rows[f]) for f in ("instruction", "response", "reference", "criterion")})
    for i, rec in enumerate(records):
        raw = require(rec, "predict_scores", file=path, row=i)
        try:
            scores = ast.literal_eval(raw) if isinstance(raw, str) else raw  # a Python dict literal, never code
        except (ValueError, SyntaxError) as exc:
            raise InvalidInput(f"predict_scores is not a literal dict: {exc}", file=path, row=i,
                               field="predict_scores") from None
        if criterion not in scores:
            raise InvalidInput(f"no {criterion!r} in predict_scores {sorted(scores)}", file=path, row=i,
                               field="predict_scores")
        out.add(0, score=float(scores[criterion]))
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
            out.add(0, verdict=verdict, parsed=not fail, raw=raw)
            out.inputs["instruction"].append(require(rec, "instruction", file=p, row=i))
            out.inputs["response_a"].append(require(rec, "output_1", file=p, row=i))
            out.inputs["response_b"].append(require(rec, "output_2", file=p, row=i))
            out.inputs["reference"].append(None)
    out.meta["files"] = [str(p) for p in paths]
    return out


def _read_mapped(path: Path, *, mapping: Mapping[str, str] | None = None,
                 label_map: Mapping[str, str] | None = None, **_: Any) -> Imported:
    """Any table with an example key and, per order, a verdict and/or score column:
    ``--map example_id=COL --map verdict_0=COL [--map verdict_1=COL] [--map score_0=COL]``."""
    from registry.adapters.sources.generic import load_table as load_any

    mapping = dict(mapping or {})
    if "example_id" not in mapping:
        raise InvalidInput("the mapped format needs --map example_id=COLUMN", file=path, field="example_id")
    df = load_any(path).df
    missing = [c for c in mapping.values() if c not in df.columns]
    if missing:
        raise InvalidInput(f"column(s) {missing} not in the file; columns: {list(df.columns)}", file=path,
                           field=next(k for k, v in mapping.items() if v in missing))
    orders = sorted({int(k.rsplit("_", 1)[1]) for k in mapping if k.startswith(("verdict_", "score_"))})
    if not orders:
        raise InvalidInput("map at least verdict_0=COLUMN or score_0=COLUMN", file=path, field="verdict_0")
    out = Imported(example_ids=[])
    lm = dict(label_map or {})
    for i, row in enumerate(df.to_dict("records")):
        for order in orders:
            v = row.get(mapping.get(f"verdict_{order}")) if f"verdict_{order}" in mapping else None
            s = row.get(mapping.get(f"score_{order}")) if f"score_{order}" in mapping else None
            verdict = None if v is None or v != v else lm.get(str(v), str(v))
            score = None if s is None or s != s else float(s)
            out.add(order, verdict=verdict, score=score, parsed=verdict is not None or score is not None)
            out.example_ids.append(str(row[mapping["example_id"]]))
    return out


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
            v = imp.verdict[j]
            imp.verdict[j] = {"A": "B", "B": "A"}.get(v, v) if v else v
            if imp.prob_a[j] is not None:
                imp.prob_a[j] = 1.0 - imp.prob_a[j]
            triples += [(j, r, 1 - imp.order[j]) for r in index[swapped_keys[j]]]
        else:
            unmatched += 1
    return triples, unmatched


def import_predictions(reg: Registry, fmt: str, path: Path, dataset: str, *, evaluator: str,
                       options: Mapping[str, Any] | None = None, seed: int = 0, n_boot: int = 1000,
                       min_coverage: float = 0.5) -> EvaluationRun:
    """Import ``path`` (format ``fmt``) as a run of external evaluator ``evaluator`` on
    ``dataset``. Entries that match no example are counted and reported; fewer than
    ``min_coverage`` of the dataset's examples matched is an error."""
    from registry.services.datasets import load_table
    from registry.services.scoring import compute_metrics

    if fmt not in READERS:
        from registry.errors import NotFound

        raise NotFound.named("import format", fmt, READERS)
    path = Path(path)
    t0 = time.perf_counter()
    version = reg.store.get_version(dataset)
    # reader options default to the adapter options the dataset version was registered with
    # (e.g. UniEval's subset and criterion)
    opts = {**dict(version.provenance.get("options") or {}), **dict(options or {})} if fmt == "unieval" \
        else dict(options or {})
    imp = READERS[fmt](path, **opts)
    table = load_table(reg, version.ref)
    triples, unmatched = _match(table, version.task_type, imp)
    ids = table.column("example_id").to_pylist()
    seen: dict[tuple[int, int], int] = {}
    for j, r, o in triples:
        seen[(r, o)] = j  # a later duplicate entry wins
    covered = {r for r, _ in seen}
    if len(covered) < min_coverage * len(ids):
        raise InvalidInput(f"only {len(covered)} of {len(ids)} examples of {version.ref} match the file "
                           f"({unmatched} entries unmatched); is it the right dataset?", file=path)
    data: dict[str, list] = {c: [] for c in PREDICTION_COLUMNS}
    for (r, o), j in sorted(seen.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        data["example_id"].append(ids[r])
        data["order"].append(o)
        data["sample"].append(0)
        data["verdict"].append(imp.verdict[j])
        data["score"].append(imp.score[j])
        data["prob_a"].append(imp.prob_a[j])
        data["parsed"].append(imp.parsed[j])
        data["raw"].append(imp.raw[j])
        data["prompt_tokens"].append(0)
        data["completion_tokens"].append(0)
        data["seconds"].append(0.0)
    predictions = pa.Table.from_pydict(data, schema=PREDICTION_SCHEMA)
    uri, digest = _store_predictions(reg, predictions)
    metrics = compute_metrics(version.task_type, table, predictions, ctx=task_context(version), seed=seed,
                              n_boot=n_boot)

    file_sha = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    ckpt, _ = register_checkpoint(reg, evaluator.split("/")[0], kind="external", uri=f"external:{evaluator.split('/')[0]}")
    ev, _ = create_evaluator(reg, checkpoint=ckpt.ref, protocol="external", name=evaluator, kind="external",
                             config={"format": fmt, "source": evaluator})
    with reg.store.session() as s:
        run = SqlEvaluationRun(
            evaluator=reg.store.evaluator_row(s, ev.name), dataset_version=reg.store.version_row(s, version.ref),
            status="succeeded", seed=seed, finished_at=utcnow(), seconds=time.perf_counter() - t0,
            n_examples=len(covered), n_judgments=predictions.num_rows, n_executed=0, n_cached=0,
            predictions_uri=uri, predictions_sha256=digest,
            provenance={"imported_from": str(path), "format": fmt, "file_sha256": file_sha,
                        "unmatched_entries": unmatched, "dataset_examples": len(ids),
                        "options": json.loads(json.dumps(dict(options or {}), default=str)), **imp.meta})
        s.add(run)
        s.flush()
        reg.store.set_metrics(s, run, metrics)
        run_id = run.id
    return reg.store.get_run(run_id)
