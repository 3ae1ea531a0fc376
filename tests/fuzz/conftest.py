"""The fuzz tier's registry: one per test module (see :mod:`tests.fuzz.oracle`)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.fuzz.oracle import MAX_INPUT_MB, MAX_TEXT_CHARS, Fuzz, Guard
from tests.fuzz.report import SECONDS


@pytest.fixture(autouse=True)
def _cpu_seconds(request) -> Iterator[None]:
    """The CPU time of each fuzz test, for the summary (the tier's budget is CPU time on one core)."""
    start = time.process_time()
    yield
    SECONDS[request.node.name] += time.process_time() - start


def _settings(base, **kw):
    from registry.config import Settings

    home = base / "home"
    return Settings.from_env(home=str(home), db_url=f"sqlite:///{home / 'registry.db'}", store=str(home / "store"),
                             dvc_remote=str(base / "remote"), data_root=str(base / "data"),
                             max_text_chars=MAX_TEXT_CHARS, max_input_mb=MAX_INPUT_MB, **kw)


@pytest.fixture(scope="session")
def _fuzz_template(tmp_path_factory):
    """An initialised, empty registry made once per session; each module works on a copy (``autorater
    init`` — migrations and a DVC project — takes seconds)."""
    from registry import api

    base = tmp_path_factory.mktemp("fuzz-template")
    api.init(settings=_settings(base)).close()
    return base


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory, _fuzz_template) -> Iterator[Fuzz]:
    """A fresh registry for one test module (SQLite, small limits), checked byte for byte at the end."""
    import shutil

    from registry import api

    base = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(_fuzz_template / "home", base / "home", symlinks=True)
    (base / "remote").mkdir()
    with pytest.MonkeyPatch.context() as mp:  # the same limits for the CLI and readers that read the environment
        mp.setenv("AUTORATER_MAX_TEXT_CHARS", str(MAX_TEXT_CHARS))
        mp.setenv("AUTORATER_MAX_INPUT_MB", str(MAX_INPUT_MB))
        reg = api.open(settings=_settings(base))
        outside = base / "outside"
        outside.mkdir()
        fz = Fuzz(reg=reg, guard=Guard(reg), scratch=base / "inputs", home=base / "home", outside=outside)
        yield fz
        fz.guard.assert_unchanged("end of module", full=True)
        reg.close()
