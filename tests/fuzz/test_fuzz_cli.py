"""A sample of the generated inputs through the command line (in-process ``CliRunner``): ``dataset
register`` (source adapters and the generic mapper), ``eval import`` and ``evaluator create``, with the
input under odd folder and file names (spaces, Rich markup such as ``[/b]``, glob characters). Exit 0
only for a valid input, exit 2 with one ``error`` line naming the file otherwise (3 or 4 for a reference
to nothing or a name taken), never a traceback, and the registry unchanged by a refusal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from tests.fuzz.oracle import Fuzz
from tests.fuzz.report import accepted, count
from tests.fuzz.strategies import BENIGN, FATAL, Deep
from tests.fuzz.test_fuzz_evaluators import checkpoints, evaluator_cases  # noqa: F401 (fixture)
from tests.fuzz.test_fuzz_generic import generic_cases
from tests.fuzz.test_fuzz_imports import datasets, import_cases  # noqa: F401 (fixture)
from tests.fuzz.test_fuzz_sources import SOURCES, Case, source_cases


@pytest.fixture(scope="module")
def cli(fuzz: Fuzz, datasets, checkpoints):  # noqa: F811
    """``autorater ARGS...`` in-process against the module's registry: (exit code, stdout, stderr)."""
    from typer.testing import CliRunner

    from registry.cli.main import app

    s = fuzz.reg.settings
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTORATER_HOME", str(s.home))
        mp.setenv("AUTORATER_DB_URL", s.db_url)
        mp.setenv("AUTORATER_STORE", str(s.store))
        mp.setenv("AUTORATER_DVC_REMOTE", s.dvc_remote)
        runner = CliRunner()

        def run(args: list[str]) -> tuple[int, str, str]:
            res = runner.invoke(app, args, catch_exceptions=False)
            return res.exit_code, res.stdout, res.stderr

        yield run


FOLDERS = ["plain", "with space", "a[/b]", "[red]x", "x[ab]", "100%", "ünï"]
"""Folders the input is put in: Rich markup in a path must be printed as text, glob characters read as
the name they are."""


def _place(fz: Fuzz, files: dict[str, bytes], folder_name: str) -> tuple[Path, Path]:
    """(the folder holding the files, the first file) under an odd folder name."""
    folder = fz.folder()
    for part in folder_name.split("/"):
        folder = folder / part
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder, folder / next(iter(files))


def _dataset_args(drawn: Any, folder_name: str, fz: Fuzz) -> tuple[list[str], Case, Path]:
    kind, payload = drawn
    if kind == "source":
        adapter, case = payload
        src = SOURCES[adapter]
        folder, path = _place(fz, case.files, folder_name)
        args = ["dataset", "register", src.dataset, "--source", adapter, "--path", str(path)]
        for k, v in src.options.items():
            args += ["--option", f"{k}={v}"]
        return args, case, path
    case, table, options = payload
    folder, path = _place(fz, case.files, folder_name)
    args = ["dataset", "register", f"fz-generic-{table.task_type}", "--source", "generic", "--path", str(path),
            "--task-type", table.task_type]
    mapping = options.get("mapping")
    if not isinstance(mapping, dict):
        mapping = {"bad item": ""}
    args += [a for k, v in mapping.items() for a in ("--map", f"{k}={v}")]
    args += [a for k, v in (options.get("label_map") or {}).items() for a in ("--label-map", f"{k}={v}")]
    if options.get("labels"):
        args += ["--labels", ",".join(options["labels"])]
    if "scale" in options:
        scale = options["scale"]
        args += [f"--scale={scale if isinstance(scale, str) else ','.join(map(str, scale))}"]
    for k in ("skip_empty", "id_from_row"):
        if k in options:
            args += ["--option", f"{k}={str(options[k]).lower()}"]
    return args, case, path


def _import_args(drawn: Any, folder_name: str, fz: Fuzz) -> tuple[list[str], Case, Path]:
    case, spec, options, evaluator = drawn
    folder, path = _place(fz, case.files, folder_name)
    args = ["eval", "import", str(path), "--format", spec.fmt, "--dataset", spec.dataset, "--evaluator", evaluator]
    for k, v in options.items():
        if k == "mapping":
            args += [a for f, c in v.items() for a in ("--map", f"{f}={c}")]
        elif k == "label_map":
            args += [a for f, c in v.items() for a in ("--label-map", f"{f}={c}")]
        elif k in ("unmapped", "swapped_verdicts"):
            args += [f"--{k.replace('_', '-')}", str(v)]
        else:
            args += ["--option", f"{k}={v}"]
    return args, case, path


CLI_SOURCES = ["llmbar", "pandalm", "hh-rlhf", "bartscore", "unieval", "moderation", "truthfulqa", "halueval"]

inputs = st.one_of(
    st.tuples(st.just("dataset"), st.sampled_from(CLI_SOURCES).flatmap(
        lambda a: st.tuples(st.just("source"), st.tuples(st.just(a), source_cases(SOURCES[a]))))),
    st.tuples(st.just("dataset"), st.tuples(st.just("generic"), generic_cases())),
    st.tuples(st.just("import"), import_cases()),
    st.tuples(st.just("evaluator"), evaluator_cases()),
)


def _evaluator_args(case: dict[str, Any]) -> list[str] | None:
    """The command line of an evaluator case, or None when the command line cannot say it (a value
    that is not JSON, a config that is not a mapping)."""
    config = case["config"]
    if not isinstance(config, dict) or any(not isinstance(k, str) or "=" in k or not k for k in config):
        return None
    args = ["evaluator", "create", "--checkpoint", case["checkpoint"], "--protocol", case["protocol"]]
    if case["name"] is not None:
        args += ["--name", case["name"]]
    for k, v in config.items():
        if isinstance(v, Deep):  # as the shell gives it: JSON text nested thousands of levels deep
            text = "[" * v.depth + "]" * v.depth
        else:
            try:
                text = json.dumps(v, allow_nan=True) if not isinstance(v, str) else v
            except (TypeError, ValueError):
                return None
        args += ["--config", f"{k}={text}"]
    if case["price"] is not None:
        if isinstance(case["price"], (bool, str)):
            return None
        args += [f"--price-per-1k-tokens={case['price']}"]
    return args


def check_cli(fz: Fuzz, cli, drawn: tuple[str, Any, str]) -> None:  # noqa: F811
    what, payload, folder_name = drawn
    if what == "evaluator":
        args = _evaluator_args(payload)
        if args is None or "\x00" in " ".join(args):
            return  # not expressible as command-line arguments
        expect, path, text = payload["expect"], None, payload["what"]
        allowed = {0, 2, 3, 4} if expect != FATAL else {2, 3} if payload["missing"] else {2}
    else:
        args, case, path = (_dataset_args if what == "dataset" else _import_args)(payload, folder_name, fz)
        expect, text = case.expect, case.what
        allowed = {0, 2} if expect != FATAL else {2}
        if not case.names_file:
            path = None
    if any("\x00" in a for a in args):
        return  # a NUL cannot be a command-line argument
    count("cli")
    code, out, err = cli(args)
    assert "Traceback" not in out + err, f"{text}: a traceback\n{err[-2000:]}"
    assert code in allowed, f"{text}: exit {code}, expected one of {sorted(allowed)}\n{out[-500:]}\n{err[-1500:]}"
    if code == 0:
        accepted("cli")
        fz.guard.rebase()
        assert expect != FATAL, f"{text}: accepted\n{out[-500:]}"
        return
    assert expect != BENIGN or what == "evaluator", f"{text}: a valid input was refused: {err}"
    assert err.lstrip().startswith("error"), f"{text}: {err!r}"
    if path is not None and code == 2:
        assert path.name in err, f"{text}: the error does not name {path.name!r}: {err}"
    fz.guard.assert_unchanged(f"cli {text}")


cli_inputs = st.tuples(inputs, st.sampled_from(FOLDERS)).map(lambda t: (t[0][0], t[0][1], t[1]))


def _regressions() -> list[tuple[str, Any, str]]:
    from tests.fuzz.test_fuzz_imports import FORMATS, N

    pandalm = next(f for f in FORMATS if f.name == "pandalm")
    predictions = json.dumps([{"idx": i, "judge_result": "1"} for i in range(N)]).encode()
    return [
        ("dataset", ("source", ("llmbar", Case({"data.json": b"[]"}, FATAL, False,
                                               "regression: an error naming a path with '[/b]' in it ended in a "
                                               "traceback (rich.errors.MarkupError)"))), "a[/b]"),
        ("import", (Case({"judge.json": predictions}, BENIGN, False,
                         "regression: a file in a folder named '[red]x' was read as a glob pattern (matches no "
                         "file)"), pandalm, {}, "fz-judge/pandalm-cli"), "[red]x"),
    ]


def _tiers(fast: int, slow: int) -> tuple[Any, Any]:
    from hypothesis import example, given

    from tests.fuzz.oracle import fuzz_settings

    out = []
    for n, suffix in ((fast, "_fast"), (slow, "")):
        def test(fuzz, cli, drawn):  # noqa: F811
            check_cli(fuzz, cli, drawn)

        for ex in _regressions():
            test = example(drawn=ex)(test)
        test = given(drawn=cli_inputs)(test)

        test.__name__ = test.__qualname__ = f"test_cli{suffix}"
        test = fuzz_settings(n)(test)
        out.append(test if suffix else pytest.mark.slow(test))
    return out[0], out[1]


test_cli_fast, test_cli = _tiers(10, 150)
