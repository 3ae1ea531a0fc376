"""The oracle every generated input is judged by, and the "nothing changed" guard.

One registry per test module (the ``fuzz`` fixture in ``conftest.py``), on SQLite, with small limits so that "huge" inputs are
cheap to make: texts over :data:`MAX_TEXT_CHARS` characters and input files over :data:`MAX_INPUT_MB`.

Every generated input either

* is refused with a clear error: an :class:`~registry.errors.InvalidInput` (exit code 2) whose message
  names the file (and the row and field where the input has them), no other exception (a ``KeyError``,
  ``TypeError``, ``RecursionError``... is a traceback on the command line: a failure), and the database
  and the store exactly as they were (:class:`Guard`); or
* is accepted, when it is valid, and then registered / imported / created correctly (each test checks
  what it created; the guard takes the new state as its baseline).

Examples are tried at two sizes: a fast tier (a few examples per property, not marked ``slow``) and the
slow tier (``-m slow``; together at least 10,000 inputs, counted in :mod:`tests.fuzz.report`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, settings

from registry.errors import InvalidInput, RegistryError
from tests.conftest import CACHE_DIRS
from tests.fuzz.report import accepted, count
from tests.fuzz.strategies import BENIGN, FATAL

MAX_TEXT_CHARS = 4000
"""The fuzz registry's text limit (AUTORATER_MAX_TEXT_CHARS): a 'huge field' is a few KB."""
MAX_INPUT_MB = 0.25
"""The fuzz registry's input size limit (AUTORATER_MAX_INPUT_MB): a 'huge file' is 300 KB."""
FULL_CHECK_EVERY = 100
"""Every N-th refused input, the guard also hashes every store file and every database row."""


SHRINK = bool(os.environ.get("AUTORATER_FUZZ_SHRINK"))
"""Shrink a failing input to a minimal one (slow: each try registers); off by default, the failing input
is printed as generated."""


def fuzz_settings(n: int, **kw: Any) -> settings:
    """Deterministic Hypothesis settings for ``n`` examples (CI sees the same inputs every run)."""
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if SHRINK else [])
    return settings(max_examples=n, deadline=None, database=None, derandomize=True, print_blob=False, phases=phases,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.large_base_example,
                                           HealthCheck.function_scoped_fixture], **kw)


# ----------------------------------------------------------------------------- the guard


class Guard:
    """The registry's state before an input, to check that a refused input changed nothing.

    Cheap per input: the row count of every table and the store's file listing (path, size, mtime);
    every :data:`FULL_CHECK_EVERY` inputs and at the end of the module: the SHA-256 of every store
    file's bytes and of every database row."""

    def __init__(self, reg) -> None:
        self.ctx = reg._ctx  # the facade's context: its engine and artifact store
        self.root = Path(self.ctx.artifacts.root)
        self.refused = 0
        self.rebase()

    def tables(self) -> list[str]:
        import sqlalchemy as sa

        return sorted(sa.inspect(self.ctx.store.engine).get_table_names())

    def counts(self) -> dict[str, int]:
        """The row count of every table (one statement)."""
        import sqlalchemy as sa

        query = "SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}")' for t in self._tables)
        with self.ctx.store.engine.connect() as conn:
            return dict(zip(self._tables, conn.execute(sa.text(query)).one()))

    def _files(self) -> Iterator[tuple[str, os.DirEntry]]:
        """(path relative to the store, entry) of every file of the store, DVC's cache included (its locks
        and temp folder excluded, and the evaluation caches: a refused input may read a stored version,
        whose passed content check leaves a marker — ``tests.conftest.CACHE_DIRS``)."""
        pending = [("", str(self.root))]
        while pending:
            rel, folder = pending.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    name = f"{rel}{entry.name}"
                    if entry.is_dir(follow_symlinks=False):
                        if name != ".dvc/tmp" and name not in CACHE_DIRS:
                            pending.append((name + "/", entry.path))
                    else:
                        yield name, entry

    def listing(self) -> dict[str, tuple[int, int, int]]:
        out = {}
        for name, entry in self._files():
            st = entry.stat(follow_symlinks=False)
            out[name] = (st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode))
        return out

    def digest(self) -> str:
        """SHA-256 over every store file's path and bytes and every row of every table."""
        import sqlalchemy as sa

        h = hashlib.sha256()
        for name, entry in sorted(self._files(), key=lambda f: f[0]):
            with open(entry.path, "rb") as fh:
                h.update(name.encode() + b"\0" + fh.read() + b"\0")
        with self.ctx.store.engine.connect() as conn:
            for t in self._tables:
                rows = sorted(repr(tuple(r)) for r in conn.execute(sa.text(f'SELECT * FROM "{t}"')))
                h.update(t.encode() + b"\0" + "\n".join(rows).encode("utf-8", "surrogatepass") + b"\0")
        return h.hexdigest()

    def rebase(self) -> None:
        """The current state is the baseline (after an accepted input changed it)."""
        self._tables = self.tables()
        self.base_counts, self.base_listing, self.base_digest = self.counts(), self.listing(), self.digest()

    def assert_unchanged(self, what: str, *, full: bool = False) -> None:
        counts = self.counts()
        assert counts == self.base_counts, f"{what}: refused, but the database changed: " \
            f"{ {t: (self.base_counts.get(t), n) for t, n in counts.items() if self.base_counts.get(t) != n} }"
        listing = self.listing()
        if listing != self.base_listing:
            added = sorted(set(listing) - set(self.base_listing))
            gone = sorted(set(self.base_listing) - set(listing))
            changed = sorted(k for k in set(listing) & set(self.base_listing) if listing[k] != self.base_listing[k])
            raise AssertionError(f"{what}: refused, but the store changed: added {added[:5]}, removed {gone[:5]}, "
                                 f"changed {changed[:5]}")
        self.refused += 1
        if full or self.refused % FULL_CHECK_EVERY == 0:
            assert self.digest() == self.base_digest, f"{what}: refused, but a stored byte or a row changed"


# ----------------------------------------------------------------------------- the registry


@dataclass
class Fuzz:
    """A module's registry (the Python facade), its guard and a scratch folder for generated inputs."""

    reg: Any
    guard: Guard
    scratch: Path
    home: Path
    outside: Path
    """A folder outside the scratch folder (targets of symlinks that leave the input's folder)."""
    n: int = 0
    versions: set[str] = field(default_factory=set)
    """The dataset versions (``name@N``) accepted inputs registered."""

    def __repr__(self) -> str:
        return f"<Fuzz registry at {self.home}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # how Hypothesis prints a failing example
        p.text(repr(self))

    def folder(self) -> Path:
        """A fresh, empty folder for one generated input (the previous one is removed)."""
        self.n += 1
        shutil.rmtree(self.scratch, ignore_errors=True)
        folder = self.scratch / f"in{self.n}"
        folder.mkdir(parents=True)
        return folder

    def attempt(self, target: str, call: Callable[[], Any], *, expect: str, files: list[Path] | Path | None,
                located: bool = False, what: str = "") -> Any:
        """Run ``call`` on one generated input and judge the outcome (module docstring); returns its result,
        or ``None`` when it was refused. ``files``: the input file(s) the error must name; ``located``:
        the input was damaged inside a record, so the error must also name a row or a field."""
        count(target)
        try:
            result = call()
        except RegistryError as exc:
            check_clear_error(exc, files, located=located, what=f"{target} {what}")
            assert expect != BENIGN, f"{target}: a valid input was refused: {exc} ({what})"
            self.guard.assert_unchanged(f"{target} {what}")
            return None
        accepted(target)
        self.guard.rebase()  # whatever else is checked, the next input starts from here
        assert expect != FATAL, f"{target}: an input that must be refused was accepted ({what}): {result!r:.300}"
        return result


def check_clear_error(exc: RegistryError, files: list[Path] | Path | None, *, located: bool, what: str) -> None:
    """A refusal the user can act on: exit code 2, the file named (and a row or field), no traceback."""
    text = str(exc)
    assert isinstance(exc, InvalidInput) and exc.exit_code == 2, \
        f"{what}: refused with {type(exc).__name__} (exit {exc.exit_code}), not InvalidInput (exit 2): {text}"
    assert "Traceback" not in text and text.strip(), f"{what}: unclear message {text!r}"
    if files is not None:
        files = [files] if isinstance(files, Path) else files
        named = exc.file is not None and any(_names(Path(exc.file), f) for f in files)
        assert named, f"{what}: the error does not name the input file {[str(f) for f in files]}: {text}"
        assert exc.file in text
    if located:
        assert exc.row is not None or exc.field is not None, f"{what}: the error names no row or field: {text}"


def _names(named: Path, given: Path) -> bool:
    """Whether ``named`` is the input ``given`` or a file inside it (a folder input)."""
    return named == given or given in named.parents


__all__ = ["FULL_CHECK_EVERY", "Fuzz", "Guard", "MAX_INPUT_MB", "MAX_TEXT_CHARS", "check_clear_error",
           "fuzz_settings"]
