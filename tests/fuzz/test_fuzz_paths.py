"""Fuzzed input paths: for every source adapter, the input (or, for a folder source, a file in it) is a
symlink to a valid file elsewhere, to a file outside the folder that is not the source's format, to
``/dev/zero`` or ``/dev/null``, a dangling symlink, a symlink loop, a symlink to a folder, a FIFO, a
folder, an empty file, a file over the input size limit, a gzip bomb, a path that does not exist, or a
valid file under an odd name. Only regular files (and folders where a format needs one) within the size
limit are read, and never a FIFO or a device; a valid file behind a symlink or under any name is
registered like the file itself."""

from __future__ import annotations

import gzip
import os
import threading
import time
from pathlib import Path
from typing import Any

from hypothesis import Phase, find, settings
from hypothesis import strategies as st

from tests.fuzz.oracle import MAX_INPUT_MB, Fuzz
from tests.fuzz.strategies import BENIGN, FATAL
from tests.fuzz.test_fuzz_sources import SOURCES, serialize, tiers


def _valid_file(adapter: str) -> tuple[str, bytes, dict[str, Any]]:
    """(file name, bytes, options) of a small valid input of ``adapter`` (the simplest records)."""
    if adapter == "generic":
        rows = b"".join(b'{"id": "%d", "q": "question %d", "a": "x", "b": "y", "w": "A"}\n' % (i, i) for i in range(3))
        return "data.jsonl", rows, {"mapping": {"example_id": "id", "instruction": "q", "response_a": "a",
                                                "response_b": "b", "label": "w"}}
    if adapter == "wmt-mqm":
        header = "system\tdoc\tdoc_id\tseg_id\trater\tsource\ttarget\tcategory\tseverity\n"
        return "mqm.tsv", (header + "s\td\t1\t1\tr\tsrc\ttgt\tNo-error\tNo-error\n").encode(), {}
    src = SOURCES[adapter]
    once = settings(max_examples=1, phases=[Phase.generate], database=None, derandomize=True)
    records = [find(src.record(i), lambda r: True, settings=once) for i in range(2)]  # a first valid one
    return "data" + src.suffix, serialize(src.layout, records, ascii_only=True), dict(src.options)


ADAPTERS = sorted([*SOURCES, "generic", "wmt-mqm", "hanna"])
VALID = {adapter: _valid_file(adapter) for adapter in ADAPTERS if adapter != "hanna"}
"""A valid input of each adapter, made once (outside the tests: ``find`` is a search of its own)."""
HANNA = {"hanna_metric_scores_llm.csv": b'Model,Relevance,Human 1 RE,Human 2 RE,Human 3 RE\n'
                                        b'Human,"[2.0]","[1]","[2]","[3]"\n',
         "hanna_llm_stories.csv": b"Prompt,Human\nA prompt,A story\n"}
KINDS = ["symlink_valid", "symlink_outside_text", "symlink_etc", "devzero", "devnull", "dangling", "loop",
         "symlink_folder", "fifo", "folder", "empty", "huge", "gzip_bomb", "missing", "odd_name", "folder_symlink"]


def _fifo(path: Path) -> None:
    """A FIFO; a thread opens its writing end after 5 s, so a reader that (wrongly) opened it ends."""
    os.mkfifo(path)

    def release() -> None:
        time.sleep(5)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass

    threading.Thread(target=release, daemon=True).start()


ODD_NAMES = ["da ta.json", "dätä.json", "[red]x.json", "-rf.json", "new\nline.json", "%s{0}.json", "..json",
             "a" * 200 + ".json", "\u202egnp.json"]


def _make(fz: Fuzz, adapter: str, kind: str, odd: str) -> tuple[Path, str, Path | None]:
    """(the path to register, its expectation, the path the error must name)."""
    folder = fz.folder()
    if adapter == "hanna":  # a folder source: the files in it are the hostile ones
        target = folder / "hanna"
        target.mkdir()
        for name, data in HANNA.items():
            (target / name).write_bytes(data)
        victim = target / "hanna_llm_stories.csv"
        valid = HANNA["hanna_llm_stories.csv"]
        suffix = ".csv"
    else:
        name, valid, _ = VALID[adapter]
        suffix = "".join(Path(name).suffixes)
        target = victim = folder / name
    outside = fz.outside / f"{kind}-{fz.n}{suffix}"
    if kind in ("symlink_valid", "folder_symlink", "odd_name"):
        if kind == "odd_name" and adapter != "hanna":
            victim = folder / (odd.replace(".json", suffix))
            target = victim
            victim.write_bytes(valid)
            return target, BENIGN, victim
        if kind == "folder_symlink" and adapter != "hanna":  # the file inside a symlinked folder
            real = fz.outside / f"real-{fz.n}"
            real.mkdir()
            (real / victim.name).write_bytes(valid)
            (folder / "linked").symlink_to(real)
            return folder / "linked" / victim.name, BENIGN, folder / "linked" / victim.name
        outside.write_bytes(valid)
        if victim.exists():
            victim.unlink()
        victim.symlink_to(outside)
        return target, BENIGN, victim
    if victim.exists():
        victim.unlink()
    if kind == "symlink_outside_text":
        outside.write_bytes(b"not the source's format \x00\xff at all\n" * 3)
        victim.symlink_to(outside)
    elif kind == "symlink_etc":
        victim.symlink_to("/etc/passwd" if Path("/etc/passwd").exists() else "/etc/hostname")
    elif kind == "devzero":
        victim.symlink_to("/dev/zero")
    elif kind == "devnull":
        victim.symlink_to("/dev/null")
    elif kind == "dangling":
        victim.symlink_to(folder / "nowhere")
    elif kind == "loop":
        victim.symlink_to(folder / "loop2")
        (folder / "loop2").symlink_to(victim)
    elif kind == "symlink_folder":
        victim.symlink_to(fz.outside)
    elif kind == "fifo":
        _fifo(victim)
    elif kind == "folder":
        victim.mkdir()
    elif kind == "empty":
        victim.write_bytes(b"")
    elif kind == "huge":
        victim.write_bytes(valid + b" " * int(MAX_INPUT_MB * 2**20 + 10))
    elif kind == "gzip_bomb":
        victim = victim.with_name(victim.name + ".gz")
        if adapter != "hanna":
            target = victim
        victim.write_bytes(gzip.compress(valid + b" " * int(MAX_INPUT_MB * 2**20 + 10)))
        if adapter == "hanna":  # the stories file is gone (only its .gz is there)
            return target, FATAL, target
    elif kind == "missing":
        pass
    else:
        raise AssertionError(kind)
    return target, FATAL, victim if kind != "missing" or adapter != "hanna" else victim


def check_path(fz: Fuzz, drawn: tuple[str, str, str]) -> None:
    adapter, kind, odd = drawn
    path, expect, named = _make(fz, adapter, kind, odd)
    options = {"criterion": "Relevance"} if adapter == "hanna" else VALID[adapter][2]
    task_type = "pairwise" if adapter == "generic" else None
    result = fz.attempt(f"paths/{adapter}", lambda: fz.reg.register_dataset(
        f"fz-path-{adapter}", source=adapter, path=path, task_type=task_type, options=options),
        expect=expect, files=[named, path], what=f"{kind} {odd!r}")
    if result is not None:
        assert result.version.row_count >= 1
        assert fz.reg.load_table(result.version.ref).num_rows == result.version.row_count


paths = st.tuples(st.sampled_from(ADAPTERS), st.sampled_from(KINDS)).flatmap(
    lambda t: st.tuples(st.just(t[0]), st.just(t[1]), st.sampled_from(ODD_NAMES) if t[1] == "odd_name"
                        else st.just("")))
test_paths_fast, test_paths = tiers("paths", paths, check_path, 16, 400)
