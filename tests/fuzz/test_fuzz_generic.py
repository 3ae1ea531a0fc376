"""Fuzzed inputs of the generic column mapper (``--source generic --map ...``): generated tables of every
task type in every format it reads — a JSON list, a JSON object keyed by id, JSON lines (its columnar and
records readers), CSV, TSV, Parquet, and gzip — with the record changes of :mod:`tests.fuzz.records`
(labels outside the label map, out-of-scale, NaN and infinite scores, wrong types, missing and extra
fields, huge texts, NUL bytes, lone surrogates, deep nesting, ragged rows ...), damaged bytes, and broken
options (a mapping to no column or to no field, a bad label map, scale or flag). Each input is refused
clearly with nothing changed, or registered with every row it holds (:mod:`tests.fuzz.oracle`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import strategies as st

from tests.fuzz.oracle import Fuzz
from tests.fuzz.records import MODES, VALIDATION, Field, apply, changes, has_deep
from tests.fuzz.records import located as located_changes
from tests.fuzz.strategies import (BENIGN, EITHER, FATAL, Deep, apply_damage, combine, damage, damaged, dumps,
                                   words)
from tests.fuzz.test_fuzz_sources import Case, register_case, tiers

# ----------------------------------------------------------------------------- tables


def _label_key(value: Any) -> str:
    """How the generic mapper reads a label (its ``_label_key``): ``1.0`` is ``"1"``, ``True`` is ``"true"``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _pairwise(value: Any) -> Any:
    return _label_key(value).strip().lower()


LABEL_MAP = {"1": "A", "2": "B", "0": "tie"}
CLASSES = ("pos", "neg", "neu")


@dataclass(frozen=True)
class Table:
    """A generic table: its task type, its records, the fields the mapper reads and the options."""

    task_type: str
    record: Any  # (i) -> strategy of a valid record
    fields: tuple[Field, ...]
    options: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Table({self.task_type}, {self.options})"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


def _pairwise_record(labels: list[Any], votes: bool):
    def record(i: int):
        rec = {"id": st.just(f"r{i}"), "q": words(), "a": words(0), "b": words(0), "w": st.sampled_from(labels),
               "ref": st.one_of(st.none(), words()), "cat": words(), "meta": st.dictionaries(words(1, 4), words())}
        if votes:
            rec["votes"] = st.lists(st.sampled_from(labels), min_size=1, max_size=3)
        return st.fixed_dictionaries(rec)
    return record


def _pointwise_record(i: int):
    return st.fixed_dictionaries({"id": st.just(f"r{i}"), "q": words(), "r": words(0), "s": st.floats(1, 5),
                                  "crit": words(), "sys": words()})


def _classification_record(i: int):
    return st.fixed_dictionaries({"id": st.just(f"r{i}"), "q": words(), "r": words(0),
                                  "y": st.sampled_from(CLASSES)})


COMMON = {"example_id": "id", "instruction": "q"}
TABLES = [
    Table("pairwise", _pairwise_record(["A", "B", "tie", "a", " b ", "TIE"], votes=True), (
        Field(("id",), "id"), Field(("q",), "text"), Field(("a",), "response"), Field(("b",), "response"),
        Field(("w",), "label", ("A", "B", "tie"), normalize=_pairwise), Field(("ref",), "optional"),
        Field(("cat",), "optional"), Field(("meta",), "optional"),
        Field(("votes",), "votes", ("A", "B", "tie"), normalize=_pairwise, missing=BENIGN)),
        {"mapping": {**COMMON, "response_a": "a", "response_b": "b", "label": "w", "reference": "ref",
                     "category": "cat", "metadata": "meta", "annotator_labels": "votes"}}),
    Table("pairwise", _pairwise_record([1, 2, 0, "1"], votes=False), (
        Field(("id",), "id"), Field(("q",), "text"), Field(("a",), "response"), Field(("b",), "response"),
        Field(("w",), "label", ("1", "2", "0", 1, 2, 0), normalize=_label_key)),
        {"mapping": {**COMMON, "response_a": "a", "response_b": "b", "label": "w"}, "label_map": LABEL_MAP}),
    Table("pointwise", _pointwise_record, (
        Field(("id",), "id"), Field(("q",), "text"), Field(("r",), "response"),
        Field(("s",), "score", scale=(1.0, 5.0)), Field(("crit",), "optional"), Field(("sys",), "optional")),
        {"mapping": {**COMMON, "response": "r", "score": "s", "criterion": "crit", "system_id": "sys"},
         "scale": "1,5"}),
    Table("classification", _classification_record, (
        Field(("id",), "id"), Field(("q",), "text"), Field(("r",), "response"),
        Field(("y",), "label", CLASSES, normalize=_label_key)),
        {"mapping": {**COMMON, "response": "r", "label": "y"}, "labels": list(CLASSES)}),
]
FORMATS = ["json", "keyed", "jsonl", "jsonl", "csv", "tsv", "parquet"]
"""JSON lines twice: the columnar reader reads files whose columns keep one JSON type, the records reader
the others."""

# ----------------------------------------------------------------------------- writing a table


def _no_surrogates(value: Any) -> Any:
    """UTF-8 files and Parquet cannot hold a lone surrogate: it is written as U+FFFD (what reading gives)."""
    if isinstance(value, str):
        return re.sub("[\ud800-\udfff]", "\ufffd", value)
    if isinstance(value, dict):
        return {_no_surrogates(k): _no_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_surrogates(v) for v in value]
    return value


def _cell(value: Any) -> str:
    """A CSV cell as a person writes one: text as it is, lists and objects as JSON, null as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (Deep, list, dict)):
        return dumps(value)
    return repr(value) if isinstance(value, float) else str(value)


def _columns(recs: list[Any]) -> list[str]:
    return list(dict.fromkeys(k for r in recs if isinstance(r, dict) for k in r))


def write_table(fmt: str, recs: list[Any], *, ascii_only: bool) -> tuple[bytes, str]:
    """(bytes, suffix) of ``recs`` written as ``fmt``; a record that is not an object is a row of one cell."""
    if fmt == "json":
        return dumps(recs, ascii_only=ascii_only).encode(), ".json"
    if fmt == "keyed":  # an object keyed by id: the key is the example id when example_id is not mapped
        return dumps({f"k{i}": r for i, r in enumerate(recs)}, ascii_only=ascii_only).encode(), ".json"
    if fmt == "jsonl":
        return "".join(dumps(r, ascii_only=ascii_only) + "\n" for r in recs).encode(), ".jsonl"
    recs = _no_surrogates(recs)
    names = _columns(recs)
    if fmt in ("csv", "tsv"):
        out = io.StringIO()
        # rows end with CRLF so that the writer quotes a cell holding a bare CR too (it quotes the characters
        # of its line terminator): with "\n" alone a text "x\r" went out unquoted, a line break to any reader
        w = csv.writer(out, delimiter="," if fmt == "csv" else "\t", lineterminator="\r\n")
        w.writerow(names)
        for r in recs:
            w.writerow([_cell(r.get(c)) for c in names] if isinstance(r, dict) else [_cell(r) or "x"])
        return out.getvalue().encode("utf-8", "surrogatepass"), "." + fmt
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [r if isinstance(r, dict) else {} for r in recs]
    columns = {}
    for c in names:
        values = [r.get(c) for r in rows]
        try:
            columns[c] = pa.array(values)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):  # mixed types: as text
            columns[c] = pa.array([None if v is None else _cell(v) for v in values], pa.string())
    table = pa.table(columns) if columns else pa.table({"x": pa.nulls(len(rows))})
    out = io.BytesIO()
    try:
        pq.write_table(table, out)
    except pa.ArrowException:  # e.g. an empty object (a struct without fields): nested columns as text
        out = io.BytesIO()
        pq.write_table(pa.table({c: columns[c] if not pa.types.is_nested(columns[c].type) else
                                 pa.array([None if v is None else _cell(v) for v in (r.get(c) for r in rows)],
                                          pa.string()) for c in columns}), out)
    return out.getvalue(), ".parquet"


# ----------------------------------------------------------------------------- options


OPTION_BREAKS: list[tuple[str, Any]] = [
    ("map to no column", lambda o: {**o, "mapping": {**o["mapping"], "instruction": "no_such_column"}}),
    ("map no field", lambda o: {**o, "mapping": {**o["mapping"], "verdict": "w"}}),
    ("map a blank field", lambda o: {**o, "mapping": {**o["mapping"], " ": "q"}}),
    ("map to a path into nothing", lambda o: {**o, "mapping": {**o["mapping"], "instruction": "q.0.x"}}),
    ("map to @key of a list", lambda o: {**o, "mapping": {**o["mapping"], "instruction": "@key"}}),
    ("scale -inf,inf", lambda o: {**o, "scale": "-inf,inf"}),
    ("scale 5,1", lambda o: {**o, "scale": "5,1"}),
    ("scale nan", lambda o: {**o, "scale": (float("nan"), 5)}),
    ("scale text", lambda o: {**o, "scale": "a,b"}),
    ("skip_empty maybe", lambda o: {**o, "skip_empty": "maybe"}),
    ("id from row and a mapped id", lambda o: {**o, "id_from_row": True}),
    ("label map to no label", lambda o: {**o, "label_map": {"1": "banana"}}),
    ("mapping as a list of bad pairs", lambda o: {**o, "mapping": ["instruction"]}),
]
"""Option changes that must be refused (each names the option or field)."""


# ----------------------------------------------------------------------------- cases


@st.composite
def generic_cases(draw) -> tuple[Case, Table, dict[str, Any]]:
    table = draw(st.sampled_from(TABLES))
    fmt = draw(st.sampled_from(FORMATS))
    n = draw(st.integers(1, 5))
    records = [draw(table.record(i)) for i in range(n)]
    mode = draw(st.sampled_from(MODES))
    cells = fmt in ("csv", "tsv", "parquet")  # there a value nested deeply is a long text: the validation's
    chs = draw(changes(records, table.fields, mode=mode, validation=VALIDATION + ("deep",) if cells else VALIDATION))
    recs, _, kept = apply(records, chs)
    options = dict(table.options)
    if fmt == "keyed" and draw(st.booleans()):  # the object's keys are the ids
        options["mapping"] = {k: v for k, v in options["mapping"].items() if k != "example_id"}
    kept = [replace(ch, expect=cell_expect(ch, fmt, "example_id" in options["mapping"])) for ch in kept]
    expect = combine(*(ch.expect for ch in kept))
    mapped = set(options["mapping"].values())
    if any(f.path[0] in mapped and not any(isinstance(r, dict) and f.path[0] in r for r in recs)
           for f in table.fields if f.kind in ("optional", "votes")):
        expect = FATAL  # a mapped column that no record has: the mapping is wrong (named in the error)
    located = located_changes(kept)
    if (fmt in ("csv", "tsv", "parquet") or fmt == "jsonl" and len(recs) == 1) and \
            any(ch.op == "record" for ch in kept):
        located = False  # a row that is not a record: no header or no rows left; one JSON line is a document
    what = f"{table.task_type} {fmt} {mode}: " + "; ".join(ch.describe() for ch in kept)
    data, suffix = write_table(fmt, recs, ascii_only=draw(st.booleans()))
    if fmt in ("csv", "tsv") and mode != "valid" and b'"' not in data and data.split(b"\n")[0].strip() and \
            draw(st.integers(0, 7)) == 0:
        # ragged: a row with a field too many (no quoted cell: every line is one row)
        lines = data.split(b"\n")
        at = draw(st.integers(1, max(1, len(lines) - 2)))
        lines[at] += (b"," if fmt == "csv" else b"\t") + b"one cell too many"
        data = b"\n".join(lines)
        expect, located = FATAL, True
        what += f"; ragged: line {at + 1} has a field too many"
    document = fmt in ("json", "keyed")
    broken = False
    if draw(st.integers(0, 2)) == 0:
        kind, params = draw(damage(json_document=document, text=fmt != "parquet", benign=mode == "valid"))
        data, dexpect, gz = apply_damage(data, kind, params, json_document=document or fmt == "parquet")
        expect = damaged(expect, dexpect, kind)
        broken = dexpect != BENIGN
        located = located and not broken
        what += f"; bytes: {kind} {params.get('at', '')}"
        suffix += ".gz" if gz else ""
        if gz and fmt == "parquet":  # Parquet is not read through gzip
            expect, located = FATAL, False
    names_file = True
    if mode == "fatal" and draw(st.integers(0, 9)) == 0:
        what_opt, change = draw(st.sampled_from(OPTION_BREAKS))
        if not (what_opt == "map to @key of a list" and fmt == "keyed") and \
                not (what_opt == "id from row and a mapped id" and "example_id" not in options["mapping"]):
            options = change(options)
            what += f"; option: {what_opt}"
            # the option's error (naming it), unless a change in the file is refused first (naming its row)
            located = (located or expect != FATAL) and not broken
            expect, names_file = FATAL, False
    rows = len(recs) if expect == BENIGN else None
    return Case({"data" + suffix: data}, expect, located, what, rows=rows, names_file=names_file), table, options


def cell_expect(ch: Any, fmt: str, ids_mapped: bool) -> str:
    """A change's expectation in ``fmt``: an id column that is not mapped is not read (the keys of an object
    keyed by id are the ids); in CSV and TSV an empty cell is a null; in CSV, TSV and Parquet a value
    nested deeply is only a long text, which an optional field (category, metadata) may hold."""
    f = ch.field
    if f is not None and f.path == ("id",) and not ids_mapped:
        return FATAL if has_deep(ch.value) else BENIGN
    if fmt in ("csv", "tsv") and ch.op == "set" and ch.value == "" and f.kind == "response":
        return FATAL
    if fmt in ("csv", "tsv", "parquet") and has_deep(ch.value) and f is not None and f.kind in ("optional", "votes"):
        return EITHER
    return ch.expect


def check_generic(fz: Fuzz, drawn: tuple[Case, Table, dict[str, Any]]) -> None:
    case, table, options = drawn
    name = f"fz-generic-{table.task_type}"
    folder = fz.folder()
    path = folder / next(iter(case.files))
    path.write_bytes(next(iter(case.files.values())))
    result = fz.attempt("sources/generic", lambda: fz.reg.register_dataset(
        name, source="generic", path=path, task_type=table.task_type, options=options),
        expect=case.expect, files=path if case.names_file else None, located=case.located, what=case.what)
    if result is not None:
        from tests.fuzz.test_fuzz_sources import check_registered

        check_registered(fz, result, case.rows)


_ROW = b'{"id": "r%d", "q": "question %d", "a": "x", "b": "y", "w": "A"}\n'
REGRESSIONS = (
    (Case({"data.jsonl": b"null\n" + _ROW % (1, 1)}, FATAL, True,
          "regression: JSON lines whose first line is null (pyarrow's JSON reader: segmentation fault)"),
     TABLES[0], {"mapping": {"example_id": "id", "instruction": "q", "response_a": "a", "response_b": "b",
                             "label": "w"}}),
    (Case({"data.jsonl": b"".join(_ROW % (i, i) for i in range(40)) + b"null\n" + _ROW % (99, 99)}, FATAL, True,
          "regression: a null line inside JSON lines (a pyarrow block may start with it: segmentation fault)"),
     TABLES[0], {"mapping": {"example_id": "id", "instruction": "q", "response_a": "a", "response_b": "b",
                             "label": "w"}}),
)
REGRESSIONS += (
    (Case({"data.jsonl": _ROW % (1, 1) + b'{"id": "r2", "q": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n" +
           _ROW % (3, 3)}, FATAL, False,
          "regression: a JSON line nested 100,000 deep (pyarrow's JSON reader: segmentation fault; 15 s at 12,000)"),
     TABLES[0], {"mapping": {"example_id": "id", "instruction": "q", "response_a": "a", "response_b": "b",
                             "label": "w"}}),
    (Case({"data.jsonl": b'{"id": ' + b'{"a":' * 6000 + b"1" + b"}" * 6000 + b"}\n" + _ROW % (2, 2)}, FATAL, False,
          "regression: a first JSON line nested 6,000 deep and a path mapped (@key): RecursionError"),
     TABLES[0], {"mapping": {"example_id": "id", "instruction": "@key", "response_a": "a", "response_b": "b",
                             "label": "w"}}),
    (Case({"data.jsonl": _ROW % (1, 1) + _ROW % (2, 2)}, FATAL, True,
          "regression: a --map item without '=' was refused without naming the option", names_file=False),
     TABLES[0], {"mapping": ["instruction"]}),
)
test_generic_fast, test_generic = tiers("generic", generic_cases(), check_generic, 12, 1300, REGRESSIONS)
