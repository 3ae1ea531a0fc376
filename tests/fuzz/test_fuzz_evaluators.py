"""Fuzzed ``evaluator create``: generated checkpoint and protocol references, names, configs and prices
through the Python API. A config key the evaluator kind does not take, a value of the wrong type, out of
range, not finite, nested too deeply, holding a NUL or a secret (``api_key``, ``sk-...``), an invalid name,
a negative or non-finite price: refused with a clear error naming the field (exit 2), nothing stored. A
reference to a checkpoint or protocol that does not exist is a clear "not found" (exit 3) naming it. A
valid request creates the evaluator (or returns the one with the same checkpoint, protocol and config)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import strategies as st

from registry.errors import AlreadyExists, NotFound, RegistryError
from tests.fuzz.oracle import Fuzz, check_clear_error
from tests.fuzz.report import accepted, count
from tests.fuzz.strategies import BENIGN, EITHER, FATAL, Deep, combine, words
from tests.fuzz.test_fuzz_sources import tiers


@pytest.fixture(scope="module")
def checkpoints(fuzz: Fuzz) -> dict[str, str]:
    """A checkpoint of each kind the tests pair with protocols: kind → autorater."""
    fuzz.reg.register_checkpoint("fz-random", kind="random")
    fuzz.reg.register_checkpoint("fz-llm", kind="llm-judge", uri="hf:org/model")
    fuzz.reg.register_checkpoint("fz-ext", kind="external", uri="external:judge")
    fuzz.reg.protocols()  # the shipped protocols are synced once here, so a refusal changes nothing
    fuzz.guard.rebase()
    return {"random": "fz-random", "llm-judge": "fz-llm", "external": "fz-ext"}


VALID_CONFIG: dict[str, dict[str, tuple[str, st.SearchStrategy[Any]]]] = {
    "random": {"seed": ("int", st.integers(0, 2**31)), "batch_size": ("int", st.integers(1, 512)),
               "samples": ("int", st.integers(1, 4)), "orders": ("list", st.sampled_from([[0], [1], [0, 1]]))},
    "llm-judge": {"temperature": ("float", st.floats(0, 2)), "max_tokens": ("int", st.integers(1, 4096)),
                  "seed": ("int", st.integers(0, 99)), "top_p": ("float", st.floats(0.01, 1)),
                  "stop": ("list", st.lists(words(), max_size=2))},
    "external": {"format": ("str", words()), "source": ("str", words()), "llm": ("str", words()),
                 "protocol": ("str", words())},
}
"""Keys each kind takes: their type and valid values."""
PROTOCOLS = {"random": ["score-both-orders", "score-single-order"], "llm-judge": ["pairwise-base", "pairwise-cot"],
             "external": ["external"]}
CHECKPOINTS = {"random": "fz-random", "llm-judge": "fz-llm", "external": "fz-ext"}
SECRETS = [("api_key", "x"), ("token", "abc"), ("OPENAI_API_KEY", "v"), ("password", "p"), ("apiKey", "k"),
           ("format", "sk-" + "a" * 30), ("source", "Bearer " + "b" * 20), ("format", "hf_" + "c" * 20)]
BAD_NAMES = ["", " ", "a b", "x@y", "a@b", "x@2@3", "x@2/", "../x", "a" * 129, "\x00", "new\nline", "-x", ".hidden", "x/", "é",
             "[/]"]
BREAKS = ["key", "type", "range", "nonfinite", "deep", "nul", "surrogate", "secret", "name", "price", "checkpoint",
          "protocol", "config_type", "valid_name", "valid"]


@st.composite
def evaluator_cases(draw) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(VALID_CONFIG)))
    valid = VALID_CONFIG[kind]
    config: Any = {k: draw(v) for k, (_, v) in valid.items() if draw(st.booleans())}
    exps, notes = [BENIGN], []
    case: dict[str, Any] = {"kind": kind, "checkpoint": CHECKPOINTS[kind],
                            "protocol": draw(st.sampled_from(PROTOCOLS[kind])), "name": None, "price": None,
                            "missing": None}
    for b in draw(st.lists(st.sampled_from(BREAKS), min_size=1, max_size=2)):
        key = draw(st.sampled_from(sorted(valid)))
        typ = valid[key][0]
        if b == "key":
            key = draw(st.one_of(words(1, 8), st.sampled_from(["", " ", "protocol", "checkpoint", "\ud800", "1"])))
            if key in valid:
                continue
            config[key] = draw(st.one_of(st.integers(), words()))
        elif b == "type":
            config[key] = draw(st.sampled_from([{}, {"a": 1}] if typ == "list" else [[], [1], {}, {"a": 1}]))
        elif b == "range":
            key = draw(st.sampled_from([k for k in ("batch_size", "samples", "max_tokens", "temperature", "top_p")
                                        if k in valid] or ["seed"]))
            if key == "seed":  # external: no numeric key
                continue
            config[key] = draw(st.sampled_from({"temperature": [-0.5, -1, -1e-9], "top_p": [1.5, 10**6, -1]}.get(
                key, [0, -1, -100])))
        elif b == "nonfinite":
            config[key] = draw(st.sampled_from([float("nan"), float("inf"), float("-inf")]))
            if typ == "str":  # a number given for a text is its text ("inf")
                exps.append(EITHER)
                notes.append(b)
                continue
        elif b == "deep":
            config[draw(st.sampled_from([key, "nested"]))] = Deep(3000)
        elif b == "nul":
            if typ not in ("str", "list"):
                continue
            config[key] = ["a\x00b"] if typ == "list" else "a\x00b"
        elif b == "surrogate":
            if typ not in ("str", "list"):
                continue
            config[key] = ["judge \ud800"] if typ == "list" else "judge \ud800"
        elif b == "secret":
            k, v = draw(st.sampled_from(SECRETS))
            config[k] = v
        elif b == "name":
            if case["name"] is not None:
                continue
            case["name"] = draw(st.sampled_from(BAD_NAMES))
        elif b == "valid_name":
            if case["name"] is not None:
                continue
            case["name"] = draw(st.from_regex(r"[a-z][a-z0-9._-]{0,12}", fullmatch=True))
            notes.append(b)
            continue
        elif b == "price":
            case["price"] = draw(st.sampled_from([-1.0, float("nan"), float("inf"), -1e-9, True, "free"]))
        elif b == "checkpoint":
            case["checkpoint"] = draw(st.sampled_from(["no-such", f"{CHECKPOINTS[kind]}@9", f"{CHECKPOINTS[kind]}@@2",
                                                       f"{CHECKPOINTS[kind]}@x", "@", ""]))
            case["missing"] = "checkpoint"
            case.setdefault("missing_refs", []).append(case["checkpoint"])
            notes.append(b)
            continue
        elif b == "protocol":
            case["protocol"] = draw(st.sampled_from(["no-such", "external@9", "", "pairwise-base@x"]))
            case["missing"] = "protocol"
            case.setdefault("missing_refs", []).append(case["protocol"])
            notes.append(b)
            continue
        elif b == "config_type":
            config = draw(st.sampled_from([["seed", 1], "seed=1", 5]))
        else:  # valid
            notes.append(b)
            continue
        exps.append(FATAL)
        notes.append(b)
        if not isinstance(config, dict):
            break
    case["config"] = config
    case["expect"] = combine(*exps)
    case["what"] = f"{kind} {case['checkpoint']!r} {case['protocol']!r} name={case['name']!r} {notes} " \
                   f"config={config!r:.200} price={case['price']!r}"
    return case


def _materialize(value: Any) -> Any:
    if isinstance(value, Deep):
        out: list = []
        for _ in range(value.depth):
            out = [out]
        return out
    if isinstance(value, dict):
        return {k: _materialize(v) for k, v in value.items()}
    return value


def check_evaluator(fz: Fuzz, case: dict[str, Any]) -> None:
    """A clear refusal (InvalidInput naming the field; NotFound naming a reference to nothing; AlreadyExists
    for a valid request whose name is taken by another configuration) with nothing stored, or the evaluator."""
    config = _materialize(case["config"])
    count("evaluators")
    try:
        result = fz.reg.create_evaluator(checkpoint=case["checkpoint"], protocol=case["protocol"], name=case["name"],
                                         config=config, price_per_1k_tokens=case["price"])
    except RegistryError as exc:
        what = case["what"]
        if isinstance(exc, NotFound):
            assert case["missing"], f"{what}: {exc}"
            refs = case.get("missing_refs") or [case[case["missing"]]]   # both missing: either may be named
            assert any(repr(ref) in str(exc) or str(ref) in str(exc) for ref in refs), \
                f"{what}: the error does not name {' or '.join(map(repr, refs))}: {exc}"
        elif isinstance(exc, AlreadyExists):
            assert case["expect"] != FATAL, f"{what}: refused as a name taken, not as invalid: {exc}"
        else:
            check_clear_error(exc, None, located=True, what=what)
            assert case["expect"] != BENIGN or case["missing"], f"evaluators: a valid request was refused: {exc} ({what})"
        fz.guard.assert_unchanged(f"evaluators {what}")
        return
    accepted("evaluators")
    fz.guard.rebase()
    assert case["expect"] != FATAL and not case["missing"], \
        f"evaluators: a request that must be refused was accepted ({case['what']}): {result!r:.300}"
    _check_created(fz, result, case)


def _check_created(fz: Fuzz, result: Any, case: dict[str, Any]) -> None:
    ev = result.entity
    assert fz.reg.evaluator(ev.name).sha256 == ev.sha256
    assert case["name"] is None or ev.name == case["name"] or not result.created, (ev.name, case["name"])
    price = ev.price_per_1k_tokens
    assert price is None or (math.isfinite(price) and price >= 0), price


def regression(what: str, kind: str = "llm-judge", *, expect: str = FATAL, missing: str | None = None,
               **changes: Any) -> dict[str, Any]:
    case = {"kind": kind, "checkpoint": CHECKPOINTS[kind], "protocol": PROTOCOLS[kind][0], "name": None, "price": None,
            "missing": missing, "config": {}, "expect": expect, "what": f"regression: {what}"}
    return {**case, **changes}


REGRESSIONS = (
    regression("a config nested 3,000 deep (RecursionError)", config={"stop": Deep(3000)}),
    regression("temperature inf was stored (a JSON PostgreSQL refuses)", config={"temperature": float("inf")}),
    regression("a NUL in a config text was stored (PostgreSQL's JSON refuses it)", config={"stop": ["a\x00b"]}),
    regression("a lone surrogate in a config key", config={"\ud800": 1}),
    regression("a price of NaN was stored", "random", price=float("nan")),
    regression("a negative price was stored", "random", price=-1.0),
    regression("a price that is text", "random", price="free"),
    regression("a config that is not a mapping (TypeError in the Python API)", "random", config=5),
    regression("checkpoint '' made an external evaluator without a checkpoint", "random", checkpoint=""),
    regression("checkpoint '@' was reported as 'no autorater named ''", "random", checkpoint="@"),
    regression("protocol 'pairwise-base@x' was read as its latest version", protocol="pairwise-base@x",
               expect=BENIGN, missing="protocol"),
)
test_evaluators_fast, test_evaluators = tiers("evaluators", evaluator_cases(), check_evaluator, 30, 900, REGRESSIONS)


@pytest.fixture(autouse=True)
def _checkpoints(checkpoints):
    """Every test of this module pairs the module's checkpoints."""
