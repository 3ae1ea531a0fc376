"""``autorater report``: one self-contained HTML file of the registry — the leaderboards with the
values of ``reg.leaderboard``, the headline matrix and the open regressions; no network reference,
Plotly inlined; every name escaped (a registry whose folder name holds markup); drawn offline by a
real headless Chromium (one marker per evaluator); written by the CLI, which refuses ``--out`` in the
store or onto a folder (exit 2, nothing written)."""

from __future__ import annotations

import dataclasses
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.web.conftest import SCREENSHOTS, XSS

MARKUP_DIR = "home <img src=x onerror=window.__xss=1>"
"""The small registry's folder: its name holds markup, and the report's header shows the store path."""


class _Page(HTMLParser):
    """What the tests read from a report: the leaderboard tables, the matrix, the regression rows,
    every ``<script>`` start tag and every ``src``/``href`` (script contents are not parsed as tags)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.boards: dict[str, list[dict]] = {}
        self.matrix: dict[tuple[str, str], str] = {}
        self.regressions: list[str] = []
        self.scripts: list[dict] = []
        self.links: list[tuple[str, str]] = []
        self._board: list[dict] | None = None
        self._row: dict | None = None
        self._matrix_row: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.links += [(k, a[k]) for k in ("src", "href") if k in a]
        if tag == "script":
            self.scripts.append(a)
        elif tag == "table" and "leaderboard" in a.get("class", "").split():
            self._board = self.boards.setdefault(a["data-dataset"], [])
        elif tag == "tr" and "data-evaluator" in a:
            if self._board is not None:
                self._row = {"evaluator": a["data-evaluator"], "class": a.get("class", "")}
                self._board.append(self._row)
            else:
                self._matrix_row = a["data-evaluator"]
        elif tag == "tr" and "data-regression" in a:
            self.regressions.append(a["data-regression"])
        elif tag == "td" and self._row is not None:
            for name in ("value", "delta", "p"):
                if name in a.get("class", "").split():
                    self._row[name] = a["data-value"]
        elif tag == "td" and self._matrix_row is not None and "data-value" in a:
            self.matrix[(self._matrix_row, a["data-dataset"])] = a["data-value"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._board, self._row, self._matrix_row = None, None, None


def _open_as_recorded(reg, regression_id: int):
    """``reg``, or — when the browser test of this session already acknowledged the fixture's
    regression — ``reg`` seeing that regression as it was recorded (open)."""
    if any(g.id == regression_id for g in reg.regressions(status="open")):
        return reg
    g = next(g for g in reg.regressions() if g.id == regression_id)
    recorded = dataclasses.replace(g, status="open", ack_note=None, ack_by=None, acked_at=None)

    class AsRecorded:
        def __getattr__(self, name: str):
            return getattr(reg, name)

        def regressions(self, *, status: str | None = None, **kw):
            found = [x for x in reg.regressions(status=status, **kw) if x.id != regression_id]
            return [recorded, *found] if status in (None, "open") and not kw else found

    return AsRecorded()


@pytest.fixture(scope="module")
def shared_report(web_registry, tmp_path_factory) -> tuple[Path, str, object]:
    """The report of the shared registry (default datasets), written with :meth:`Registry.report`."""
    from registry.api import Registry

    reg = _open_as_recorded(web_registry.reg, web_registry.regression_id)
    out = tmp_path_factory.mktemp("report") / "report.html"
    path = Registry.report(reg, out)  # the facade's method, on the registry as the test sees it
    assert path == out
    return path, path.read_text(encoding="utf-8"), reg


def _without_inline_scripts(text: str) -> str:
    from registry.web import charts

    inline = str(charts.inline_scripts())
    assert text.count(inline) == 1
    return text.replace(inline, "")


# ---------------------------------------------------------------------------- (a) content
def test_report_holds_the_leaderboards_matrix_and_open_regression(shared_report, web_registry):
    _, text, reg = shared_report
    page = _Page(text)
    # default: the latest version of every dataset with a run
    latest_with_runs = {web_registry.natural_v2, web_registry.gptout, web_registry.hostile}
    assert set(page.boards) == latest_with_runs
    assert web_registry.natural_v1 not in page.boards
    for ref, rows in page.boards.items():
        ranking = reg.leaderboard(ref)
        assert [r["evaluator"] for r in rows] == [s.evaluator for s in ranking.standings], ref
        for i, (row, s) in enumerate(zip(rows, ranking.standings)):
            assert (row["value"], row["delta"], row["p"]) == (str(s.value), str(s.difference), str(s.p_value)), ref
            assert ("tied" in row["class"].split()) == (i > 0 and s.tied_with_best), (ref, s)
        assert rows[0]["class"] == "best"
        assert f'data-metric="{ranking.metric}"' in text
    assert "gpt-4/llmbar-vanilla" in {r["evaluator"] for r in page.boards[web_registry.natural_v2]}
    # the matrix: every cell of the headline matrix on those versions
    m = reg.headline_matrix()
    cells = {(c.evaluator, c.dataset): str(c.value) for c in m.cells if c.dataset in latest_with_runs}
    assert page.matrix == cells and len(cells) >= 12
    # the open regression, not acknowledged by this test
    assert page.regressions == [str(g.id) for g in reg.regressions(status="open")]
    assert str(web_registry.regression_id) in page.regressions
    assert f'id="count-open">{len(page.regressions)}<' in text


def test_report_of_chosen_datasets_and_task_type(web_registry):
    from registry.errors import InvalidInput, NotFound
    from registry.web.report import build_report

    reg = web_registry.reg
    page = _Page(build_report(reg, [web_registry.natural_v1, "llmbar-gptout"]))
    assert list(page.boards) == [web_registry.natural_v1, web_registry.gptout]
    assert {d for _, d in page.matrix} == {web_registry.gptout}  # the matrix holds latest versions only
    assert not _Page(build_report(reg, task_type="pointwise")).boards
    with pytest.raises(InvalidInput):
        build_report(reg, task_type="ranking")
    with pytest.raises(InvalidInput):
        build_report(reg, ["llmbar-gptout"], task_type="pointwise")
    with pytest.raises(NotFound):
        build_report(reg, ["no-such-dataset"])


# ---------------------------------------------------------------------------- (b) self-contained
def test_report_needs_no_network_and_inlines_plotly(shared_report):
    from registry.web import charts

    _, text, _ = shared_report
    page = _Page(text)
    assert charts.plotly_js().decode("utf-8") in text and charts.BOOT_JS in text
    assert page.links and all(value.startswith("#") for attr, value in page.links), page.links
    assert not [v for attr, v in page.links if attr == "src"]
    rest = _without_inline_scripts(text)
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|<link\b|@import|url\(", rest, re.I), \
        re.search(r"https?://|<link\b|@import|url\(", rest, re.I)
    assert "<style>" in rest and ".tied-mark" in rest  # the web app's stylesheet, inlined


# ---------------------------------------------------------------------------- (c) escaping
def test_report_has_no_script_but_its_own(shared_report):
    _, text, _ = shared_report
    page = _Page(text)
    figures = len(page.boards) + 2  # a CI chart per leaderboard, the matrix heatmap, the ReIFE τ heatmap
    inline = [s for s in page.scripts if not s]
    data = [s for s in page.scripts if s]
    assert len(inline) == 2  # plotly.min.js and the drawing script
    assert len(data) == figures
    assert all(s == {"type": "application/json", "class": "plotly-figure", "data-target": s["data-target"]}
               for s in data)
    rest = _without_inline_scripts(text)
    assert len(re.findall(r"<script", rest, re.I)) == figures  # no other script element, not even in text
    assert len(re.findall(r"</script", rest, re.I)) == figures
    for part in ("window.__xss", "onerror", "javascript:"):  # the hostile dataset's texts are not in it
        assert part not in rest
    assert XSS not in text


# ---------------------------------------------------------------------------- the small registry, the CLI
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small registry whose folder name holds markup: a four-example preference set judged by three
    heuristics."""
    from registry import api
    from registry.config import Settings
    from registry.services.evaluators import ensure_baselines
    from tests.cli.conftest import register_prefs

    base = tmp_path_factory.mktemp("small-report")
    home = base / MARKUP_DIR
    settings = Settings.from_env(home=str(home), db_url=f"sqlite:///{home / 'registry.db'}",
                                 store=str(home / "store"), dvc_remote=str(base / "remote"), data_root=str(base))
    reg = api.init(settings=settings)
    register_prefs(reg._ctx, base)
    ensure_baselines(reg._ctx, minilm=False)
    for evaluator in ("longer", "shorter", "always-first"):
        reg.evaluate(evaluator, "my-prefs", n_boot=50)
    yield reg, base
    reg.close()


def test_cli_writes_the_report_and_refuses_the_store_and_folders(small, monkeypatch):
    from typer.testing import CliRunner

    from registry.cli.main import app
    from tests.conftest import point_env_at

    reg, base = small
    point_env_at(monkeypatch, reg.settings)
    runner = CliRunner()
    out = base / "out" / "report.html"
    result = runner.invoke(app, ["report", "--out", str(out), "--datasets", "my-prefs"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout and out.is_file()
    text = out.read_text(encoding="utf-8")
    page = _Page(text)
    assert [r["evaluator"] for r in page.boards["my-prefs@1"]] == [s.evaluator
                                                                   for s in reg.leaderboard("my-prefs").standings]
    # the folder name with markup is shown escaped in the header, never as a tag
    assert "&lt;img src=x onerror=window.__xss=1&gt;" in text and "<img" not in _without_inline_scripts(text)
    assert not [p for p in out.parent.iterdir() if p.name != "report.html"]  # no temporary file left

    store = Path(reg.settings.store)
    db = Path(reg.settings.db_url.removeprefix("sqlite:///"))
    before = {p: p.stat().st_mtime_ns for p in store.rglob("*")}
    folder = base / "a-folder"
    folder.mkdir()
    for target in (store / "report.html", store / "datasets" / "new" / "report.html", db, folder):
        size = db.stat().st_size
        result = runner.invoke(app, ["report", "--out", str(target)], catch_exceptions=False)
        assert result.exit_code == 2, (target, result.output)
        assert "error" in result.stderr
        assert db.stat().st_size == size
    assert {p: p.stat().st_mtime_ns for p in store.rglob("*")} == before  # nothing written in the store
    assert not any(folder.iterdir())
    result = runner.invoke(app, ["report", "--out", str(base / "x.html"), "--task-type", "ranking"])
    assert result.exit_code == 2 and not (base / "x.html").exists()


# ---------------------------------------------------------------------------- (d) in a real browser
def _wait(driver, condition, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _css(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def test_report_draws_offline_in_chromium(shared_report, small, browser, tmp_path):
    path, text, reg = shared_report
    page = _Page(text)
    browser.get(path.as_uri())
    for i, (ref, rows) in enumerate(page.boards.items(), 1):
        chart = f"#chart-leaderboard-{i}"
        _wait(browser, lambda d, c=chart: _css(d, f"{c}[data-drawn='1'] svg.main-svg"))
        assert len(_css(browser, f"{chart} .scatterlayer .trace .points path.point")) == len(rows), ref
        ticks = {e.text for e in _css(browser, f"{chart} .ytick text")}
        assert ticks == {r["evaluator"] for r in rows}, ref
    _wait(browser, lambda d: _css(d, "#chart-matrix[data-drawn='1'] svg.main-svg"))
    assert _css(browser, "#chart-matrix .heatmaplayer image") or _css(browser, "#chart-matrix .hm image")
    # nothing was fetched from the network: every resource the page loaded is the file itself
    fetched = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert not [u for u in fetched if not u.startswith(("file:", "data:", "blob:"))], fetched
    assert browser.execute_script("return typeof window.__xss") == "undefined"
    shot = tmp_path / "report.png"
    browser.execute_script("window.scrollTo(0, 0)")
    assert browser.save_screenshot(str(shot))
    if SCREENSHOTS is not None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOTS / shot.name)

    # the small registry's report: its folder name with markup is shown as text and runs nothing
    small_reg, base = small
    out = small_reg.report(base / "browser" / "report.html")
    browser.get(out.as_uri())
    _wait(browser, lambda d: _css(d, "#chart-leaderboard-1[data-drawn='1'] svg.main-svg"))
    assert MARKUP_DIR in _css(browser, "#report-store")[0].text
    assert not _css(browser, "header img") and browser.execute_script("return typeof window.__xss") == "undefined"


# ---------------------------------------------------------------------------- the demo's last step
def test_demo_ends_with_the_report_and_the_ui_command(small, monkeypatch, capsys):
    """``make demo``'s last step (``registry.demo.report_and_ui``) on a small registry: the report in the
    registry's home, and one command whose settings open that same registry."""
    import shlex

    from typer.testing import CliRunner

    from registry.config import Settings
    from registry.demo import report_and_ui
    from tests.conftest import point_env_at

    reg, _ = small
    point_env_at(monkeypatch, reg.settings)
    monkeypatch.delenv("AUTORATER_DB_URL")  # as `make demo` runs: AUTORATER_HOME only
    monkeypatch.delenv("AUTORATER_STORE")
    out, command = report_and_ui(CliRunner(), Settings.from_env())
    assert out == Path(reg.settings.home) / "report.html" and "my-prefs@1" in _Page(out.read_text("utf-8")).boards
    printed = capsys.readouterr().out
    assert f"web app on this registry: {command}" in printed and "http://127.0.0.1:8080/" in printed
    words = shlex.split(command)  # the home's name holds spaces and markup: quoted
    assert words[-1] == "ui" and words[-2].endswith("autorater")
    env = dict(w.split("=", 1) for w in words[:-2])
    assert env == {"AUTORATER_HOME": str(reg.settings.home)}
    monkeypatch.setenv("AUTORATER_HOME", env["AUTORATER_HOME"])
    assert Settings.from_env().db_url == reg.settings.db_url


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql+psycopg://alice:s3cr%40t@db:5432/reg", "postgresql+psycopg://alice:***@db:5432/reg"),
    ("postgresql://alice:p@ss@db/reg", "postgresql://alice:***@db/reg"),
    ("postgresql://db/reg", "postgresql://db/reg"),
    ("sqlite:////srv/a:b/registry.db", "sqlite:////srv/a:b/registry.db"),
])
def test_the_header_never_shows_a_database_password(url, shown):
    from registry.web.report import redact

    assert redact(url) == shown
