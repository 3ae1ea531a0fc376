"""Hypothesis strategies shared by the fuzz tests: texts and values (hostile and valid), JSON that can
be nested deeper than Python's encoder goes, and the byte-level damage done to a serialized file.

A generated input carries an *expectation* (:data:`FATAL`, :data:`BENIGN` or :data:`EITHER`): what a
correct registry must answer. The expectation of several changes together is the strongest one
(:func:`combine`): one fatal change makes the input one that must be refused.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

FATAL, EITHER, BENIGN = "fatal", "either", "benign"
"""Must be refused (exit 2) / may be refused or accepted / must be accepted."""


def combine(*expectations: str) -> str:
    """The expectation of several changes at once."""
    if FATAL in expectations:
        return FATAL
    if EITHER in expectations:
        return EITHER
    return BENIGN


# ----------------------------------------------------------------------------- values

DEEP = 6000
"""Levels of nesting that no recursive reader follows (CPython's limit is 1000)."""


@dataclass(frozen=True)
class Deep:
    """A JSON value nested ``depth`` levels (``[[[...]]]``), written by :func:`dumps` without recursion."""

    depth: int = DEEP
    kind: str = "["


_DEEP_MARK = re.compile(r'"\\u0000deep:(\d+):(.)"')


def _encode(value: Any) -> Any:
    if isinstance(value, Deep):
        return f"\x00deep:{value.depth}:{value.kind}"
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _deep_text(match: re.Match) -> str:
    depth, kind = int(match.group(1)), match.group(2)
    if kind == "{":
        return '{"a":' * depth + "1" + "}" * depth
    return "[" * depth + "]" * depth


def dumps(value: Any, *, ascii_only: bool = True, indent: int | None = None) -> str:
    """JSON text of ``value`` (``NaN``/``Infinity`` as Python writes them; :class:`Deep` values as deep
    nesting; lone surrogates escaped as ``\\udXXX`` when ``ascii_only``, else written as U+FFFD would be
    impossible in UTF-8, so they are escaped anyway)."""
    text = json.dumps(_encode(value), ensure_ascii=ascii_only, indent=indent, allow_nan=True)
    if not ascii_only:  # a raw lone surrogate cannot be encoded: escape it as JSON does
        text = re.sub("[\ud800-\udfff]", lambda m: f"\\u{ord(m.group()):04x}", text)
    return _DEEP_MARK.sub(_deep_text, text)


SAFE_ALPHABET = st.characters(codec="utf-8", exclude_categories=("Cs",))
"""Any character UTF-8 can encode (no lone surrogates)."""


def words(min_size: int = 1, max_size: int = 12) -> st.SearchStrategy[str]:
    """Short non-blank texts of ordinary characters (valid instructions and responses)."""
    return st.text(st.characters(codec="ascii", categories=("L", "N"), include_characters=" .,?!-'"),
                   min_size=min_size, max_size=max_size).filter(lambda s: s.strip() != "")


HOSTILE_CHARS = ["\x00", "\ud800", "\udfff", "\ufeff", "\u2028", "\u2029", "\r", "\x0b", "\x0c", "\x85",
                 "[/]", "[bold]", "%s", "{0}", "\\", '"', "\u202e", "\U0001f600", "\ufffd", "\t", "\n"]
"""Characters (and markup) that break naive readers and printers: NUL, lone surrogates, BOM, Unicode
line separators, vertical tab, Rich markup, format placeholders, bidi override, an emoji."""


@st.composite
def hostile_texts(draw, min_size: int = 1) -> str:
    """A non-blank text holding hostile characters (still a valid text: must be kept as it is,
    except a lone surrogate, which becomes U+FFFD)."""
    parts = draw(st.lists(st.one_of(words(1, 6), st.sampled_from(HOSTILE_CHARS)), min_size=min_size, max_size=6))
    text = "".join(parts)
    return text if text.strip() else "x" + text


def long_text(n: int) -> str:
    return ("long text " * (n // 10 + 1))[:n]


def outside_values(allowed: tuple[Any, ...], normalize: Any = None) -> st.SearchStrategy[Any]:
    """Values that are none of ``allowed`` (a label outside the map): neither equal to one as Python
    compares keys (``1.0 == 1``) nor, with ``normalize``, after it; a boolean is never a label."""
    plain = [a for a in allowed if not isinstance(a, bool)]
    normalized = {normalize(a) for a in plain} if normalize else set()

    def outside(v: Any) -> bool:
        if isinstance(v, bool):
            return True
        if any(type(v) in (int, float) and type(a) in (int, float) and v == a or v == a for a in plain):
            return False
        return not (normalize and normalize(v) in normalized)

    return st.one_of(st.text(max_size=8), st.integers(-5, 12), st.sampled_from([0.5, 1.5, -1.0, 99.0]),
                     st.booleans(), st.none(),
                     st.sampled_from(["banana", "A ", "yes ", "TIE?", "3", "", " ", "\x00", "\ud800", "[/]"]),
                     ).filter(outside)


def wrong_scalars() -> st.SearchStrategy[Any]:
    """Values of the wrong JSON type for a text field (each may be refused, or read as its text)."""
    return st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(),
                     st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e309]))


def containers() -> st.SearchStrategy[Any]:
    """Lists and objects where a scalar belongs (:class:`Deep` is the deeply nested one)."""
    return st.one_of(st.just([]), st.just({}), st.lists(st.integers(), max_size=3),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def bad_numbers(scale: tuple[float, float]) -> st.SearchStrategy[Any]:
    """Scores that are not numbers inside ``scale``: NaN, infinities, out of range, text, booleans, null."""
    lo, hi = scale
    return st.one_of(st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e309, None, True, False,
                                      "abc", "", "5 stars", [], {}]),
                     st.floats(min_value=hi, exclude_min=True, allow_infinity=False, allow_nan=False),
                     st.floats(max_value=lo, exclude_max=True, allow_infinity=False, allow_nan=False),
                     st.just(Deep()))


# ----------------------------------------------------------------------------- damage to a file's bytes

INVALID_UTF8 = [b"\xff", b"\xfe\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xe2\x82", b"\x80", b"\xf8\x88\x80\x80\x80"]
BOM = b"\xef\xbb\xbf"


@st.composite
def damage(draw, *, json_document: bool, text: bool = True, benign: bool = False) -> tuple[str, dict[str, Any]]:
    """One change to a file's bytes (:func:`apply_damage` gives its expectation); ``text``: the file is text
    (a BOM, CRLF line ends and gzip keep it valid), ``benign``: only such changes."""
    options = [] if benign else ["truncate", "invalid_utf8", "nul_byte", "garbage", "empty", "gz_truncated"]
    if text:
        options += ["bom", "crlf", "gzip"]
    kind = draw(st.sampled_from(options or ["none"]))
    params: dict[str, Any] = {}
    if kind in ("truncate", "invalid_utf8", "nul_byte", "gz_truncated"):
        params["at"] = draw(st.floats(0.0, 0.999))
    if kind == "invalid_utf8":
        params["bytes"] = draw(st.sampled_from(INVALID_UTF8))
    if kind == "garbage":
        params["bytes"] = draw(st.binary(min_size=1, max_size=300))
    return kind, params


def damaged(expect: str, dexpect: str, kind: str) -> str:
    """The expectation of changed records once their file is damaged: a cut that leaves whole lines (JSON
    lines, CSV, TSV: the damage's own expectation ``EITHER``) may take the changed records with it."""
    if kind == "truncate" and dexpect == EITHER:
        return EITHER
    return combine(expect, dexpect)


def apply_damage(data: bytes, kind: str, params: dict[str, Any], *, json_document: bool) -> tuple[bytes, str, bool]:
    """``(new bytes, expectation, gzip)``: the damaged file and whether it must be named ``.gz``."""
    if kind == "none":
        return data, BENIGN, False
    if kind == "bom":
        return BOM + data, BENIGN, False
    if kind == "crlf":
        return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), BENIGN, False
    if kind == "gzip":
        return gzip.compress(data, mtime=0), BENIGN, True
    if kind == "empty":
        return b"", FATAL, False
    if kind == "garbage":
        return params["bytes"], FATAL, False
    if kind == "gz_truncated":
        packed = gzip.compress(data, mtime=0)
        return packed[: int(len(packed) * params["at"])], FATAL, True
    at = int(len(data) * params["at"])
    if kind == "truncate":
        cut = data[:at]
        if not data[at:].strip():  # only trailing whitespace removed
            return cut, BENIGN, False
        return cut, FATAL if json_document else EITHER, False
    if kind == "invalid_utf8":
        return data[:at] + params["bytes"] + data[at:], FATAL, False
    if kind == "nul_byte":  # a raw NUL: invalid JSON (in a string or not); a CSV may read it as text
        return data[:at] + b"\x00" + data[at:], FATAL if json_document else EITHER, False
    raise AssertionError(kind)


__all__ = ["BENIGN", "BOM", "DEEP", "EITHER", "FATAL", "HOSTILE_CHARS", "Deep", "apply_damage", "bad_numbers",
           "combine", "containers", "damage", "damaged", "dumps", "hostile_texts", "long_text", "outside_values",
           "words", "wrong_scalars"]
