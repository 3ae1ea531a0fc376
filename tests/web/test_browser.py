"""A user's path through the web app in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver`` through Selenium): catalog, search, a dataset, the diff of its two versions, the
leaderboard's chart, a run's disagreements, the hostile dataset (nothing runs), login and the
acknowledgement of a regression, the best-evaluator finder. Each main page is saved as a screenshot
in the test's folder and, with ``AUTORATER_SCREENSHOTS`` set, copied there (``docs/img``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.web.conftest import SCREENSHOTS, TOKEN

WAIT_S = 20


def _wait(driver, condition, timeout: float = WAIT_S):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _css(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def _drawn(driver, chart_id: str) -> None:
    """Wait until Plotly has drawn the figure into ``#chart_id`` (its SVG is there)."""
    _wait(driver, lambda d: _css(d, f"#{chart_id}[data-drawn='1'] svg.main-svg"))


def _no_alert(driver) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018


def _console_errors(driver) -> list[str]:
    """Severe browser console entries (script errors, CSP violations, failed loads)."""
    try:
        logs = driver.get_log("browser")
    except Exception:  # noqa: BLE001 - a driver without the log endpoint
        return []
    return [e["message"] for e in logs if e.get("level") == "SEVERE"]


class Shots:
    """Screenshots of the main pages: to the test's folder, and to :data:`SCREENSHOTS` when set."""

    def __init__(self, driver, folder: Path) -> None:
        self.driver, self.folder, self.saved = driver, folder, []

    def __call__(self, name: str, at: str | None = None) -> Path:
        """Save the viewport, scrolled to the top or to the element ``at`` (a CSS selector)."""
        if at is None:
            self.driver.execute_script("window.scrollTo(0, 0)")
        else:
            self.driver.execute_script("document.querySelector(arguments[0]).scrollIntoView()", at)
        path = self.folder / f"{name}.png"
        assert self.driver.save_screenshot(str(path)), name
        self.saved.append(path)
        if SCREENSHOTS is not None:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, SCREENSHOTS / path.name)
        return path


def test_a_user_walks_through_the_app(server, browser, web_registry, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    reg = web_registry.reg
    d = browser
    d.get(server + "/")
    inner = d.execute_script("return [window.innerWidth, window.innerHeight]")
    size = d.get_window_size()  # screenshots of a 1400 × 1000 viewport
    d.set_window_size(size["width"] + 1400 - inner[0], size["height"] + 1000 - inner[1])
    shot = Shots(d, tmp_path)

    # the overview
    d.get(server + "/")
    assert d.find_element(By.ID, "count-datasets").text == str(len(reg.datasets()))
    shot("overview")

    # the catalog, searched
    d.get(server + "/datasets")
    assert len(_css(d, "a.dataset-link")) == len(reg.datasets())
    shot("catalog")
    box = d.find_element(By.ID, "q")
    box.send_keys("natural", Keys.ENTER)
    _wait(d, lambda drv: "q=natural" in drv.current_url)
    links = _css(d, "a.dataset-link")
    assert [a.text for a in links] == ["llmbar-natural"]

    # a dataset: versions, charts
    links[0].click()
    _wait(d, lambda drv: drv.find_elements(By.ID, "versions"))
    assert "llmbar-natural" in d.find_element(By.TAG_NAME, "h1").text
    assert len(_css(d, "#versions li")) == len(reg.versions("llmbar-natural"))
    _drawn(d, "chart-labels")
    _drawn(d, "chart-lengths")
    labels = reg.dataset("llmbar-natural").version.statistics["label_distribution"]
    assert len(_css(d, "#chart-labels .bars path")) == len(labels)
    shot("dataset")

    # the diff of v1 and v2, from the form
    form = d.find_element(By.ID, "diff-form")
    Select(form.find_element(By.NAME, "a")).select_by_visible_text("v1")
    Select(form.find_element(By.NAME, "b")).select_by_visible_text("v2")
    form.find_element(By.TAG_NAME, "button").click()
    _wait(d, lambda drv: drv.find_elements(By.ID, "diff-summary"))
    diff = reg.diff(web_registry.natural_v1, web_registry.natural_v2).rows
    assert f"{len(diff.changed)} changed" in d.find_element(By.ID, "diff-summary").text
    assert _css(d, "tr.changed td.old") and _css(d, "tr.changed td.new")
    assert {e.text for e in _css(d, ".changed-field")} == {"label"}
    shot("diff")

    # the leaderboard of llmbar-natural: one marker per evaluator
    d.get(server + "/datasets/llmbar-natural")
    d.find_element(By.ID, "open-leaderboard").click()
    _drawn(d, "chart-leaderboard")
    board = reg.leaderboard(web_registry.natural_v2)
    points = _css(d, "#chart-leaderboard .scatterlayer .trace .points path.point")
    assert len(points) == len(board.standings) >= 5
    names = [e.text for e in _css(d, "#leaderboard .evaluator-name")]
    assert [n.split(" ")[0] for n in names] == [s.evaluator for s in board.standings]
    assert any("gpt-4/llmbar-vanilla" == n.split(" ")[0] for n in names)  # full names, never cut
    shot("leaderboard")

    # a run's disagreements (GPT-4's)
    gpt4 = web_registry.runs["gpt-4/llmbar-vanilla"]
    d.find_element(By.CSS_SELECTOR, f"a.run-link[href='/runs/{gpt4}']").click()
    _wait(d, lambda drv: drv.find_elements(By.ID, "disagreements"))
    assert d.find_element(By.ID, "run-evaluator").text == "gpt-4/llmbar-vanilla"
    cards = _css(d, ".disagreement")
    assert cards, "GPT-4 disagrees with the humans somewhere"
    first = cards[0]
    assert first.find_elements(By.CSS_SELECTOR, ".verdict") and len(first.find_elements(By.CSS_SELECTOR, ".text")) >= 3
    _drawn(d, "chart-confusion")
    shot("run")
    shot("run-disagreements", at="#disagreements")

    # the hostile dataset: its markup shows as text and nothing runs
    hostile = quote(web_registry.hostile, safe="")
    for url in (f"/rows/{hostile}", f"/datasets/{quote('hostile-markup')}", f"/leaderboard/{hostile}",
                f"/runs/{reg.runs(dataset=web_registry.hostile, evaluator='longer')[0].id}"):
        d.get(server + url)
        _wait(d, lambda drv: drv.execute_script("return document.readyState") == "complete")
        assert d.execute_script("return window.__xss") is None, url
        _no_alert(d)
        assert not d.execute_script("return document.querySelector('main img[src=x], main a[href^=javascript]')"), url
    d.get(server + f"/rows/{hostile}")
    assert "<script>window.__xss = 1</script>" in d.find_element(By.CSS_SELECTOR, ".text").text
    shot("rows-hostile")

    # log in and acknowledge the open regression
    rid = web_registry.regression_id
    d.get(server + "/regressions?status=open")
    assert _css(d, f"#regression-{rid}") and not _css(d, f"#regression-{rid} form.ack-form")
    d.find_element(By.LINK_TEXT, "Log in").click()
    d.find_element(By.ID, "token").send_keys(TOKEN, Keys.ENTER)
    _wait(d, lambda drv: drv.find_elements(By.CSS_SELECTOR, f"#regression-{rid} form.ack-form"))
    assert d.get_cookie("autorater_token")["httpOnly"] is True
    shot("regressions")
    ack = d.find_element(By.CSS_SELECTOR, f"#regression-{rid} form.ack-form")
    ack.find_element(By.NAME, "note").send_keys("v2 relabelled 30 examples on purpose")
    ack.find_element(By.NAME, "by").send_keys("browser-test")
    ack.find_element(By.TAG_NAME, "button").click()
    _wait(d, lambda drv: drv.find_elements(By.ID, "ack-notice"))
    g = next(g for g in reg.regressions() if g.id == rid)
    assert g.status == "acknowledged" and g.ack_note == "v2 relabelled 30 examples on purpose" and g.ack_by == "browser-test"
    assert "acknowledged" in d.find_element(By.ID, f"regression-{rid}").text

    # the best evaluator for pairwise datasets
    d.get(server + "/best")
    Select(d.find_element(By.ID, "best-task-type")).select_by_visible_text("pairwise")
    d.find_element(By.ID, "best-submit").click()
    _wait(d, lambda drv: drv.find_elements(By.ID, "best-answer"))
    best = reg.best(task_type="pairwise")
    assert d.find_element(By.ID, "best-name").text == best.best.evaluator
    assert [e.text for e in _css(d, ".tied-name")] == [s.evaluator for s in best.tied]
    _drawn(d, "chart-best")
    shot("best")

    # the matrix: a heatmap, each cell's run linked
    d.get(server + "/matrix")
    _drawn(d, "chart-matrix")
    assert len(_css(d, "#matrix a[href^='/runs/']")) >= len(web_registry.runs)
    shot("matrix")

    errors = [e for e in _console_errors(d) if "favicon" not in e]
    assert not errors, errors
    assert len(shot.saved) == 11 and all(p.stat().st_size > 10_000 for p in shot.saved)


def test_a_self_contained_page_draws_offline(browser, tmp_path):
    """What the HTML report does: figures and inline scripts in one file, opened with no server."""
    from registry.web import charts

    board = [{"evaluator": f"judge-{i}/<b>x</b>", "value": 0.5 + i / 20, "ci_low": 0.4 + i / 20,
              "ci_high": 0.6 + i / 20, "tied_with_best": i == 1} for i in range(3)]
    page = tmp_path / "report.html"
    page.write_text("<!doctype html><meta charset='utf-8'><body>"
                    + charts.render(charts.leaderboard_ci(board, metric="accuracy"), "board")
                    + charts.inline_scripts() + "</body>", encoding="utf-8")
    browser.get(page.as_uri())
    _drawn(browser, "board")
    assert len(_css(browser, "#board .scatterlayer .trace .points path.point")) == 3
    ticks = [e.text for e in _css(browser, "#board .ytick text")]
    assert "judge-0/<b>x</b>" in ticks  # a name with markup is shown as text
