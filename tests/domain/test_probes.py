"""Perturbation probes (registry.domain.probes): each transform against a straightforward loop
implementation of its documented rule, properties (swap twice is the identity, ties untouched,
lengths as promised) and the errors on bad transforms, parameters and inputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.domain.probes import FILLER, HEADINGS, TRANSFORMS, apply_probe, check_params
from registry.errors import InvalidInput

NATURAL = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/dataset.json"


@pytest.fixture(scope="module")
def natural(data_root: Path):
    """LLMBar Natural's rows as pairwise columns (label 1 → A, 2 → B) and a few ties added."""
    rows = json.loads((data_root / NATURAL).read_text())
    a = [r["output_1"] for r in rows]
    b = [r["output_2"] for r in rows]
    y = ["A" if str(r["label"]) == "1" else "B" for r in rows]
    y[:3] = ["tie"] * 3
    return a, b, y


# ----------------------------------------------------------------------------- loop references
def loop_pad(a, b, y, *, better: bool, ratio: float, min_chars: int, seed: int):
    """Pad the better (or worse) response, row by row, with the documented draw."""
    rng = np.random.Generator(np.random.PCG64(seed))
    need = []
    for ai, bi, yi in zip(a, b, y, strict=True):
        edit_a = (yi == "A") if better else (yi == "B")
        text, other = (ai, bi) if edit_a else (bi, ai)
        need.append(max(min_chars, math.ceil(ratio * len(other)) - len(text)))
    shortest = min(len(s) for s in FILLER) + 1
    width = max(1, -(-max(need) // shortest))
    draws = rng.integers(len(FILLER), size=(len(a), width))
    out_a, out_b = [], []
    for i, (ai, bi, yi) in enumerate(zip(a, b, y, strict=True)):
        if yi == "tie":
            out_a.append(ai)
            out_b.append(bi)
            continue
        edit_a = (yi == "A") if better else (yi == "B")
        text = ai if edit_a else bi
        sentences, added = [], 0
        for j in draws[i]:
            sentences.append(FILLER[j])
            added = len("\n\n" + " ".join(sentences))
            if added >= need[i]:
                break
        new = text + "\n\n" + " ".join(sentences)
        out_a.append(new if edit_a else ai)
        out_b.append(bi if edit_a else new)
    return out_a, out_b


def loop_truncate(a, b, y, keep):
    out_a, out_b = list(a), list(b)
    for i, yi in enumerate(y):
        if yi == "A":
            out_a[i] = a[i][: int(math.floor(keep * len(a[i])))]
        elif yi == "B":
            out_b[i] = b[i][: int(math.floor(keep * len(b[i])))]
    return out_a, out_b


def loop_dress(text: str, heading: str, bold_words: int) -> str:
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    if len(lines) <= 1:
        lines, current = [], ""
        for k, ch in enumerate(text.strip()):  # sentences: split after . ! ? followed by white space
            current += ch
            nxt = text.strip()[k + 1] if k + 1 < len(text.strip()) else ""
            if ch in ".!?" and nxt.isspace():
                lines.append(current.strip())
                current = ""
        if current.strip():
            lines.append(current.strip())
        lines = [x for x in lines if x]
    bullets = []
    for p in lines:
        words = p.split(" ")
        if bold_words:
            rest = " ".join(words[bold_words:])
            bullets.append("- **" + " ".join(words[:bold_words]) + "**" + (" " + rest if rest else ""))
        else:
            bullets.append("- " + p)
    return heading + "\n\n" + "\n".join(bullets)


# ----------------------------------------------------------------------------- against the loops
@pytest.mark.parametrize("better", [False, True])
@pytest.mark.parametrize(("ratio", "min_chars", "seed"), [(1.5, 100, 0), (1.0, 1, 7), (3.0, 500, 42)])
def test_pad_matches_loop(natural, better, ratio, min_chars, seed):
    a, b, y = natural
    p = apply_probe("pad-better" if better else "pad-worse", a, b, y,
                    params={"ratio": ratio, "min_chars": min_chars}, seed=seed)
    want_a, want_b = loop_pad(a, b, y, better=better, ratio=ratio, min_chars=min_chars, seed=seed)
    assert list(p.response_a) == want_a and list(p.response_b) == want_b
    assert list(p.label) == y
    assert p.n_changed == sum(v != "tie" for v in y)


@pytest.mark.parametrize("keep", [0.5, 0.1, 0.99])
def test_truncate_matches_loop(natural, keep):
    a, b, y = natural
    p = apply_probe("truncate-better", a, b, y, params={"keep": keep})
    want_a, want_b = loop_truncate(a, b, y, keep)
    assert list(p.response_a) == want_a and list(p.response_b) == want_b
    assert np.array_equal(p.changed, np.array([(x, z) != (u, v) for x, z, u, v in zip(want_a, want_b, a, b)]))


@pytest.mark.parametrize(("bold_words", "seed"), [(2, 0), (0, 3), (5, 11)])
def test_format_matches_loop(natural, bold_words, seed):
    a, b, y = natural
    p = apply_probe("format-worse", a, b, y, params={"bold_words": bold_words}, seed=seed)
    heads = np.random.Generator(np.random.PCG64(seed)).integers(len(HEADINGS), size=len(a))
    for i, yi in enumerate(y):
        if yi == "tie":
            assert (p.response_a[i], p.response_b[i]) == (a[i], b[i])
            continue
        worse_a = yi == "B"
        want = loop_dress(a[i] if worse_a else b[i], HEADINGS[heads[i]], bold_words)
        assert (p.response_a[i] if worse_a else p.response_b[i]) == want
        assert (p.response_b[i] if worse_a else p.response_a[i]) == (b[i] if worse_a else a[i])


def test_swap_matches_loop(natural):
    a, b, y = natural
    votes = [["A", "B", "tie"] if i % 2 else None for i in range(len(a))]
    p = apply_probe("swap", a, b, y, annotator_labels=votes)
    flip = {"A": "B", "B": "A", "tie": "tie"}
    assert list(p.response_a) == b and list(p.response_b) == a
    assert list(p.label) == [flip[v] for v in y]
    assert p.annotator_labels == [None if v is None else [flip[x] for x in v] for v in votes]
    assert p.n_changed == len(a)


# ----------------------------------------------------------------------------- properties
texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
rows = st.lists(st.tuples(texts, texts, st.sampled_from(["A", "B", "tie"])), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(rows=rows)
def test_swap_twice_is_identity(rows):
    a, b, y = map(list, zip(*rows, strict=True))
    once = apply_probe("swap", a, b, y)
    twice = apply_probe("swap", once.response_a, once.response_b, once.label)
    assert list(twice.response_a) == a and list(twice.response_b) == b and list(twice.label) == y


@settings(max_examples=60, deadline=None)
@given(rows=rows, ratio=st.floats(1.0, 4.0), min_chars=st.integers(1, 300), seed=st.integers(0, 2**32))
def test_padding_properties(rows, ratio, min_chars, seed):
    a, b, y = map(list, zip(*rows, strict=True))
    for transform, better in (("pad-worse", False), ("pad-better", True)):
        p = apply_probe(transform, a, b, y, params={"ratio": ratio, "min_chars": min_chars}, seed=seed)
        for i, yi in enumerate(y):
            if yi == "tie":
                assert (p.response_a[i], p.response_b[i]) == (a[i], b[i])
                continue
            edit_a = (yi == "A") == better
            old, new = (a[i], p.response_a[i]) if edit_a else (b[i], p.response_b[i])
            other = p.response_b[i] if edit_a else p.response_a[i]
            assert other == (b[i] if edit_a else a[i])           # the other response is untouched
            assert new.startswith(old + "\n\n")                  # filler only appended
            assert len(new) - len(old) >= min_chars
            assert len(new) >= ratio * len(other) - 1e-9
            filler = new[len(old) + 2:]
            assert filler and all(s in FILLER for s in _sentences(filler))


def _sentences(filler: str) -> list[str]:
    out, rest = [], filler
    while rest:
        match = next(s for s in FILLER if rest.startswith(s))
        out.append(match)
        rest = rest[len(match):].removeprefix(" ")
    return out


@settings(max_examples=60, deadline=None)
@given(rows=rows, keep=st.floats(0.01, 0.99), seed=st.integers(0, 1000))
def test_truncate_and_format_properties(rows, keep, seed):
    a, b, y = map(list, zip(*rows, strict=True))
    t = apply_probe("truncate-better", a, b, y, params={"keep": keep}, seed=seed)
    f = apply_probe("format-worse", a, b, y, seed=seed)
    for i, yi in enumerate(y):
        if yi == "tie":
            assert (t.response_a[i], t.response_b[i], f.response_a[i], f.response_b[i]) == (a[i], b[i], a[i], b[i])
            continue
        better = a[i] if yi == "A" else b[i]
        cut = t.response_a[i] if yi == "A" else t.response_b[i]
        assert better.startswith(cut) and len(cut) == math.floor(keep * len(better))
        dressed = f.response_b[i] if yi == "A" else f.response_a[i]
        assert any(dressed.startswith(h + "\n\n") for h in HEADINGS)
    assert list(t.label) == y == list(f.label)


def test_same_seed_same_probe_and_seed_matters(natural):
    a, b, y = natural
    one, two = (apply_probe("pad-worse", a, b, y, seed=5) for _ in range(2))
    assert list(one.response_a) == list(two.response_a) and list(one.response_b) == list(two.response_b)
    other = apply_probe("pad-worse", a, b, y, seed=6)
    assert list(other.response_a) + list(other.response_b) != list(one.response_a) + list(one.response_b)


def test_longer_heuristic_flips_on_padding(natural):
    """What the probes are for: after pad-worse the worse response is always the longer one."""
    a, b, y = natural
    p = apply_probe("pad-worse", a, b, y)
    for ai, bi, yi in zip(p.response_a, p.response_b, y, strict=True):
        if yi != "tie":
            assert (len(ai) > len(bi)) == (yi == "B")


# ----------------------------------------------------------------------------- errors
def test_params_defaults_and_text_values():
    assert check_params("pad-worse", None) == {"ratio": 1.5, "min_chars": 100}
    assert check_params("pad-better", {"ratio": "2", "min_chars": "7"}) == {"ratio": 2.0, "min_chars": 7}
    assert check_params("truncate-better", {"keep": "0.25"}) == {"keep": 0.25}
    assert check_params("swap", {}) == {}
    assert set(TRANSFORMS) >= {"swap", "pad-worse", "pad-better", "truncate-better", "format-worse"}


@pytest.mark.parametrize(("transform", "params", "message"), [
    ("shuffle", {}, "unknown probe transform 'shuffle'"),
    ("pad_worse", {}, "did you mean 'pad-worse'"),
    ("swap", {"ratio": 2}, "swap has no parameter 'ratio'; it takes no parameters"),
    ("pad-worse", {"length": 2}, "takes ratio, min_chars"),
    ("pad-worse", {"ratio": 0.5}, "ratio must be in [1, 100], got 0.5"),
    ("pad-worse", {"ratio": "nan"}, "ratio must be a number"),
    ("pad-worse", {"min_chars": 1.5}, "min_chars must be an integer"),
    ("pad-worse", {"min_chars": True}, "min_chars must be an integer"),
    ("truncate-better", {"keep": 1}, "keep must be in (0, 1), got 1.0"),
    ("truncate-better", {"keep": 0}, "keep must be in (0, 1)"),
    ("format-worse", {"bold_words": -1}, "bold_words must be in [0, 50]"),
])
def test_bad_transform_or_params(transform, params, message):
    with pytest.raises(InvalidInput) as err:
        apply_probe(transform, ["x"], ["y"], ["A"], params=params)
    assert message in str(err.value)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"label": ["A", "C"]}, "labels must be A, B or tie; found C"),
    ({"label": ["A"]}, "must have one length"),
    ({"response_a": ["x", None]}, "response_a must be text"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"annotator_labels": [["A"]]}, "annotator_labels has 1 rows, the table 2"),
])
def test_bad_inputs(kwargs, message):
    args = {"response_a": ["x", "y"], "response_b": ["u", "v"], "label": ["A", "B"]} | kwargs
    with pytest.raises(InvalidInput) as err:
        apply_probe("swap", **args)
    assert message in str(err.value)


@settings(max_examples=60, deadline=None)
@given(pairs=st.lists(st.tuples(st.sampled_from([0.0, 0.5, 1.0]), st.sampled_from([0.0, 0.5, 1.0])), max_size=40))
def test_flip_rate_matches_loop(pairs):
    from registry.domain.probes import flip_rate

    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    got = flip_rate(a, b)
    if not pairs:
        assert math.isnan(got)
    else:
        assert got == pytest.approx(sum(x != y for x, y in pairs) / len(pairs))
    with pytest.raises(InvalidInput, match="one length"):
        flip_rate([1.0], [1.0, 0.0])
