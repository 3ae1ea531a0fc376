"""Fuzzed ``eval import`` files, every format (``llmbar``, ``pandalm``, ``unieval``, ``reife``, ``mapped``
on pairwise, classification and pointwise datasets): generated judge outputs that match registered
datasets, with the record changes of :mod:`tests.fuzz.records` (verdicts outside the labels, winners that
are lists, non-numeric, infinite and out-of-range scores and probabilities, missing and extra fields,
records that are not objects, deep nesting ...), damaged bytes, and broken options (a mapping to an
unknown field, a blank column, no example id, unknown reader options and policies, bad evaluator names).
Each input is refused clearly with nothing changed, or imported as exactly one run (the same file again:
the same run)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import strategies as st

from registry.adapters.sources.base import stable_ids
from tests.fuzz.oracle import Fuzz
from tests.fuzz.records import MODES, Field, apply, changes, has_deep
from tests.fuzz.records import located as located_changes
from tests.fuzz.strategies import BENIGN, EITHER, FATAL, apply_damage, combine, damage, damaged, dumps, words
from tests.fuzz.test_fuzz_generic import write_table
from tests.fuzz.test_fuzz_sources import Case, tiers

N = 12
"""Examples of each dataset the imports are matched to."""


def _texts(prefix: str) -> list[str]:
    return [f"{prefix} question number {i}" for i in range(N)]


LLMBAR = [{"input": q, "output_1": f"first {i}", "output_2": f"second {i}", "label": 1 + i % 2}
          for i, q in enumerate(_texts("pairs"))]
PANDALM = [{"idx": i, "motivation_app": "m", "cmp_key": "a_b", "instruction": q, "input": "", "response1": "r1",
            "response2": "r2", "annotator1": i % 3, "annotator2": i % 3, "annotator3": (i + 1) % 3}
           for i, q in enumerate(_texts("panda"))]
UNIEVAL = [{"doc_id": f"d{i}", "source": q, "context": "c", "system_output": f"out {i}", "reference": "ref",
            "system_id": "s", "scores": {"engagingness": 1 + (i % 3)}} for i, q in enumerate(_texts("uni"))]
CLASSES = [{"id": f"c{i}", "q": q, "r": f"resp {i}", "y": ("pos", "neg", "neu")[i % 3]}
           for i, q in enumerate(_texts("class"))]
POINTS = [{"id": f"p{i}", "q": q, "r": f"resp {i}", "s": 1 + i % 5} for i, q in enumerate(_texts("point"))]
PAIR_IDS = stable_ids([r["input"] for r in LLMBAR])
"""The example ids LLMBar's adapter gives the pairs (a hash of the instruction)."""
DATASETS = {
    "fz-pairs": ("pairs.json", LLMBAR, {"source": "llmbar"}),
    "fz-pandalm-test": ("pandalm.json", PANDALM, {"source": "pandalm"}),
    "fz-unieval-engagingness": ("unieval.json", UNIEVAL, {"source": "unieval", "options": {
        "subset": "topical-chat", "criterion": "engagingness"}}),
    "fz-classes": ("classes.json", CLASSES, {"source": "generic", "task_type": "classification", "options": {
        "mapping": {"example_id": "id", "instruction": "q", "response": "r", "label": "y"},
        "labels": ["pos", "neg", "neu"]}}),
    "fz-points": ("points.json", POINTS, {"source": "generic", "task_type": "pointwise", "options": {
        "mapping": {"example_id": "id", "instruction": "q", "response": "r", "score": "s"}, "scale": "1,5"}}),
}


@pytest.fixture(scope="module")
def datasets(fuzz: Fuzz) -> None:
    """The registered datasets the generated files are imported into."""
    folder = fuzz.outside / "datasets"
    folder.mkdir()
    for name, (file, records, how) in DATASETS.items():
        (folder / file).write_text(json.dumps(records))
        fuzz.reg.register_dataset(name, path=folder / file, **how)
    assert [r["example_id"] for r in fuzz.reg.load_table("fz-pairs").to_pylist()] == sorted(PAIR_IDS)
    fuzz.guard.rebase()


# ----------------------------------------------------------------------------- formats


@dataclass(frozen=True)
class Format:
    """An import format: how to make a valid file for its dataset, and the fields its reader takes."""

    name: str
    fmt: str
    dataset: str
    layout: str  # json | jsonl | table (any format the generic reader reads)
    records: st.SearchStrategy[list[dict[str, Any]]]
    fields: tuple[Field, ...]
    options: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Format({self.name})"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


VERDICTS = ("A", "B", "tie")


def _verdict(value: Any) -> str:
    """How the mapped format reads a verdict: its text, stripped (blank: no verdict)."""
    return "" if value is None else str(value).strip()


def _mapped_pairwise():
    ids = PAIR_IDS
    rec = lambda eid: st.fixed_dictionaries({  # noqa: E731
        "id": st.just(eid), "v0": st.one_of(st.sampled_from(VERDICTS), st.none()),
        "v1": st.sampled_from(VERDICTS), "p0": st.floats(0, 1), "raw": words()})
    return st.tuples(*(rec(e) for e in ids)).map(list)


def _mapped_classes():
    ids = [r["id"] for r in CLASSES]
    return st.tuples(*(st.fixed_dictionaries({"id": st.just(e), "v": st.sampled_from(["pos", "neg", "neu", 1, 2]),
                                              "raw": words()}) for e in ids)).map(list)


def _mapped_points():
    ids = [r["id"] for r in POINTS]
    return st.tuples(*(st.fixed_dictionaries({"id": st.just(e), "s": st.floats(-10, 10)}) for e in ids)).map(list)


def _llmbar():
    def rec(r):
        winner = st.sampled_from(["1", "2", None, "3", 1])
        return st.fixed_dictionaries({"input": st.just(r["input"]), "output_1": st.just(r["output_1"]),
                                      "output_2": st.just(r["output_2"]), "label": st.just(r["label"]),
                                      "results": st.tuples(winner, winner).map(lambda w: [{
                                          "swap = False": {"completion": "x", "winner": w[0]},
                                          "swap = True": {"completion": "y", "winner": w[1]}}])})
    return st.tuples(*(rec(r) for r in LLMBAR)).map(list)


def _pandalm():
    return st.tuples(*(st.fixed_dictionaries({"idx": st.just(r["idx"]), "judge_result": st.sampled_from(
        ["1", "2", "0", "Tie", "garbage", 1, None]), "judge_reason": words()}) for r in PANDALM)).map(list)


def _unieval():
    def rec(r):
        scores = st.floats(0, 1).map(lambda x: {"engagingness": x, "overall": 0.5})
        return st.fixed_dictionaries({**{k: st.just(v) for k, v in r.items()},
                                      "predict_scores": st.one_of(scores, scores.map(repr))})
    return st.tuples(*(rec(r) for r in UNIEVAL)).map(list)


def _reife():
    def rec(r):
        result = st.fixed_dictionaries({"winner": st.sampled_from([1, 2, "1", "2", None]), "tie": st.booleans(),
                                        "fail": st.booleans()})
        return st.fixed_dictionaries({"instruction": st.just(r["input"]), "output_1": st.just(r["output_1"]),
                                      "output_2": st.just(r["output_2"]), "result": result,
                                      "response": st.lists(st.fixed_dictionaries({"text": words()}), max_size=1)})
    return st.tuples(*(rec(r) for r in LLMBAR)).map(list)


TEXT_MATCH = "optional"  # a judge-visible input changed: the entry matches no example (counted, not an error)
FORMATS = [
    Format("mapped-pairwise", "mapped", "fz-pairs", "table", _mapped_pairwise(), (
        Field(("id",), "required", missing=FATAL, none=FATAL),
        Field(("v0",), "label", (*VERDICTS, ""), normalize=_verdict, none=BENIGN, missing=FATAL),
        Field(("v1",), "label", (*VERDICTS, ""), normalize=_verdict, none=BENIGN, missing=FATAL),
        Field(("p0",), "judge_score", scale=(0.0, 1.0), missing=FATAL),
        Field(("raw",), "optional", missing=FATAL)),
        {"mapping": {"example_id": "id", "verdict_0": "v0", "verdict_1": "v1", "prob_a_0": "p0", "raw_0": "raw"}}),
    Format("mapped-classes", "mapped", "fz-classes", "table", _mapped_classes(), (
        Field(("id",), "required", missing=FATAL, none=FATAL),
        Field(("v",), "label", ("pos", "neg", "neu", 1, 2, "1", "2", ""), normalize=_verdict, none=BENIGN,
              missing=FATAL)),
        {"mapping": {"example_id": "id", "verdict_0": "v", "raw_0": "raw"}, "label_map": {"1": "pos", "2": "neg"}}),
    Format("mapped-points", "mapped", "fz-points", "table", _mapped_points(), (
        Field(("id",), "required", missing=FATAL, none=FATAL), Field(("s",), "judge_score", missing=FATAL)),
        {"mapping": {"example_id": "id", "score_0": "s"}}),
    Format("llmbar", "llmbar", "fz-pairs", "json", _llmbar(), (
        Field(("label",), "label", (1, 2, "1", "2")), Field(("results",), "object"),
        Field(("results", 0), "object"), Field(("results", 0, "swap = False"), "object"),
        Field(("results", 0, "swap = True", "winner"), "optional", missing=FATAL),
        Field(("input",), TEXT_MATCH, missing=FATAL), Field(("output_1",), TEXT_MATCH, missing=FATAL))),
    Format("pandalm", "pandalm", "fz-pandalm-test", "json", _pandalm(), (
        Field(("idx",), "required", missing=FATAL), Field(("judge_result",), "optional", missing=FATAL),
        Field(("judge_reason",), "optional"))),
    Format("unieval", "unieval", "fz-unieval-engagingness", "json", _unieval(), (
        Field(("predict_scores",), "object"), Field(("predict_scores", "engagingness"), "score",
                                                    scale=(-1e9, 1e9)),
        Field(("source",), "text", overrides=(("hostile text", EITHER), ("huge", EITHER), ("wrong type", FATAL),
                                               ("container", FATAL))),
        Field(("system_output",), "response", overrides=(("huge", EITHER), ("hostile text", EITHER),
                                                          ("wrong type", FATAL), ("container", FATAL))))),
    Format("reife", "reife", "fz-pairs", "jsonl", _reife(), (
        Field(("result",), "required", missing=FATAL), Field(("result", "winner"), "optional"),
        Field(("response",), "optional"), Field(("instruction",), TEXT_MATCH, missing=FATAL))),
]


# ----------------------------------------------------------------------------- cases

EVALUATOR_BREAKS = ["", " ", "a b", "x@2", "../judge", "a" * 300, "\x00", "judge\n", "@", "/"]
OPTION_BREAKS: dict[str, list[tuple[str, Any]]] = {
    "mapped": [
        ("unknown mapped field", lambda o: {**o, "mapping": {**o["mapping"], "verdict_7": "v"}}),
        ("blank column", lambda o: {**o, "mapping": {**o["mapping"], "raw_0": " "}}),
        ("no example id", lambda o: {**o, "mapping": {k: v for k, v in o["mapping"].items() if k != "example_id"}}),
        ("nothing judged", lambda o: {**o, "mapping": {"example_id": o["mapping"]["example_id"]}}),
        ("unmapped policy", lambda o: {**o, "unmapped": "maybe"}),
        ("swapped convention", lambda o: {**o, "swapped_verdicts": "sideways"}),
        ("unknown option", lambda o: {**o, "criterion": "x"}),
        ("map to no column", lambda o: {**o, "mapping": {**o["mapping"], "example_id": "no_such_column"}}),
    ],
    "llmbar": [("unknown option", lambda o: {**o, "mapping": {"a": "b"}})],
    "pandalm": [("unknown option", lambda o: {**o, "split": "x"})],
    "reife": [("unknown option", lambda o: {**o, "criterion": "x"})],
    "unieval": [("unknown criterion", lambda o: {**o, "criterion": "no-such-criterion"})],
}


@st.composite
def import_cases(draw) -> tuple[Case, Format, dict[str, Any], str]:
    spec = draw(st.sampled_from(FORMATS))
    records = draw(spec.records)
    mode = draw(st.sampled_from(MODES))
    chs = draw(changes(records, spec.fields, mode=mode))
    recs, expect, kept = apply(records, chs)
    located = located_changes(kept)
    what = f"{spec.name} {mode}: " + "; ".join(ch.describe() for ch in kept)
    if any(ch.op == "record" for ch in kept) and len([r for r in recs if isinstance(r, dict)]) < N / 2:
        located = False  # too few entries left to match
    if spec.layout == "table":
        fmt = draw(st.sampled_from(["json", "jsonl", "csv"]))
        data, suffix = write_table(fmt, recs, ascii_only=draw(st.booleans()))
        if fmt == "csv":  # text cells: a wrong type is its text (a number is still one)
            expect = combine(*(_cell_expect(ch) for ch in kept)) if kept else BENIGN
        document = fmt == "json"
    else:
        document = spec.layout == "json"
        text = dumps(recs) if document else "".join(dumps(r) + "\n" for r in recs)
        data, suffix = text.encode(), ".json" if document else ".jsonl"
    broken = False
    if draw(st.integers(0, 3)) == 0:
        kind, params = draw(damage(json_document=document, benign=mode == "valid"))
        data, dexpect, gz = apply_damage(data, kind, params, json_document=document)
        if gz and spec.fmt == "reife":  # reife files are found by their .jsonl name
            dexpect = combine(dexpect, EITHER)
        expect = damaged(expect, dexpect, kind)
        broken = dexpect != BENIGN
        located = located and not broken
        what += f"; bytes: {kind} {params.get('at', '')}"
        suffix += ".gz" if gz else ""
    options = dict(spec.options)
    evaluator = f"fz-judge/{spec.name}"
    names_file = True
    if mode == "fatal" and draw(st.integers(0, 7)) == 0:
        if draw(st.booleans()):
            evaluator = draw(st.sampled_from(EVALUATOR_BREAKS))
            what += f"; evaluator {evaluator!r}"
        else:
            what_opt, change = draw(st.sampled_from(OPTION_BREAKS[spec.fmt]))
            options = change(options)
            what += f"; option: {what_opt}"
        located = (located or expect != FATAL) and not broken  # (a change in the file may be refused first)
        expect, names_file = FATAL, False
    case = Case({"judge" + suffix: data}, expect, located, what, names_file=names_file)
    return case, spec, options, evaluator


def _cell_expect(ch: Any) -> str:
    """In a CSV, null, a missing field and an empty text are one (an empty cell), and every value is text
    (a value nested deeply too: only a label or a score must then be refused)."""
    f = ch.field
    if ch.op == "record":  # a row of one cell: the first column's value, the others empty
        return EITHER
    if f is not None and (ch.op == "delete" or ch.op == "set" and ch.value == ""):
        if f.kind in ("label", "judge_score"):
            return BENIGN  # an empty cell: no verdict, no score
        return f.none or (EITHER if f.kind == "optional" else ch.expect)
    if has_deep(ch.value) and ch.field is not None and ch.field.kind not in ("label", "score"):
        return EITHER
    return ch.expect


def check_import(fz: Fuzz, drawn: tuple[Case, Format, dict[str, Any], str]) -> None:
    case, spec, options, evaluator = drawn
    folder = fz.folder()
    name, data = next(iter(case.files.items()))
    path = folder / name
    path.write_bytes(data)
    before = fz.guard.base_counts["evaluation_runs"]
    run = fz.attempt(f"imports/{spec.fmt}", lambda: fz.reg.import_predictions(
        spec.fmt, path, spec.dataset, evaluator=evaluator, options=options, n_boot=20),
        expect=case.expect, files=path if case.names_file else None, located=case.located, what=case.what)
    if run is not None:
        assert run.status == "succeeded" and run.n_examples >= N / 2, run
        assert fz.guard.base_counts["evaluation_runs"] - before in (0, 1)
        assert fz.reg.run(run.id).id == run.id


@pytest.fixture(autouse=True)
def _datasets(datasets):
    """Every test of this module imports into the module's datasets."""


def regression(fmt_name: str, records: list[Any], what: str, expect: str = FATAL, *, located: bool = True) -> Any:
    spec = next(f for f in FORMATS if f.name == fmt_name)
    name = "judge.jsonl" if spec.layout == "jsonl" else "judge.json"
    data = "".join(json.dumps(r) + "\n" for r in records) if spec.layout == "jsonl" else json.dumps(records)
    return (Case({name: data.encode()}, expect, located and expect == FATAL, f"regression: {what}"), spec,
            dict(spec.options), f"fz-judge/{spec.name}")


def _uni(i: int, **changes: Any) -> dict[str, Any]:
    return {**UNIEVAL[i], "predict_scores": {"engagingness": 0.5}, **changes}


def _llm(i: int, **changes: Any) -> dict[str, Any]:
    w = {"swap = False": {"winner": "1"}, "swap = True": {"winner": "2"}}
    return {**LLMBAR[i], "results": [w], **changes}


REGRESSIONS = (
    regression("unieval", [_uni(0, predict_scores="00")] + [_uni(i) for i in range(1, N)],
               "predict_scores that is a number (TypeError: argument of type 'int' is not iterable)"),
    regression("unieval", [_uni(0, predict_scores={"engagingness": "abc"})] + [_uni(i) for i in range(1, N)],
               "a predicted score that is text (ValueError in float())"),
    regression("unieval", [_uni(0, source=" ")] + [_uni(i) for i in range(1, N)],
               "a record without a source: the adapter skipped it and every later judgment was paired with the "
               "previous record's inputs (imported, wrongly)"),
    regression("pandalm", [{"idx": i, "judge_result": "1"} for i in range(N - 1)] + [None],
               "a prediction record that is null (TypeError: argument of type 'NoneType' is not iterable)"),
    regression("pandalm", [{"idx": 0, "judge_result": ["1"]}] + [{"idx": i, "judge_result": "1"} for i in range(1, N)],
               "a verdict that is a list (TypeError: unhashable type)", expect=BENIGN),
    regression("pandalm", [{"idx": "zero", "judge_result": "1"}] + [{"idx": i, "judge_result": "1"}
                                                                    for i in range(1, N)],
               "an idx that is not a number (ValueError in int())"),
    regression("llmbar", [_llm(0, label={})] + [_llm(i) for i in range(1, N)],
               "a label that is an object (TypeError: unhashable type: 'dict')"),
    regression("llmbar", [_llm(0, label=True)] + [_llm(i) for i in range(1, N)], "the label true was read as 1"),
)
test_imports_fast, test_imports = tiers("imports", import_cases(), check_import, 12, 1300, REGRESSIONS)
