"""Records of a source file and the changes made to them, each with what a correct reader answers.

A source is modelled as valid records (a Hypothesis strategy per source, in the test modules) and a
:class:`Field` per value a reader takes from a record, of a *kind* (required text, judged response,
label of a set, score of a scale, id ...). :func:`mutations` draws changes to the records — a field
deleted, set to a hostile, wrong-typed, out-of-set or out-of-scale value, a record replaced by a
non-object, duplicated, or an extra field added — and each change has an expectation
(:data:`~tests.fuzz.strategies.FATAL`: the input must be refused, ``BENIGN``: it stays valid,
``EITHER``: the reader may read it or refuse it, as long as it does so clearly).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st

from tests.fuzz.oracle import MAX_TEXT_CHARS
from tests.fuzz.strategies import (
    containers,
    BENIGN,
    EITHER,
    FATAL,
    Deep,
    bad_numbers,
    combine,
    hostile_texts,
    long_text,
    outside_values,
    words,
    wrong_scalars,
)

Path_ = tuple[Any, ...]


@dataclass(frozen=True)
class Field:
    """A value a reader takes from each record: its path in the record and its kind.

    Kinds: ``text`` (a required non-blank text), ``text_skip`` (the same, but a blank one makes the
    reader skip the record), ``response`` (a judged text: may be empty), ``label`` (one of ``allowed``),
    ``score`` (a number inside ``scale``), ``id`` (unique per record), ``optional`` (read if present),
    ``required`` (must be present, any value), ``wrapped`` (a text in a fixed format), ``object`` (a
    nested object the reader looks into), ``labels`` (a non-empty list of ``allowed`` labels),
    ``grades`` (a non-empty object of scores inside ``scale``), ``code`` (a text or a list of texts)."""

    path: Path_
    kind: str
    allowed: tuple[Any, ...] = ()
    scale: tuple[float, float] | None = None
    normalize: Callable[[Any], Any] | None = None
    """How the reader compares labels (default: as Python compares keys)."""
    missing: str | None = None
    """The expectation when the field is deleted (default: BENIGN for ``optional``, else FATAL)."""
    none: str | None = None
    """The expectation when the field is null (default: that of its kind)."""
    overrides: tuple[tuple[str, str], ...] = ()
    """(menu entry, expectation) pairs that replace the kind's expectation of those values."""
    skip_on: tuple[str, ...] = ()
    """Changes (``delete`` or a menu entry) after which the reader skips the record (and what else is wrong
    in it): by default the blank and null values of a ``text_skip`` field."""

    @property
    def skips(self) -> tuple[str, ...]:
        return self.skip_on or (SKIPS if self.kind == "text_skip" else ())

    @property
    def name(self) -> str:
        return ".".join(map(str, self.path))


@dataclass
class Change:
    """One change to the records (applied by :func:`apply`)."""

    op: str  # delete | set | record | duplicate | extra
    index: int
    field: Field | None = None
    value: Any = None
    expect: str = EITHER
    note: str = ""

    def describe(self) -> str:
        where = f"record {self.index}" + (f" {self.field.name}" if self.field else "")
        shown = repr(self.value)
        return f"{self.op} {where} {shown[:60]}{'…' if len(shown) > 60 else ''} [{self.expect}]{self.note}"


def has_deep(value: Any) -> bool:
    if isinstance(value, Deep):
        return True
    if isinstance(value, dict):
        return any(has_deep(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_deep(v) for v in value)
    return False


def _blank() -> st.SearchStrategy[str]:
    return st.sampled_from(["", " ", "  \t", "\n", "\u3000"])


def _long() -> st.SearchStrategy[str]:
    return st.integers(MAX_TEXT_CHARS + 1, MAX_TEXT_CHARS + 500).map(long_text)


Menu = list[tuple[str, st.SearchStrategy[Any], str]]
"""(what, value strategy, expectation) entries."""


def menu(f: Field) -> Menu:
    """The values a field of ``f``'s kind is set to, each with its expectation."""
    k = f.kind
    deep = ("deep", st.sampled_from([Deep(), Deep(kind="{")]), FATAL)  # refused when the JSON is parsed
    if k in ("text", "text_skip", "response"):
        blank = BENIGN if k == "response" else (FATAL if k == "text" else EITHER)
        return [("hostile text", hostile_texts(), BENIGN), ("blank", _blank(), blank),
                ("null", st.none(), f.none or (EITHER if k == "text_skip" else FATAL)),
                ("wrong type", wrong_scalars().filter(lambda v: v is not None), EITHER),
                ("container", containers(), EITHER), ("huge", _long(), FATAL), deep]
    if k == "label":
        return [("outside", outside_values(f.allowed, f.normalize).filter(lambda v: v is not None or f.none is None),
                 FATAL), ("null", st.none(), f.none or FATAL), ("container", containers(), FATAL),
                ("valid", st.sampled_from(list(f.allowed)), BENIGN), deep]
    if k == "score":
        lo, hi = f.scale  # type: ignore[misc]
        return [("bad number", bad_numbers(f.scale), FATAL),  # type: ignore[arg-type]
                ("valid", st.one_of(st.floats(lo, hi, allow_nan=False), st.sampled_from([lo, hi])), BENIGN)]
    if k == "judge_score":  # an imported score or probability: null / NaN / an empty cell is "no score"
        out = [("not a number", st.sampled_from(["abc", True, False, [], {}, "5 stars", [1]]), FATAL),
               ("infinite", st.sampled_from([float("inf"), float("-inf"), 1e309, "inf"]), FATAL),
               ("nan", st.just(float("nan")), EITHER), ("null", st.none(), BENIGN), ("blank", _blank(), EITHER),
               deep]
        if f.scale is not None:
            lo, hi = f.scale
            out += [("valid", st.floats(lo, hi), BENIGN),
                    ("out of range", st.one_of(st.floats(hi, 1e300, exclude_min=True), st.floats(-1e300, lo,
                                                                                             exclude_max=True)), FATAL)]
        else:
            out += [("valid", st.floats(-1e300, 1e300), BENIGN)]
        return out
    if k == "id":
        return [("hostile", hostile_texts(), EITHER), ("wrong type", wrong_scalars(), EITHER),
                ("container", containers(), EITHER), ("too long", st.integers(300, 400).map(lambda n: "i" * n),
                                                               FATAL), ("blank", _blank(), FATAL), deep]
    if k in ("optional", "required"):
        return [("hostile", hostile_texts(), EITHER), ("wrong type", wrong_scalars(), EITHER),
                ("container", containers(), EITHER), ("blank", _blank(), EITHER), deep]
    if k == "wrapped":
        return [("not the format", hostile_texts(), FATAL), ("wrong type", wrong_scalars(), FATAL),
                ("container", containers(), FATAL), ("blank", _blank(), FATAL), deep]
    if k == "object":
        return [("scalar", st.one_of(wrong_scalars(), hostile_texts()), FATAL), ("list", st.just([]), FATAL),
                ("empty", st.just({}), EITHER), deep]
    if k == "labels":
        inside = list(f.allowed)
        outside = st.lists(st.sampled_from(inside), max_size=2).flatmap(
            lambda xs: outside_values(f.allowed, f.normalize).map(lambda o: [*xs, o]))
        return [("empty", st.just([]), FATAL), ("not a list", st.one_of(wrong_scalars(), hostile_texts()), FATAL),
                ("item outside", outside, FATAL), ("valid", st.lists(st.sampled_from(inside), min_size=1, max_size=4),
                                                   BENIGN), deep]
    if k == "votes":  # the generic mapper's annotator labels: a single value is one vote, [] none
        inside = list(f.allowed)
        outside = st.lists(st.sampled_from(inside), max_size=2).flatmap(
            lambda xs: outside_values(f.allowed, f.normalize).map(lambda o: [*xs, o]))
        return [("empty", st.just([]), EITHER), ("not a list", st.one_of(wrong_scalars(), hostile_texts()), EITHER),
                ("item outside", outside, FATAL), ("valid", st.lists(st.sampled_from(inside), min_size=1, max_size=4),
                                                   BENIGN), deep]
    if k == "grades":
        lo, hi = f.scale  # type: ignore[misc]
        return [("empty", st.just({}), FATAL), ("not an object", st.one_of(wrong_scalars(), st.just([1])), FATAL),
                ("bad grade", bad_numbers(f.scale).map(lambda x: {"g1": x}), FATAL),  # type: ignore[arg-type]
                ("valid", st.dictionaries(words(1, 4), st.integers(int(lo), int(hi)), min_size=1, max_size=3), BENIGN),
                deep]
    if k == "code":
        return [("text", hostile_texts(), BENIGN), ("lines", st.lists(words(), min_size=1, max_size=3), BENIGN),
                ("wrong type", st.sampled_from([None, 5, 1.5, True, {}, [1, 2], ["a", 3]]), FATAL), deep]
    raise AssertionError(k)


VALIDATION = ("blank", "huge", "too long")
"""Menu entries a reader passes on and the dataset's validation (the spec's GX suite) refuses: slow to
refuse (a suite run each), so a small share of the inputs (:data:`VALIDATED`)."""
VALIDATED = 3
"""Percent of the must-refuse inputs whose change is one the validation (not the reader) refuses."""


@dataclass(frozen=True)
class Template:
    """A kind of change: an operation on a field (or a record), its values and its expectation."""

    op: str  # set | delete | same_id | record | duplicate | extra
    field: Field | None
    values: st.SearchStrategy[Any] | None
    expect: str
    what: str = ""

    def validated(self, validation: tuple[str, ...] = VALIDATION) -> bool:
        """Whether the validation, not the reader, refuses it (see :data:`VALIDATION`)."""
        return self.op == "same_id" or self.what in validation


@functools.lru_cache(maxsize=256)
def templates(fields: tuple[Field, ...], n: int) -> list[Template]:
    """Every kind of change to records of ``fields`` (``n`` records; made once per layout)."""
    out = []
    for f in fields:
        out.append(Template("delete", f, None, f.missing or (BENIGN if f.kind == "optional" else FATAL)))
        changed = dict(f.overrides)
        out += [Template("set", f, values, changed.get(what, expect), what) for what, values, expect in menu(f)]
        if f.kind == "id" and n > 1:
            out.append(Template("same_id", f, None, FATAL))
    out.append(Template("record", None, st.one_of(st.none(), st.integers(), words(),
                                                  st.lists(st.integers(), max_size=2)), FATAL))
    out.append(Template("duplicate", None, None, EITHER))
    out.append(Template("extra", None, st.tuples(st.sampled_from(["zz_extra", "extra field", "", "\ud800", "_line"]),
                                                 st.one_of(hostile_texts(), wrong_scalars(), containers())),
                        BENIGN))
    return out


MODES = ["fatal"] * 98 + ["free", "valid"]
"""How an input's changes are drawn: at least one that must be refused (most inputs: a refusal is cheap),
any (accepted or refused), or only changes that keep it valid (an accepted input registers: slow)."""


@st.composite
def changes(draw, records: list[Any], fields: tuple[Field, ...], *, mode: str, max_changes: int = 3,
            validation: tuple[str, ...] = VALIDATION) -> list[Change]:
    """Changes to ``records``: in ``fatal`` mode at least one must-refuse change first, in ``valid`` mode only
    changes that keep the records valid, in ``free`` mode any. ``validation``: the menu entries the
    validation refuses (in a CSV, say, a value nested deeply is only a long text)."""
    n = len(records)
    menu_ = templates(fields, min(n, 2))
    out = []
    count = draw(st.integers(0, 2)) if mode == "valid" else draw(st.integers(1, max_changes))
    for k in range(count):
        if mode == "fatal" and k == 0:  # mostly what the reader refuses: a validation run is slow
            validated = draw(st.integers(0, 99)) < VALIDATED
            choices = [t for t in menu_ if t.expect == FATAL and t.validated(validation) == validated] or \
                [t for t in menu_ if t.expect == FATAL]
        else:
            choices = [t for t in menu_ if mode != "valid" or t.expect == BENIGN]
        t = draw(st.sampled_from(choices))
        i = draw(st.integers(0, n - 1))
        value = draw(t.values) if t.values is not None else None
        out.append(Change(t.op, i, t.field, value=value, expect=t.expect, note=f" ({t.what})" if t.what else ""))
    return out


def _get(rec: Any, path: Path_) -> Any:
    for p in path:
        rec = rec[p]
    return rec


def _parent(rec: Any, path: Path_) -> tuple[Any, Any] | None:
    """(container, key) of ``path`` in ``rec``, or None when the way there is gone (an earlier change)."""
    for p in path[:-1]:
        if isinstance(rec, dict) and p in rec:
            rec = rec[p]
        elif isinstance(rec, list) and isinstance(p, int) and p < len(rec):
            rec = rec[p]
        else:
            return None
    if isinstance(rec, dict) or (isinstance(rec, list) and isinstance(path[-1], int) and path[-1] < len(rec)):
        return rec, path[-1]
    return None


SKIPS = ("blank", "null")
"""Values of a ``text_skip`` field that make its reader skip the record (and what else is wrong in it)."""


def apply(records: list[Any], chs: list[Change]) -> tuple[list[Any], str, list[Change]]:
    """The changed records, the expectation of all the changes that are still there at the end and those
    changes (with the expectation each has there): a change
    overwritten by a later one (or whose target an earlier one removed) does not count; in a record a reader
    may skip (a blank ``text_skip`` field), the other changes may go unread (a must-refuse one becomes
    ``EITHER``, unless the whole file is refused when it is parsed: nesting too deep)."""
    recs = copy.deepcopy(records)
    exps: list[dict[Any, Change]] = [{} for _ in recs]  # per record: what changed, by path
    for ch in chs:
        if ch.index >= len(recs) or not isinstance(recs[ch.index], dict):
            continue
        rec, mine = recs[ch.index], exps[ch.index]
        if ch.op == "record":
            recs[ch.index] = ch.value
            mine.clear()
            mine[("record",)] = ch
        elif ch.op == "duplicate":
            recs.append(copy.deepcopy(rec))
            exps.append(dict(mine))
            mine[("duplicate", len(recs))] = ch
        elif ch.op == "extra":
            key, value = ch.value
            if key in rec:
                continue
            rec[key] = value
            mine[("extra", key)] = ch
        else:
            path = ch.field.path  # type: ignore[union-attr]
            where = _parent(rec, path)
            if where is None or not isinstance(where[0], dict) or where[1] not in where[0]:
                continue
            container, key = where
            if ch.op == "delete":
                del container[key]
            else:
                value = ch.value
                if ch.op == "same_id":  # the id of the next record
                    other = recs[(ch.index + 1) % len(recs)]
                    where2 = _parent(other, path) if isinstance(other, dict) else None
                    if where2 is None or not isinstance(where2[0], dict) or where2[1] not in where2[0] or other is rec:
                        continue
                    value = copy.deepcopy(where2[0][where2[1]])
                container[key] = value
            for p in [p for p in mine if p[:len(path)] == path]:  # overwritten: this change decides
                del mine[p]
            mine[path] = ch
    kept = []
    for at, mine in enumerate(exps):
        for path, c in list(mine.items()):
            if c.op == "same_id" and not _shared(recs, at, path):  # a later change made the ids differ again
                mine[path] = replace(c, expect=EITHER, note=c.note + " (ids differ again)")
        skipped = any((c.op == "delete" and "delete" in c.field.skips) or
                      (c.op == "set" and c.note.strip(" ()") in c.field.skips)
                      for c in mine.values() if c.field is not None)
        for c in mine.values():
            if skipped and c.expect == FATAL and not has_deep(c.value):
                c = replace(c, expect=EITHER, note=c.note + " (record may be skipped)")
            if c not in kept:
                kept.append(c)
    return recs, combine(*(c.expect for c in kept)), kept


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _shared(recs: list[Any], at: int, path: tuple[str, ...]) -> bool:
    """Whether the value at ``path`` of record ``at`` is also that of another record (at the end)."""
    where = _parent(recs[at], path) if isinstance(recs[at], dict) else None
    if where is None or not isinstance(where[0], dict) or where[1] not in where[0]:
        return False
    value = where[0][where[1]]
    for j, other in enumerate(recs):
        w = _parent(other, path) if j != at and isinstance(other, dict) else None
        if w is not None and isinstance(w[0], dict) and w[1] in w[0] and _same(w[0][w[1]], value):
            return True
    return False


def located(kept: list[Change]) -> bool:
    """Whether the error of these (kept) changes must name a row or a field: one of them must be refused,
    and every change that may be refused is inside one record — not nesting too deep (the parser refuses
    the whole file) nor a duplicated record (which may make the file's records disagree as a whole)."""
    risky = [ch for ch in kept if ch.expect != BENIGN]
    return any(ch.expect == FATAL for ch in kept) and all(
        ch.op in ("set", "delete", "record", "same_id") and not has_deep(ch.value) for ch in risky)


__all__ = ["MODES", "SKIPS", "VALIDATED", "VALIDATION", "Change", "Field", "Template", "apply", "changes", "has_deep",
           "located", "menu", "templates"]
