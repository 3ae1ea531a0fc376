"""A registry filled the way a team's is (real LLMBar data, heuristic runs, an imported GPT-4 judge, two
versions of a dataset, an open regression, a hostile dataset whose texts hold markup), shared by the
API, page and browser tests of one session, and the app that serves it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services.conftest import GPTOUT, NATURAL, relabelled

TOKEN = "test-token-0123456789-abcdef"
"""The bearer token writes need in the tests."""
XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"><a href="javascript:window.__xss=3">x</a>'
"""Markup in dataset texts: shown as text, never run."""


@dataclass
class WebRegistry:
    """The shared registry: its settings, the open facade and what was put in it."""

    reg: object
    settings: object
    natural_v1: str
    natural_v2: str
    gptout: str
    hostile: str
    runs: dict[str, int]
    """evaluator name → id of its run on ``natural_v2``."""
    regression_id: int


def _register_rows(reg, name: str, rows: list[dict], path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return reg.register_dataset(name, source="llmbar", path=path).version


def new_registry(base: Path, data_root: Path):
    """``(registry, settings)``: a new SQLite registry under ``base``, with LLMBar Natural as
    ``llmbar-natural@1``, and the rows of that file."""
    from registry import api
    from registry.config import Settings

    settings = Settings.from_env(home=str(base / "home"), db_url=f"sqlite:///{base / 'home' / 'registry.db'}",
                                 store=str(base / "home" / "store"), dvc_remote=str(base / "remote"),
                                 data_root=str(data_root))
    reg = api.init(settings=settings)
    reg.register_dataset("llmbar-natural", source="llmbar", path=data_root / NATURAL)
    return reg, settings, json.loads((data_root / NATURAL).read_text())


@pytest.fixture(scope="session")
def web_registry(tmp_path_factory, data_root) -> Iterator[WebRegistry]:
    base = tmp_path_factory.mktemp("web")
    reg, settings, rows = new_registry(base, data_root)
    v1 = reg.versions("llmbar-natural")[0]
    gptout = reg.register_dataset("llmbar-gptout", source="llmbar", path=data_root / GPTOUT).version
    v2 = _register_rows(reg, "llmbar-natural", relabelled(rows, 30), base / "inputs" / "natural-v2.json")
    hostile_rows = [dict(r, input=f"{XSS} {r['input']}", output_1=f"{r['output_1']} {XSS}") for r in rows[:40]]
    hostile = _register_rows(reg, "hostile-markup", hostile_rows, base / "inputs" / "hostile.json")
    from registry.services.evaluators import ensure_baselines

    ensure_baselines(reg._ctx, minilm=False)
    runs = {}
    for name in ("longer", "shorter", "random", "always-first"):
        for ref in (v1.ref, gptout.ref, hostile.ref):
            reg.evaluate(name, ref, n_boot=200)
        runs[name] = reg.evaluate(name, v2.ref, n_boot=200).id
    gpt4 = data_root / "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/evaluators/GPT-4/Vanilla/result.json"
    if gpt4.is_file():
        runs["gpt-4/llmbar-vanilla"] = reg.import_predictions("llmbar", gpt4, v2.ref,
                                                              evaluator="gpt-4/llmbar-vanilla", n_boot=200).id
    check = reg.detect_regressions(runs["longer"], n_boot=200)
    assert check.regressions, "the relabelled v2 must record a regression of `longer`"
    yield WebRegistry(reg=reg, settings=settings, natural_v1=v1.ref, natural_v2=v2.ref, gptout=gptout.ref,
                      hostile=hostile.ref, runs=runs, regression_id=check.regressions[0].id)
    reg.close()


@pytest.fixture(scope="session")
def app(web_registry):
    from registry.web.app import WebSettings, create_app

    return create_app(registry=web_registry.reg, web=WebSettings(token=TOKEN, public_read=True))


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(app) -> Iterator[str]:
    """The app served by uvicorn on 127.0.0.1 (a thread): its base URL, for the browser."""
    import uvicorn

    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def chromium_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven through Selenium (never a downloaded browser)."""
    paths = chromium_paths()
    if paths is None:
        if os.environ.get("AUTORATER_REQUIRE_BROWSER"):
            pytest.fail("chromium/chromedriver are required (AUTORATER_REQUIRE_BROWSER) but missing")
        pytest.skip("no chromium/chromedriver (scripts/ensure-chromium.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


SCREENSHOTS = Path(os.environ.get("AUTORATER_SCREENSHOTS", "")) if os.environ.get("AUTORATER_SCREENSHOTS") else None
"""Where the browser tests also copy their screenshots (e.g. ``docs/img``); they always write them to
the test's temporary folder."""
