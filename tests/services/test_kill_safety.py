"""Killed without loss (issue 13, "Hold up", build item 3).

Real ``autorater`` processes — ``dataset register``, ``eval run``, ``eval matrix`` and ``train run``
— are SIGKILLed (with their process group) at seeded random moments. Each command first runs to the
end in a copy of its registry: its wall time D, and when it started writing into the store (a file
in ``store/tmp``), are measured and its result is the reference. Then it runs again :data:`KILLS`
times, each time in a fresh copy of the same registry, and is killed at a moment drawn with
``random.Random`` (seeded by :data:`SEED` and the command): one in each of ``KILLS - 1`` equal
slices of D, and one in its writing phase (the placing of files and the commits, a short part of
D that evenly spread kills would seldom hit). After each kill:

* the database is intact: SQLite ``PRAGMA integrity_check`` and ``foreign_key_check``; every
  dataset version, run predictions file and checkpoint folder a row names is in the store,
  DVC-tracked and hashes to what the row records (``store verify``); no run ``succeeded`` without
  its predictions;
* nothing is partial: a version the killed process committed has the reference's row count and
  content hash, a run the reference's predictions, a checkpoint the reference's weights;
* after ``autorater store gc --grace 0`` no orphan is left: every file of the store belongs to an
  item a database row references (or is its ``.dvc`` pointer), or is a whole input sidecar of a
  registered version or a check marker of such an item as it is now; ``store/tmp`` is empty, every DVC
  cache object is referenced, no run is left ``running`` (gc marks the killed one failed as
  abandoned and names it) and no training temp folder is left in ``$TMPDIR``;
* re-running the command completes (exit 0) with exactly one version, one succeeded run per pair or
  one checkpoint, equal to the reference, and reuses what the killed process saved: an ``eval run``
  or ``eval matrix`` killed after a chunk of judgments was committed reports exactly those as
  cached (``n_cached``). A command killed after its commit had already completed: it is not run
  again (``eval run`` and ``train run`` record a new run or checkpoint each time they complete).

Data: real pairwise rows as generic-source JSON-lines files: 20,000 replicated LLMBar and PandaLM
rows (``bench.ingest``) to register; those rows and HH-RLHF's, 4,141 distinct inputs, judged by
heuristic evaluators that commit their judgments a chunk of 1,024 rows at a time
(:data:`EVAL_SETTINGS`); the training tests' tiny mixture on the ``catalog``.
``AUTORATER_KILLS`` sets how many kills per command (default 3).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow

SEED = 13
KILLS = int(os.environ.get("AUTORATER_KILLS", "3"))
REGISTER_ROWS = 20_000
HEURISTICS = ("random", "longer", "shorter")
EVAL_SETTINGS = {"AUTORATER_MEMORY_MB": "1"}
"""The smallest working memory: an evaluation reads, judges and commits its judgments 1,024 rows at
a time (the heuristics judge a chunk at once, so the batch size does not split the commits)."""
REPORT: list[str] = []


def _map_args() -> list[str]:
    from bench.ingest import LABEL_MAP, MAPPING

    return ([a for field, col in MAPPING.items() for a in ("--map", f"{field}={col}")]
            + [a for src, label in LABEL_MAP.items() for a in ("--label-map", f"{src}={label}")])


# ----------------------------------------------------------------------------- registries
def _settings(home: Path, data_root) -> object:
    from registry.config import Settings

    return Settings.from_env(home=str(home), db_url=f"sqlite:///{home / 'registry.db'}", store=str(home / "store"),
                             dvc_remote=str(home / "remote"), data_root=str(data_root))


def _clone(src, dest: Path):
    """A copy of the idle SQLite registry ``src`` at ``dest``: its store (DVC cache included) and a
    consistent copy of its database (SQLite's backup API: nothing of a write-ahead log is lost)."""
    db = src.home / "registry.db"
    assert Path(src.db_url.removeprefix("sqlite:///")) == db and Path(src.store) == src.home / "store"
    shutil.copytree(src.home, dest, symlinks=True, ignore=lambda folder, names: [
        n for n in names if Path(folder) == src.home and n.startswith("registry.db")])
    with sqlite3.connect(db) as source, sqlite3.connect(dest / "registry.db") as target:
        source.backup(target)
    source.close()
    target.close()
    return _settings(dest, src.data_root)


def _open(s):
    from registry.services.app import RegistryContext

    return RegistryContext.open(s)


def _hh_rlhf_rows(root: Path) -> list[dict]:
    """HH-RLHF's harmless test set in the conventions of ``bench.ingest.real_rows``."""
    from bench.ingest import _CODES
    from registry.adapters.sources import get_adapter

    adapter = get_adapter("hh-rlhf")
    (d,) = adapter.catalog()
    return [{"base_id": f"{d.name}:{r.example_id}", "prompt": r.instruction, "output_1": r.response_a,
             "output_2": r.response_b, "preference": _CODES[r.label], "subset": r.category}
            for r in adapter.read(root / d.path, **d.options).itertuples(index=False)]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, data_root) -> dict[str, Path]:
    """Generic-source files of real pairwise rows: :data:`REGISTER_ROWS` replicated LLMBar and
    PandaLM rows (``big``), and those rows with HH-RLHF's once each (``small``: 4,141 distinct
    inputs, to judge)."""
    from bench.ingest import build_input, real_rows

    folder = tmp_path_factory.mktemp("kill-inputs")
    rows = real_rows(data_root)
    big = build_input(rows, REGISTER_ROWS, folder, "jsonl")
    rows += _hh_rlhf_rows(data_root)
    return {"small": build_input(rows, len(rows), folder, "jsonl"), "big": big}


@pytest.fixture(scope="module")
def base(tmp_path_factory, inputs, data_root):
    """A closed registry with ``small`` (the distinct real rows) and the heuristic baselines."""
    from bench.ingest import LABEL_MAP, MAPPING
    from registry.services.app import init_registry
    from registry.services.datasets import register_dataset_version
    from registry.services.evaluators import ensure_baselines

    s = _settings(tmp_path_factory.mktemp("kill-base") / "home", data_root)
    reg = init_registry(s)
    try:
        register_dataset_version(reg, name="small", source="generic", path=inputs["small"], task_type="pairwise",
                                 options={"mapping": MAPPING, "label_map": LABEL_MAP})
        ensure_baselines(reg, minilm=False)
    finally:
        reg.close()
    return s


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print("\n" + "\n".join(REPORT))
    REPORT.clear()


# ----------------------------------------------------------------------------- processes
def _env(s, tmpdir: Path, **settings: str) -> dict[str, str]:
    return {**os.environ, "AUTORATER_HOME": str(s.home), "AUTORATER_DB_URL": s.db_url,
            "AUTORATER_STORE": str(s.store), "AUTORATER_DVC_REMOTE": s.dvc_remote,
            "AUTORATER_DATA": str(s.data_root), "AUTORATER_EVENTS": "0", "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1", "PYTHONPATH": str(PROJECT_ROOT), "COLUMNS": "200", "TMPDIR": str(tmpdir),
            **settings}


@dataclass
class Outcome:
    rc: int | None
    """Exit status; None when the process was killed."""
    seconds: float
    out: str
    err: str
    writing_at: float | None = None
    """Seconds from the start to when it started writing into the store (None: it did not)."""

    def json(self) -> dict:
        assert self.rc == 0, self.err[-3000:]
        return json.loads(self.out)


def _writing(s, folder: Path) -> bool:
    """Whether the command is writing into the store: something in ``store/tmp`` (a Parquet file or
    a checkpoint folder on its way in) or a training temp folder in its ``$TMPDIR``."""
    tmp = Path(s.store) / "tmp"
    return (tmp.is_dir() and any(tmp.iterdir())) or any((folder / "tmp").glob("autorater-*"))


def _run(s, args: list[str], folder: Path, *, kill: tuple[str, float] | None = None,
         timeout: float = 300) -> Outcome:
    """Run ``autorater ARGS`` against registry ``s`` (its own process group and ``$TMPDIR``
    ``folder/tmp``; an evaluation with :data:`EVAL_SETTINGS`), noting when it starts writing into
    the store (:func:`_writing`). ``kill``: SIGKILL the group ``("at", t)`` t seconds after the
    start, or ``("writing", t)`` t seconds after it started writing, unless it ended first."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tmp").mkdir(exist_ok=True)
    when, delay = kill or ("", 0.0)
    with (folder / "out").open("w") as out, (folder / "err").open("w") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "registry.cli.main", *args], cwd=PROJECT_ROOT,
                                env=_env(s, folder / "tmp", **(EVAL_SETTINGS if args[0] == "eval" else {})),
                                stdout=out, stderr=err, start_new_session=True)
        writing_at = None
        deadline = delay if when == "at" else None
        killed = False
        try:
            while proc.poll() is None:
                now = time.monotonic() - t0
                if writing_at is None and _writing(s, folder):
                    writing_at = now
                    if when == "writing":
                        deadline = now + delay
                if deadline is not None and now >= deadline:
                    os.killpg(proc.pid, signal.SIGKILL)
                    killed = True
                    break
                assert now < timeout, f"autorater {' '.join(args)} still running after {timeout} s"
                time.sleep(0.005)
        finally:
            if proc.poll() is None and not killed:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        seconds = time.monotonic() - t0
    return Outcome(None if killed else proc.returncode, seconds, (folder / "out").read_text(),
                   (folder / "err").read_text(), writing_at)


def _moments(clean: Outcome, command: str) -> list[tuple[str, float]]:
    """Where to kill ``command``, drawn with a seeded RNG from its clean run: one moment in each of
    ``KILLS - 1`` equal slices of its duration, and one in its writing phase (from when it started
    writing into the store to its end: where the commits are)."""
    rng = random.Random(f"{SEED}:{command}")
    n = max(KILLS - 1, 1)
    moments = [("at", clean.seconds * (k + rng.random()) / n) for k in range(n)]
    assert clean.writing_at is not None, "the clean run wrote nothing into the store"
    return [*moments, ("writing", rng.uniform(0, clean.seconds - clean.writing_at))]


def _moment(kill: tuple[str, float], clean: Outcome, outcome: Outcome) -> str:
    when, delay = kill
    at = f"{delay:.2f} s" + (" into its writing phase" if when == "writing" else "")
    return (f"at {at} (clean run {clean.seconds:.2f} s, writing from {clean.writing_at:.2f} s): "
            + ("killed" if outcome.rc is None else "had ended"))


# ----------------------------------------------------------------------------- checks
def _check_intact(s) -> None:
    """Integrity of the database, and every row's stored file there, tracked and unchanged."""
    from registry.services.store_maintenance import referenced_paths, verify_store

    db = sqlite3.connect(s.home / "registry.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        db.close()
    reg = _open(s)
    try:
        for item in referenced_paths(reg):
            path = reg.artifacts.path(item)
            assert path.exists(), f"a database row names {item}, which is not in the store"
            assert Path(f"{path}.dvc").is_file(), f"{item} is registered but not DVC-tracked"
        for run in reg.store.list_runs(status="succeeded"):
            assert run.predictions_uri and run.predictions_sha256, f"run {run.id} succeeded without predictions"
        verified = verify_store(reg)
        assert verified.ok, verified.problems
    finally:
        reg.close()


def _gc(s) -> dict:
    """``autorater store gc --grace 0 --json`` (in this process: the killed one is gone)."""
    from typer.testing import CliRunner

    from registry.cli.main import app

    env = {k: v for k, v in _env(s, Path(s.home)).items() if k.startswith("AUTORATER_")}
    result = CliRunner().invoke(app, ["store", "gc", "--grace", "0", "--json"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _check_clean(s, folder: Path) -> None:
    """No orphan: every stored file belongs to a referenced item, or is a whole input sidecar of a
    registered version or a check marker of a referenced file as it is now; nothing in
    ``store/tmp``, every DVC cache object referenced, no run ``running``, no training temp folder
    in ``$TMPDIR``."""
    import pyarrow as pa

    from registry.services.store_maintenance import (DERIVED_DIR, VERIFIED_DIR, _cache_objects, _pointer_objects,
                                                     marker_live, referenced_paths, sidecar_live, version_prefixes)

    reg = _open(s)
    try:
        root, refs, prefixes = reg.artifacts.root, referenced_paths(reg), version_prefixes(reg)
        tmp = root / "tmp"
        assert not tmp.exists() or not list(tmp.iterdir()), list(tmp.iterdir())
        for p in root.rglob("*"):
            rel = p.relative_to(root)
            if p.is_dir() or rel.parts[0] == ".dvc" or rel.as_posix() == ".dvcignore":
                continue
            if len(rel.parts) == 3 and rel.name == ".gitignore":
                continue
            if rel.parts[0] == DERIVED_DIR:
                assert len(rel.parts) == 2 and sidecar_live(p.name, prefixes), f"stale sidecar in the store: {rel}"
                with pa.memory_map(str(p)) as source:  # whole: a killed writer never leaves half a sidecar
                    pa.ipc.open_file(source).read_all()
                continue
            if rel.parts[0] == VERIFIED_DIR:
                assert len(rel.parts) == 2 and marker_live(reg, p, refs), f"stale check marker in the store: {rel}"
                continue
            item = "/".join(rel.parts[:3]).removesuffix(".dvc")
            assert item in refs, f"orphan file in the store: {rel}"
        cached = {key for key, _ in _cache_objects(reg.artifacts)}
        assert cached <= _pointer_objects(reg.artifacts, skip=set()), cached - _pointer_objects(reg.artifacts, set())
        assert not reg.store.list_runs(status="running")
    finally:
        reg.close()
    left = [p.name for p in (folder / "tmp").glob("autorater-*")] if (folder / "tmp").exists() else []
    assert not left, f"left in $TMPDIR: {left}"


def _after_kill(s, folder: Path, running: list[int]) -> dict:
    """The checks every kill gets (module docstring); returns what ``store gc`` did."""
    _check_intact(s)
    gc = _gc(s)
    assert gc["reaped"] == sorted(running)  # the killed process's running rows, marked abandoned
    _check_clean(s, folder)
    return gc


def _gc_note(gc: dict) -> str:
    return f"gc: {len(gc['tmp'])} tmp, {len(gc['orphans'])} orphan(s), {len(gc['cache_objects'])} cache, " \
           f"reaped {gc['reaped']}"


def _predictions(reg, run) -> dict[str, list]:
    from registry.services.evaluation import load_predictions

    table = load_predictions(reg, run)
    return {c: table.column(c).to_pylist() for c in ("example_id", "order", "sample", "verdict", "score", "parsed")}


# ----------------------------------------------------------------------------- the tests
def test_killed_dataset_register(base, inputs, tmp_path):
    args = ["dataset", "register", "big", "--source", "generic", "--task-type", "pairwise",
            "--path", str(inputs["big"]), *_map_args(), "--json"]
    clean = _run(_clone(base, tmp_path / "clean"), args, tmp_path / "clean-run")
    ref = clean.json()
    expected = (1, ref["content_hash"], REGISTER_ROWS)
    assert ref["created"] and (ref["version"], ref["content_hash"], ref["rows"]) == expected

    def versions(s):
        reg = _open(s)
        try:
            found = [(v.version, v.content_hash, v.row_count) for d in reg.store.list_datasets()
                     if d.name == "big" for v in reg.store.list_versions("big")]
            for v in ([reg.store.get_version("big")] if found else []):
                assert reg.artifacts.read_parquet(v.storage_uri).num_rows == REGISTER_ROWS
            return found
        finally:
            reg.close()

    for k, kill in enumerate(_moments(clean, "register")):
        s, folder = _clone(base, tmp_path / f"kill-{k}"), tmp_path / f"kill-{k}-run"
        killed = _run(s, args, folder, kill=kill)
        after = versions(s)
        assert after in ([], [expected]), after  # nothing, or the whole version
        gc = _after_kill(s, folder, running=[])
        again = _run(s, args, folder / "again").json()
        assert (again["version"], again["content_hash"], again["rows"]) == expected
        assert again["created"] == (not after)
        assert versions(s) == [expected]
        _check_intact(s)
        _check_clean(s, folder)
        REPORT.append(f"dataset register: kill {k} {_moment(kill, clean, killed)}: "
                      f"{'version committed' if after else 'no version'}; {_gc_note(gc)}; "
                      f"re-run {'created' if again['created'] else 'unchanged'} {again['dataset']}@{again['version']}")


def _eval_args(evaluator: str) -> list[str]:
    return ["eval", "run", "--evaluator", evaluator, "--dataset", "small@1",
            "--n-boot", "20", "--json"]


def test_killed_eval_run(base, tmp_path):
    from registry.services.claims import ABANDONED

    args = _eval_args("longer")
    s0 = _clone(base, tmp_path / "clean")
    clean = _run(s0, args, tmp_path / "clean-run")
    ref = clean.json()
    assert ref["status"] == "succeeded" and ref["n_cached"] == 0
    reg = _open(s0)
    try:
        expected = _predictions(reg, reg.store.get_run(ref["id"]))
    finally:
        reg.close()

    for k, kill in enumerate(_moments(clean, "eval run")):
        s, folder = _clone(base, tmp_path / f"kill-{k}"), tmp_path / f"kill-{k}-run"
        killed = _run(s, args, folder, kill=kill)
        reg = _open(s)
        try:
            rows = reg.store.list_runs(evaluator="longer")
            saved = reg.store.count_judgments(reg.store.get_evaluator("longer").sha256)
        finally:
            reg.close()
        assert len(rows) <= 1 and {r.status for r in rows} <= {"running", "succeeded"}, rows
        running = [r.id for r in rows if r.status == "running"]
        gc = _after_kill(s, folder, running=running)
        done = [r for r in rows if r.status == "succeeded"]
        if not done:
            again = _run(s, args, folder / "again").json()
            assert again["status"] == "succeeded"
            assert again["n_cached"] == saved and again["n_cached"] + again["n_executed"] == ref["n_executed"]
        reg = _open(s)
        try:
            runs = reg.store.list_runs(evaluator="longer")
            [run] = [r for r in runs if r.status == "succeeded"]
            assert {(r.id, r.status, r.error) for r in runs if r.id != run.id} == {
                (i, "failed", ABANDONED) for i in running}
            assert _predictions(reg, run) == expected
        finally:
            reg.close()
        _check_intact(s)
        _check_clean(s, folder)
        REPORT.append(f"eval run: kill {k} {_moment(kill, clean, killed)}: "
                      f"{'run succeeded' if done else f'{len(running)} running row(s)'}, {saved} judgment(s) saved; "
                      f"{_gc_note(gc)}; " + ("not re-run" if done else
                                             f"re-run: {again['n_cached']} cached, {again['n_executed']} executed"))


def test_killed_eval_matrix(base, tmp_path):
    from registry.services.claims import ABANDONED

    args = ["eval", "matrix", "--checkpoints", ",".join(f"{h}@1" for h in HEURISTICS), "--protocols",
            "score-both-orders", "--datasets", "small@1", "--config", "orders=[0]",
            "--n-boot", "20", "--json"]
    s0 = _clone(base, tmp_path / "clean")
    clean = _run(s0, args, tmp_path / "clean-run")
    cells = clean.json()["cells"]
    assert len(cells) == len(HEURISTICS) and {c["status"] for c in cells} == {"ran"}
    reg = _open(s0)
    try:
        expected = {c["evaluator"]: _predictions(reg, reg.store.get_run(c["run_id"])) for c in cells}
    finally:
        reg.close()

    def state(s):
        """evaluator → (its run rows, judgments in its cache), for the matrix's evaluators that exist."""
        reg = _open(s)
        try:
            names = {e.name for e in reg.store.list_evaluators()}
            return {ev: (reg.store.list_runs(evaluator=ev), reg.store.count_judgments(reg.store.get_evaluator(ev).sha256))
                    for ev in expected if ev in names}
        finally:
            reg.close()

    for k, kill in enumerate(_moments(clean, "eval matrix")):
        s, folder = _clone(base, tmp_path / f"kill-{k}"), tmp_path / f"kill-{k}-run"
        killed = _run(s, args, folder, kill=kill)
        after = state(s)
        for ev, (rows, _) in after.items():
            assert len(rows) <= 1 and {r.status for r in rows} <= {"running", "succeeded"}, (ev, rows)
        running = [r.id for rows, _ in after.values() for r in rows if r.status == "running"]
        done = {ev for ev, (rows, _) in after.items() if any(r.status == "succeeded" for r in rows)}
        gc = _after_kill(s, folder, running=running)
        again = _run(s, args, folder / "again").json()  # cells already run are skipped: always re-run
        reg = _open(s)
        try:
            for cell in again["cells"]:
                ev = cell["evaluator"]
                assert cell["status"] == ("cached" if ev in done else "ran"), cell
                if ev not in done:  # what the killed process saved is reused, exactly
                    assert reg.store.get_run(cell["run_id"]).n_cached == after.get(ev, ((), 0))[1]
                runs = reg.store.list_runs(evaluator=ev)
                [run] = [r for r in runs if r.status == "succeeded"]
                assert run.id == cell["run_id"]
                assert all((r.status, r.error) == ("failed", ABANDONED) for r in runs if r.id != run.id)
                assert _predictions(reg, run) == expected[ev]
        finally:
            reg.close()
        _check_intact(s)
        _check_clean(s, folder)
        saved = {ev.split("/")[0]: n for ev, (_, n) in after.items()}
        REPORT.append(f"eval matrix: kill {k} {_moment(kill, clean, killed)}: {len(done)} pair(s) done, "
                      f"{len(running)} running, judgments saved {saved}; {_gc_note(gc)}; re-run "
                      + ", ".join(f"{c['status']}" for c in again["cells"]))


def test_killed_train_run(catalog, tmp_path):
    """``train run`` saves nothing until the end: a killed training restarts from the beginning and,
    seeded, trains the very same weights; the checkpoint is registered once."""
    import yaml

    from tests.conftest import tiny_mixture

    mixture = tmp_path / "tiny.yaml"
    mixture.write_text(yaml.safe_dump(tiny_mixture().to_dict()))
    args = ["train", "run", "--mixture", str(mixture), "--autorater", "kill-probe", "--steps", "3",
            "--batch-size", "4", "--max-length", "24", "--train-layers", "1", "--json"]
    clean = _run(_clone(catalog.settings, tmp_path / "clean"), args, tmp_path / "clean-run")
    ref = clean.json()
    assert ref["checkpoint"] == "kill-probe@1" and ref["created"]

    def checkpoints(s):
        reg = _open(s)
        try:
            return [(c.ref, c.lineage["checkpoint_sha256"], c.lineage["rows_used"])
                    for c in reg.store.list_checkpoints() if c.autorater == "kill-probe"]
        finally:
            reg.close()

    expected = ("kill-probe@1", ref["checkpoint_sha256"], ref["rows_used"])
    for k, kill in enumerate(_moments(clean, "train run")):
        s, folder = _clone(catalog.settings, tmp_path / f"kill-{k}"), tmp_path / f"kill-{k}-run"
        killed = _run(s, args, folder, kill=kill)
        after = checkpoints(s)
        assert after in ([], [expected]), after
        gc = _after_kill(s, folder, running=[])
        if not after:
            again = _run(s, args, folder / "again").json()
            assert (again["checkpoint"], again["checkpoint_sha256"], again["rows_used"]) == expected
        assert checkpoints(s) == [expected]
        _check_intact(s)
        _check_clean(s, folder)
        REPORT.append(f"train run: kill {k} {_moment(kill, clean, killed)}: "
                      f"{'checkpoint committed' if after else 'no checkpoint'}; {_gc_note(gc)}; "
                      + ("not re-run" if after else "re-run registered the same weights"))


# ----------------------------------------------------------------------------- the commits, precisely
_KILLED_AT_ADD_CHECKPOINT = """
import os, signal, sys
from registry.services.app import RegistryContext
from registry.services.evaluators import register_checkpoint
reg = RegistryContext.open()
commit = reg.store.add_checkpoint
def add_checkpoint(**kw):
    if sys.argv[2] == "after":
        commit(**kw)
    os.kill(os.getpid(), signal.SIGKILL)
reg.store.add_checkpoint = add_checkpoint
register_checkpoint(reg, "tiny-scorer", kind="encoder-scorer", path=sys.argv[1])
"""


@pytest.mark.parametrize("when", ["before", "after"])
def test_checkpoint_killed_at_its_commit(base, tmp_path, when):
    """SIGKILL just before and just after the checkpoint row is committed: before, the folder (placed
    and DVC-tracked) is an orphan that ``store gc`` removes with its pointer and cache objects; after,
    the checkpoint is whole and DVC-tracked (it used to be tracked only after the commit: a kill
    between them left a registered checkpoint that ``store push`` skipped)."""
    import numpy as np
    from safetensors.numpy import save_file

    s = _clone(base, tmp_path / "home")
    folder = tmp_path / "ckpt"
    (folder / "sub").mkdir(parents=True)
    save_file({"head.weight": np.full((64, 64), 0.5, dtype=np.float32)}, str(folder / "model.safetensors"))
    (folder / "sub" / "config.json").write_text("{}")
    env = _env(s, tmp_path)
    proc = subprocess.run([sys.executable, "-c", _KILLED_AT_ADD_CHECKPOINT, str(folder), when], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    reg = _open(s)
    try:
        registered = [c for c in reg.store.list_checkpoints() if c.autorater == "tiny-scorer"]
        assert len(registered) == (1 if when == "after" else 0)
        stored = {p.relative_to(reg.artifacts.root).as_posix() for p in (reg.artifacts.root / "checkpoints").rglob("*")}
    finally:
        reg.close()
    assert any(p.endswith(".dvc") for p in stored), stored  # tracked before the commit
    gc = _after_kill(s, tmp_path, running=[])
    assert len(gc["orphans"]) == (0 if when == "after" else 1)


def test_training_saves_its_checkpoint_inside_the_store(catalog, monkeypatch):
    """The trained checkpoint is saved in ``store/tmp`` before it is registered (it was saved in the
    system's temp folder, which a killed ``train run`` left behind and nothing removed)."""
    from registry.domain.training import TrainConfig
    from registry.services import evaluators
    from registry.services.training import train_autorater
    from tests.conftest import tiny_mixture

    seen = []

    class Stop(Exception):
        pass

    def register_checkpoint(reg, autorater, *, path, **kw):
        seen.append(Path(path))
        raise Stop

    monkeypatch.setattr(evaluators, "register_checkpoint", register_checkpoint)
    with pytest.raises(Stop):
        train_autorater(catalog, autorater="tmp-probe", mixture=tiny_mixture(),
                        config=TrainConfig(max_steps=1, batch_size=4, max_length=16, train_layers=0))
    [path] = seen
    assert path.is_relative_to(catalog.artifacts.root / "tmp"), path
    assert not path.exists()  # removed when registering fails
