"""Fuzzed source files: every source adapter (``autorater sources list``) reads generated valid records
with generated changes — fields deleted or set to hostile, wrong-typed, out-of-set or out-of-scale
values, records that are not objects, extra fields, duplicates — and damaged bytes (truncated, invalid
UTF-8, NUL bytes, BOMs, CRLF, binary garbage, empty, gzip and truncated gzip), through the Python API's
``register_dataset``. Each input is refused clearly with nothing changed, or (when valid) registered
with the rows it holds (:mod:`tests.fuzz.oracle`).

The generic column mapper and the input paths themselves (symlinks, FIFOs, folders, devices) have their
own modules (``test_fuzz_generic.py``, ``test_fuzz_paths.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.oracle import Fuzz, fuzz_settings
from tests.fuzz.records import MODES, Field, apply, changes, has_deep
from tests.fuzz.records import located as located_changes
from tests.fuzz.strategies import (
    BENIGN,
    EITHER,
    FATAL,
    Deep,
    apply_damage,
    combine,
    damage,
    damaged,
    dumps,
    words,
)

# ----------------------------------------------------------------------------- the sources


@dataclass(frozen=True)
class Source:
    """A source adapter's file as records: how to make valid ones, and the fields its reader takes."""

    adapter: str
    dataset: str
    layout: str  # list (a JSON list) | keyed (a JSON object keyed by id) | lines (JSON lines)
    record: Callable[[int], st.SearchStrategy[dict]]
    fields: tuple[Field, ...]
    options: dict[str, Any] = field(default_factory=dict)
    suffix: str = ".json"
    rows: Callable[[list[dict]], int] = len
    """Rows a valid file registers."""
    n: tuple[int, int] = (1, 5)
    aux: Callable[[list[dict]], dict[str, bytes]] | None = None
    """Other files beside the input, made from the valid records (before any change)."""


def _fixed(**values: Any) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(values)


def _llmbar(i: int):
    return _fixed(input=words(), output_1=words(0), output_2=words(0), label=st.sampled_from([1, 2]))


def _pandalm(i: int):
    return _fixed(idx=st.just(i), motivation_app=words(), cmp_key=words(), instruction=words(), input=words(0),
                  response1=words(0), response2=words(0), annotator1=st.sampled_from([0, 1, 2]),
                  annotator2=st.sampled_from([0, 1, 2]), annotator3=st.sampled_from([0, 1, 2]))


def _dialogue(q: str, a: str) -> str:
    return f"\n\nHuman: {q}\n\nAssistant: {a}"


def _hh(i: int):
    return st.tuples(words(), words(0), words(0)).map(
        lambda t: {"chosen": _dialogue(t[0], t[1]), "rejected": _dialogue(t[0], t[2])})


def _judge_prompt(instruction: str, response: str, rubric: str) -> str:
    return (f"###Task Description: grade the response.\n\n###The instruction to evaluate:\n{instruction}\n\n"
            f"###Response to evaluate:\n{response}\n\n###Score Rubrics:\n{rubric}\n\n###Feedback: ")


def _prometheus(i: int):
    return st.tuples(st.sampled_from(["harmless", "helpful", "honest", "other"]), words(), words(), words(),
                     words()).map(lambda t: {"source": t[0], "chosen_instruction": _judge_prompt(t[1], t[2], t[4]),
                                             "rejected_instruction": _judge_prompt(t[1], t[3], t[4])})


def _wmt(i: int):
    side = _fixed(sys=words(0), sys_name=words())
    return _fixed(src=words(), ref=words(), better=side, worse=side)


SYSTEMS = ("s1", "s2")


def _summeval(i: int):
    out = _fixed(sys_summ=words(0), scores=_fixed(coherence=st.floats(1, 5), fluency=st.integers(1, 5)))
    return _fixed(src=words(), ref_summ=words(), ref_summs=st.lists(words(), max_size=2),
                  sys_summs=_fixed(**{s: out for s in SYSTEMS}))


def _unieval(i: int):
    return _fixed(doc_id=st.just(f"d{i}"), source=words(), context=words(), system_output=words(0),
                  reference=words(), system_id=words(), scores=_fixed(engagingness=st.floats(1, 3)))


CONALA = ("snippet", "baseline", "tranx-annot", "best-tranx", "best-tranx-rerank", "codex")


def _conala(i: int):
    code = st.one_of(words(0), st.lists(words(), min_size=1, max_size=3))
    grades = st.dictionaries(st.sampled_from(["g1", "g2", "g3"]), st.integers(0, 4), min_size=1)
    return _fixed(intent=words(), **{s: code for s in CONALA}, **{f"grade-{s}": grades for s in CONALA})


def _summedits(i: int):
    return _fixed(id=st.just(f"e{i}"), doc=words(), summary=words(0), label=st.sampled_from([0, 1]),
                  split=words(), edit_types=st.lists(words(), max_size=2), original_summary=words())


def _summac(i: int):
    return _fixed(document=words(), claim=words(0), label=st.sampled_from([0, 1]),
                  annotations=st.lists(st.sampled_from([0, 1]), min_size=1, max_size=3), model_name=words())


def _halueval(i: int):
    return _fixed(ID=st.just(str(i)), user_query=words(), chatgpt_response=words(0),
                  hallucination=st.sampled_from(["yes", "no"]), hallucination_spans=st.lists(words(), max_size=2))


def _truthfulqa(i: int):
    return st.tuples(words(), words(0), st.sampled_from([" yes", " no"])).map(
        lambda t: {"prompt": f"Q: {t[0]}\nA: {t[1]}\nTrue:", "completion": t[2]})


def _moderation(i: int):
    flags = st.sampled_from([0, 1])
    return _fixed(prompt=words(0), S=flags, H=flags, V=flags)


TEXT, RESP, SKIP = "text", "response", "text_skip"
SOURCES: dict[str, Source] = {s.adapter: s for s in [
    Source("llmbar", "fz-llmbar", "list", _llmbar, (
        Field(("input",), TEXT), Field(("output_1",), RESP), Field(("output_2",), RESP),
        Field(("label",), "label", (1, 2, "1", "2")))),
    Source("pandalm", "fz-pandalm", "list", _pandalm, (
        Field(("idx",), "id"), Field(("instruction",), SKIP), Field(("input",), RESP),
        Field(("response1",), RESP), Field(("response2",), RESP),
        Field(("cmp_key",), "optional"), Field(("motivation_app",), "optional"),
        *(Field((f"annotator{k}",), "label", (0, 1, 2, "0", "1", "2")) for k in (1, 2, 3)))),
    Source("hh-rlhf", "fz-hh-rlhf", "lines", _hh, (
        Field(("chosen",), "wrapped"), Field(("rejected",), "wrapped")), suffix=".jsonl"),
    Source("prometheus-hhh", "fz-prometheus", "list", _prometheus, (
        Field(("source",), "required"), Field(("chosen_instruction",), "wrapped"),
        Field(("rejected_instruction",), "wrapped"))),
    Source("bartscore-wmt", "fz-wmt", "keyed", _wmt, (
        Field(("src",), SKIP), Field(("ref",), "required"), Field(("better",), "object"),
        Field(("worse",), "object"), Field(("better", "sys"), RESP), Field(("worse", "sys"), RESP),
        Field(("better", "sys_name"), "required"), Field(("worse", "sys_name"), "required")),
        options={"lp": "kk-en"}),
    Source("bartscore", "fz-summeval", "keyed", _summeval, (
        Field(("src",), SKIP), Field(("ref_summ",), "optional"), Field(("ref_summs",), "optional"),
        Field(("sys_summs",), "object"), Field(("sys_summs", "s1"), "object", missing=BENIGN),
        Field(("sys_summs", "s1", "sys_summ"), RESP), Field(("sys_summs", "s2", "sys_summ"), RESP),
        Field(("sys_summs", "s1", "scores"), "object"),
        Field(("sys_summs", "s1", "scores", "coherence"), "score", scale=(1.0, 5.0)),
        Field(("sys_summs", "s2", "scores", "coherence"), "score", scale=(1.0, 5.0)),
        Field(("sys_summs", "s1", "scores", "fluency"), "optional")),
        options={"corpus": "summeval", "criterion": "coherence"},
        rows=lambda recs: sum(len(r["sys_summs"]) for r in recs)),
    Source("unieval", "fz-unieval", "list", _unieval, (
        Field(("doc_id",), "id"), Field(("source",), SKIP), Field(("context",), "optional"),
        Field(("system_output",), RESP), Field(("reference",), "optional"), Field(("system_id",), "optional"),
        Field(("scores",), "object"), Field(("scores", "engagingness"), "score", scale=(1.0, 3.0))),
        options={"subset": "topical-chat", "criterion": "engagingness"}),
    Source("codegen-conala", "fz-conala", "list", _conala, (
        Field(("intent",), TEXT), *(Field((s,), "code") for s in CONALA[:3]),
        *(Field((f"grade-{s}",), "grades", scale=(0.0, 4.0)) for s in CONALA[:3])),
        rows=lambda recs: len(recs) * len(CONALA)),
    Source("summedits", "fz-summedits", "list", _summedits, (
        Field(("id",), "id"), Field(("doc",), TEXT), Field(("summary",), RESP), Field(("label",), "label", (0, 1)),
        Field(("split",), "optional"), Field(("edit_types",), "optional"), Field(("original_summary",), "optional")),
        options={"domain": "news"}),
    Source("summac", "fz-summac", "list", _summac, (
        Field(("document",), TEXT), Field(("claim",), RESP), Field(("label",), "label", (0, 1)),
        Field(("annotations",), "labels", (0, 1)), Field(("model_name",), "optional"))),
    Source("halueval", "fz-halueval", "lines", _halueval, (
        Field(("ID",), "required"), Field(("user_query",), TEXT), Field(("chatgpt_response",), RESP),
        Field(("hallucination",), "label", ("yes", "no")), Field(("hallucination_spans",), "optional")),
        suffix=".json"),
    Source("truthfulqa", "fz-truthfulqa", "lines", _truthfulqa, (
        Field(("prompt",), "wrapped"), Field(("completion",), "label", (" yes", " no"))),
        options={"aspect": "truth"}, suffix=".jsonl"),
    Source("moderation", "fz-moderation", "lines", _moderation, (
        Field(("prompt",), RESP), Field(("S",), "label", (0, 1), missing=EITHER, none=EITHER,
                                        skip_on=("delete", "null")),
        Field(("H",), "optional")), options={"category": "S"}, suffix=".jsonl"),
]}
"""Every JSON-based source adapter; ``wmt-mqm`` (TSV), ``hanna`` (a folder of CSVs) and ``generic`` have
their own models below and in test_fuzz_generic.py."""

CONALA_PUBLISHED = Source(
    "codegen-conala", "fz-conala", "list", _conala, (
        Field(("intent",), "wrapped"), *(Field((s,), "code") for s in CONALA[3:]),
        *(Field((f"grade-{s}",), "grades", scale=(0.0, 4.0)) for s in CONALA[3:])),
    options={"aggregated": "published.json"}, rows=lambda recs: len(recs) * len(CONALA),
    aux=lambda recs: {"published.json": _json([{"intent": r["intent"], "grade-codex": 2.5} for r in recs])})
"""With the published (aggregated) grades beside it: each record's intent must be the same there."""

SUMMAC_LIKERT = Source("summac", "fz-summac-likert", "list", lambda i: _fixed(
    document=words(), claim=words(0), label=st.sampled_from([0, 1]),
    annotations=st.lists(st.integers(1, 5), min_size=1, max_size=3)), (
    Field(("document",), TEXT), Field(("label",), "label", (0, 1)),
    Field(("annotations",), "labels", (1, 2, 3, 4, 5))), options={"likert_annotations": True})


# ----------------------------------------------------------------------------- cases


@dataclass
class Case:
    """One generated input: its files (name → bytes), what a correct registry answers, and the rows a
    valid one registers."""

    files: dict[str, bytes]
    expect: str
    located: bool
    what: str
    rows: int | None = None
    folder: bool = False
    names_file: bool = True
    """Whether the error must name the file (not for a broken option, which it names instead)."""

    def __repr__(self) -> str:
        files = {k: (v[:300] + b"..." + v[-100:] if len(v) > 400 else v) + b" (%d bytes)" % len(v)
                 for k, v in self.files.items()}
        return f"Case({self.expect}, located={self.located}, rows={self.rows}, {self.what!r}, files={files})"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # how Hypothesis prints a failing example
        p.text(repr(self))


def _keyed(recs: list[Any]) -> dict[str, Any]:
    return {f"k{i}": r for i, r in enumerate(recs)}


def serialize(layout: str, recs: list[Any], *, ascii_only: bool, indent: int | None = None) -> bytes:
    if layout == "lines":
        return "".join(dumps(r, ascii_only=ascii_only) + "\n" for r in recs).encode("utf-8")
    doc = _keyed(recs) if layout == "keyed" else recs
    return dumps(doc, ascii_only=ascii_only, indent=indent).encode("utf-8")


TOP_LEVEL = [None, 0, "text", [], {}, [[]], {"a": 1}, True]
"""Whole documents that hold no records."""


@st.composite
def source_cases(draw, src: Source) -> Case:
    n = draw(st.integers(*src.n))
    records = [draw(src.record(i)) for i in range(n)]
    mode = draw(st.sampled_from(MODES))
    chs = draw(changes(records, src.fields, mode=mode))
    recs, expect, kept = apply(records, chs)
    located = located_changes(kept)
    what = f"{mode}: " + "; ".join(ch.describe() for ch in kept)
    if mode != "valid" and draw(st.integers(0, 19)) == 0:  # a document of no records
        top = draw(st.sampled_from(TOP_LEVEL))
        data = dumps(top).encode() if src.layout != "lines" else (dumps(top) + "\n").encode()
        expect, located, what = FATAL, False, f"top-level {top!r}"
    else:
        data = serialize(src.layout, recs, ascii_only=draw(st.booleans()), indent=draw(st.sampled_from([None, 1])))
    name = "data" + src.suffix
    if draw(st.integers(0, 2)) == 0:
        kind, params = draw(damage(json_document=src.layout != "lines", benign=mode == "valid"))
        data, dexpect, gz = apply_damage(data, kind, params, json_document=src.layout != "lines")
        expect = damaged(expect, dexpect, kind)
        located = located and dexpect == BENIGN
        what += f"; bytes: {kind} {params.get('at', '')}"
        if gz:
            name += ".gz"
    files = {name: data, **(src.aux(records) if src.aux else {})}
    return Case(files, expect, located, what, rows=src.rows(recs) if expect == BENIGN else None)


# ----------------------------------------------------------------------------- the property


def check_registered(fz: Fuzz, registration: Any, rows: int | None) -> None:
    """An accepted input registered what it holds: one new version (or the same content's), whose stored
    rows load, and every row of a valid file."""
    v = registration.version
    table = fz.reg.load_table(v.ref)
    assert table.num_rows == v.row_count > 0
    if rows is not None:
        assert v.row_count == rows, f"{v.ref}: registered {v.row_count} rows of {rows}"
    assert registration.created == (v.ref not in fz.versions), f"{v.ref}: created {registration.created}"
    fz.versions.add(v.ref)


def register_case(fz: Fuzz, target: str, dataset: str, adapter: str, case: Case, options: dict[str, Any]) -> None:
    folder = fz.folder()
    for name, data in case.files.items():
        (folder / name).write_bytes(data)
    path = folder if case.folder else folder / next(iter(case.files))
    named = [path] + [folder / name for name in case.files]  # the input, or another file it reads
    result = fz.attempt(target, lambda: fz.reg.register_dataset(dataset, source=adapter, path=path, options=options),
                        expect=case.expect, files=named if case.names_file else None, located=case.located,
                        what=case.what)
    if result is not None:
        check_registered(fz, result, case.rows)


def tiers(name: str, strategy: st.SearchStrategy, check: Callable[..., None], fast: int, slow: int,
          examples: tuple[Any, ...] = ()) -> tuple[Any, Any]:
    """Two tests of one property ``check(fuzz, case)`` over ``strategy``: the fast tier (``fast``
    examples) and the slow tier (``slow`` examples, marked slow), with the regression ``examples``."""
    tests = []
    for n, suffix in ((fast, "_fast"), (slow, "")):
        def test(fuzz, case):
            check(fuzz, case)

        test.__name__ = test.__qualname__ = f"test_{name}{suffix}"
        for ex in examples:
            test = example(case=ex)(test)
        test = fuzz_settings(n)(given(case=strategy)(test))
        tests.append(test if suffix else pytest.mark.slow(test))
    return tests[0], tests[1]


def _property(src: Source, fast: int, slow: int, *examples: Case):
    def check(fuzz, case):
        register_case(fuzz, f"sources/{src.adapter}", src.dataset, src.adapter, case, src.options)

    return tiers(src.adapter.replace("-", "_"), source_cases(src), check, fast, slow, examples)


# ----------------------------------------------------------------------------- regressions
# Inputs the fuzzer found that ended in a traceback or were wrongly accepted or refused (each fixed).


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def regression(name: str, data: bytes, expect: str, what: str, rows: int | None = None, **kw: Any) -> Case:
    return Case({name: data}, expect, expect == FATAL and kw.pop("located", True), f"regression: {what}", rows=rows,
                **kw)


PANDALM_ROW = {"idx": 0, "motivation_app": "m", "cmp_key": "k", "instruction": "q", "input": "", "response1": "a",
               "response2": "b", "annotator1": 1, "annotator2": 1, "annotator3": 2}
REGRESSIONS: dict[str, list[Case]] = {
    "pandalm": [
        regression("data.json", _json([{**PANDALM_ROW, "annotator3": [1, 2]}]), FATAL,
                   "a vote that is a list (TypeError: unhashable type)"),
        regression("data.json", _json([{**PANDALM_ROW, "idx": "  \t"}, {**PANDALM_ROW, "idx": 1}]), FATAL,
                   "a blank idx was registered as an example id"),
    ],
    "bartscore": [
        regression("data.json", _json({"k0": {"src": "s", "ref_summs": 5, "sys_summs": {
            "s1": {"sys_summ": "x", "scores": {"coherence": 3}}}}}), FATAL,
            "ref_summs that is not a list (TypeError: 'int' object is not iterable)"),
    ],
    "unieval": [
        regression("data.json", _json([{"doc_id": "d0", "source": "s", "system_output": "o",
                                        "scores": {"engagingness": 2}},
                                       {"doc_id": " ", "source": "t", "system_output": "o",
                                        "scores": {"engagingness": 2}}]), FATAL, "a blank doc_id was an example id"),
        regression("data.json", _json([{"doc_id": "d0", "source": {"t": 1}, "system_output": "o",
                                        "scores": {"engagingness": 2}}]), FATAL,
                   "a source that is an object skipped the record (the file holds no examples: no row named)"),
        regression("data.json", _json([{"source": "s", "system_output": "o", "scores": {"engagingness": 2}},
                                       {"doc_id": "d1", "source": "t", "system_output": "o",
                                        "scores": {"engagingness": 2}}]), FATAL,
                   "record 0 without doc_id switched the file to hashed ids, dropping record 1's doc_id"),
    ],
    "summedits": [
        regression("data.json", _json([{"id": " ", "doc": "d", "summary": "s", "label": 0}]), FATAL,
                   "a blank id was an example id"),
    ],
    "summac": [
        regression("data.json", _json([{"document": "d", "claim": "c", "label": 0, "annotations": [0, 1, 1]}]),
                   BENIGN, "an annotator label outside the majority labels was refused (labels from the data)",
                   rows=1),
    ],
    "summac-likert": [
        regression("data.json", _json([{"document": "d", "claim": "c", "label": 1, "annotations": [True]}]), FATAL,
                   "the annotation true was read as the score 1"),
        regression("data.json", _json([{"document": "d", "claim": "c", "label": 0, "annotations": [5]}]), BENIGN,
                   "an annotator label outside the majority labels was refused (labels from the data)", rows=1),
    ],
}


FAST, SLOW = 8, 400
test_llmbar_fast, test_llmbar = _property(SOURCES["llmbar"], FAST, SLOW)
test_pandalm_fast, test_pandalm = _property(SOURCES["pandalm"], FAST, SLOW, *REGRESSIONS["pandalm"])
test_hh_rlhf_fast, test_hh_rlhf = _property(SOURCES["hh-rlhf"], FAST, SLOW)
test_prometheus_fast, test_prometheus = _property(SOURCES["prometheus-hhh"], FAST, SLOW)
test_bartscore_wmt_fast, test_bartscore_wmt = _property(SOURCES["bartscore-wmt"], FAST, SLOW)
test_bartscore_fast, test_bartscore = _property(SOURCES["bartscore"], FAST, SLOW, *REGRESSIONS["bartscore"])
test_unieval_fast, test_unieval = _property(SOURCES["unieval"], FAST, SLOW, *REGRESSIONS["unieval"])
test_conala_fast, test_conala = _property(SOURCES["codegen-conala"], FAST, SLOW)
test_summedits_fast, test_summedits = _property(SOURCES["summedits"], FAST, SLOW, *REGRESSIONS["summedits"])
test_conala_published_fast, test_conala_published = _property(
    CONALA_PUBLISHED, 4, 200, Case({"data.json": _json([5]), "published.json": _json([{"intent": "i"}])}, FATAL, True,
                                   "regression: a human-grades record that is not an object beside published grades "
                                   "(AttributeError)"))
test_summac_fast, test_summac = _property(SOURCES["summac"], FAST, SLOW, *REGRESSIONS["summac"])
test_summac_likert_fast, test_summac_likert = _property(SUMMAC_LIKERT, 4, 200, *REGRESSIONS["summac-likert"])
test_halueval_fast, test_halueval = _property(SOURCES["halueval"], FAST, SLOW)
test_truthfulqa_fast, test_truthfulqa = _property(SOURCES["truthfulqa"], FAST, SLOW)
test_moderation_fast, test_moderation = _property(SOURCES["moderation"], FAST, SLOW)


# ----------------------------------------------------------------------------- WMT MQM (TSV)

MQM_COLUMNS = ("system", "doc", "doc_id", "seg_id", "rater", "source", "target", "category", "severity")


def _tsv_text(min_size: int = 1) -> st.SearchStrategy[str]:
    return words(min_size)


def _mqm(i: int):
    return _fixed(system=st.sampled_from(["sysA", "sysB"]), doc=words(), doc_id=st.just(str(i)), seg_id=st.just(str(i)),
                  rater=st.sampled_from(["r1", "r2"]), source=words(), target=words(),
                  category=st.sampled_from(["Accuracy/Mistranslation", "Fluency/Punctuation", "No-error",
                                            "Non-translation!"]),
                  severity=st.sampled_from(["Minor", "major", "Neutral", "No-error", "MINOR"]))


MQM_FIELDS = (Field(("severity",), "label", ("Minor", "Major", "Neutral", "No-error"),
                    normalize=lambda v: str(v).strip().lower()),
              Field(("source",), TEXT), Field(("target",), TEXT), Field(("system",), "required", missing=EITHER),
              Field(("seg_id",), "required", missing=EITHER), Field(("rater",), "required", missing=EITHER),
              Field(("doc",), "required", missing=EITHER))
"""(A missing field of a TSV row is an empty cell.)"""


def _tsv_cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else dumps(value)
    return re.sub("[\ud800-\udfff]", "\ufffd", text)


@st.composite
def mqm_cases(draw) -> Case:
    """MQM rows (one error annotation each, every row its own segment) as an unquoted TSV; a tab or a line
    break inside a text, a missing column, an unknown severity or more than 25 points of penalty in one
    segment must be refused."""
    n = draw(st.integers(1, 5))
    records = [draw(_mqm(i)) for i in range(n)]
    mode = draw(st.sampled_from(MODES))
    chs = draw(changes(records, MQM_FIELDS, mode=mode))
    recs, expect, kept = apply(records, chs)
    what = f"{mode}: " + "; ".join(ch.describe() for ch in kept)
    header = list(MQM_COLUMNS)
    extra: list[str] = []
    exps = [expect]
    if any(has_deep(ch.value) for ch in kept):  # in a TSV it is text (long: refused as a source or target)
        exps = [combine(*(EITHER if has_deep(ch.value) and ch.field.kind == "required" else ch.expect
                          for ch in kept))]
    for ch in kept:  # what a TSV does to the changed values (text, unquoted)
        if ch.op == "record":
            exps.append(FATAL)  # a row of one field
        if ch.op == "set" and isinstance(ch.value, str) and ch.field.kind != "label" and (
                "\t" in ch.value or "\n" in ch.value or "\r" in ch.value):
            exps.append(FATAL if "\t" in ch.value else EITHER)  # a field too many; a line cut in two
        if ch.op == "set" and ch.field.kind == "required" and ch.value in (None, "", " ", "  \t", "\n", "\u3000"):
            exps.append(EITHER)
    if draw(st.integers(0, 9)) == 0:  # a column is missing from the header
        gone = draw(st.sampled_from(header))
        header.remove(gone)
        exps.append(FATAL)
        what += f"; no column {gone}"
    for r in recs:
        for k in r if isinstance(r, dict) else ():
            if k not in header and k not in extra and k not in MQM_COLUMNS:
                extra.append(k)
    names = header + [k for k in extra if "\t" not in k and "\n" not in k and "\r" not in k and k]
    lines = ["\t".join(names)] + ["\t".join(_tsv_cell(r.get(c)) for c in names) if isinstance(r, dict)
                                   else _tsv_cell(r) or "x" for r in recs]  # a record that is not one: one field
    if draw(st.integers(0, 19)) == 0:  # five major errors of one rater in one segment: over 25 points
        lines += ["\t".join(["sysA", "d", "9", "99", "r1", "s", "t", "Non-translation!", "Major"])] * 2
        exps.append(FATAL)
        what += "; penalty over 25"
    data = re.sub("[\ud800-\udfff]", "\ufffd", "\n".join(lines) + "\n").encode("utf-8")
    expect = combine(*exps)
    if draw(st.integers(0, 2)) == 0:
        kind, params = draw(damage(json_document=False, benign=mode == "valid"))
        data, dexpect, gz = apply_damage(data, kind, params, json_document=False)
        expect = damaged(expect, dexpect, kind)
        what += f"; bytes: {kind} {params.get('at', '')}"
        name = "mqm.tsv.gz" if gz else "mqm.tsv"
    else:
        name = "mqm.tsv"
    rows = len({(r["system"], r["seg_id"]) for r in recs}) if expect == BENIGN else None
    return Case({name: data}, expect, False, what, rows=rows)


def _check_mqm(fuzz, case):
    register_case(fuzz, "sources/wmt-mqm", "fz-mqm", "wmt-mqm", case, {})


test_mqm_fast, test_mqm = tiers("mqm", mqm_cases(), _check_mqm, FAST, SLOW)


# ----------------------------------------------------------------------------- HANNA (a folder of two CSVs)

HANNA_RATERS = ("Human 1 RE", "Human 2 RE", "Human 3 RE")


@st.composite
def hanna_cases(draw) -> Case:
    """A HANNA folder: stories (Prompt, Human) and ratings (a row per system; each cell a JSON list with a
    value per story). A cell that is not such a list (wrong length, a score outside 1-5, NaN, text, deep
    nesting), a mean that is not the raters' mean, a missing column or file, a non-number LLM rating, and
    damaged bytes must be refused."""
    import csv as csv_
    import io as io_

    n = draw(st.integers(1, 4))
    prompts = [draw(words()) + f" {i}" for i in range(n)]
    stories = [draw(words()) for _ in range(n)]
    raters = [[draw(st.integers(1, 5)) for _ in range(n)] for _ in HANNA_RATERS]
    ratings = {"Model": "Human", "Relevance": [sum(r[i] for r in raters) / 3 for i in range(n)],
               **{c: r for c, r in zip(HANNA_RATERS, raters)},
               "Beluga RE 1": [float(draw(st.integers(1, 5))) for _ in range(n)]}
    other = {**ratings, "Model": "GPT-2"}  # a system without story texts: skipped
    exps, what = [], []
    mode = draw(st.sampled_from(["fatal"] * 8 + ["valid"]))
    if mode == "fatal":
        target = draw(st.sampled_from(["Relevance", *HANNA_RATERS, "Beluga RE 1"]))
        i = draw(st.integers(0, n - 1))
        bad = draw(st.sampled_from(["short", "long", "outside", "nan", "text", "deep", "object", "null", "mean"]))
        cell = list(ratings[target])
        if bad == "short":
            cell = cell[:-1]
        elif bad == "long":
            cell = cell + [3]
        elif bad == "outside":
            cell[i] = draw(st.sampled_from([0, 6, -1, 5.5, 1e309]))
        elif bad == "nan":
            cell[i] = float("nan")
        elif bad == "text":
            cell[i] = draw(st.sampled_from(["3", "three", "", None, True]))
        elif bad == "deep":
            cell = Deep()
        elif bad == "object":
            cell = {"a": 1}
        elif bad == "null":
            cell = None
        elif bad == "mean":
            target = "Relevance"
            cell = list(ratings["Relevance"])
            cell[i] = cell[i] + 0.5 if cell[i] <= 4.5 else cell[i] - 0.5
        ratings[target] = cell
        fatal = not (target == "Beluga RE 1" and bad in ("outside", "nan") or
                     target == "Beluga RE 1" and bad == "text" and cell[i] in ("3", True))
        exps.append(FATAL if fatal else EITHER)
        what.append(f"{target}: {bad}")

    def write_csv(rows: list[dict[str, Any]]) -> bytes:
        out = io_.StringIO()
        names = list(dict.fromkeys(k for r in rows for k in r))
        w = csv_.writer(out, lineterminator="\n")
        w.writerow(names)
        for r in rows:
            w.writerow([v if isinstance(v, str) else dumps(v) for v in (r.get(c, "") for c in names)])
        return out.getvalue().encode()

    stories_rows = [{"Prompt": p, "Human": s} for p, s in zip(prompts, stories)]
    files = {"hanna_metric_scores_llm.csv": write_csv([ratings, other]),
             "hanna_llm_stories.csv": write_csv(stories_rows)}
    if draw(st.integers(0, 9)) == 0:
        gone = draw(st.sampled_from(sorted(files)))
        del files[gone]
        exps.append(FATAL)
        what.append(f"no {gone}")
    elif draw(st.integers(0, 3)) == 0:
        victim = draw(st.sampled_from(sorted(files)))
        kind, params = draw(damage(json_document=False, benign=mode == "valid"))
        files[victim], dexpect, gz = apply_damage(files[victim], kind, params, json_document=False)
        if gz:  # the adapter reads the two files by name: a .gz is not them
            files[victim + ".gz"] = files.pop(victim)
            dexpect = FATAL
        exps.append(dexpect)
        what.append(f"{victim} bytes: {kind} {params.get('at', '')}")
    expect = combine(*exps) if exps else BENIGN
    return Case(files, expect, False, "; ".join(what) or "valid", rows=n if expect == BENIGN else None, folder=True)


def _check_hanna(fuzz, case):
    register_case(fuzz, "sources/hanna", "fz-hanna", "hanna", case, {"criterion": "Relevance"})


HANNA_STORIES = b"Prompt,Human\nA prompt,A story\n"
HANNA_RATINGS = 'Model,Relevance,Human 1 RE,Human 2 RE,Human 3 RE,Beluga RE 1\nHuman,"[2.0]","[1]","[2]","[3]","{}"\n'
HANNA_REGRESSIONS = [
    Case({"hanna_metric_scores_llm.csv": HANNA_RATINGS.format("[null]").encode(),
          "hanna_llm_stories.csv": HANNA_STORIES}, FATAL, False,
         "regression: an LLM rating that is null (TypeError in float())", folder=True),
    Case({"hanna_metric_scores_llm.csv": HANNA_RATINGS.format("[" * 5000 + "]" * 5000).encode(),
          "hanna_llm_stories.csv": HANNA_STORIES}, FATAL, False,
         "regression: a rating cell nested 5,000 deep (RecursionError)", folder=True),
]
test_hanna_fast, test_hanna = tiers("hanna", hanna_cases(), _check_hanna, FAST, 300, tuple(HANNA_REGRESSIONS))
