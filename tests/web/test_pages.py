"""The server-rendered pages through the TestClient: every page answers 200 with the registry's real
values (read through the Python API) in its HTML; texts holding markup are escaped; the acknowledge
form needs the login cookie and the CSRF token; figures embed JSON that cannot end its script."""

from __future__ import annotations

import html
import json
import re
from urllib.parse import quote

import pytest

from tests.web.conftest import TOKEN, XSS

RAW_MARKUP = ("<script>window.__xss", "<img src=x onerror", 'href="javascript:')


def _get(client, url: str) -> str:
    r = client.get(url)
    assert r.status_code == 200, (url, r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    for raw in RAW_MARKUP:
        assert raw not in r.text, (url, raw)
    return r.text


def _num(x: float) -> str:
    return f"{x:.3f}"


def test_overview_shows_counts_latest_versions_runs_and_open_regressions(client, web_registry):
    reg = web_registry.reg
    page = _get(client, "/")
    assert f'id="count-datasets">{len(reg.datasets())}<' in page
    assert f'id="count-open">{len(reg.regressions(status="open"))}<' in page
    for d in reg.datasets():
        assert f'href="/datasets/{quote(d.name, safe="")}"' in page and f"v{d.latest_version}" in page
    newest = reg.runs(limit=1)[0]
    assert f'href="/runs/{newest.id}"' in page and html.escape(newest.evaluator) in page
    for g in reg.regressions(status="open"):  # (the browser test may have acknowledged it already)
        assert f'href="/regressions#regression-{g.id}"' in page


def test_catalog_search_and_filters(client, web_registry):
    page = _get(client, "/datasets")
    for d in web_registry.reg.datasets():
        assert f">{d.name}</a>" in page
    page = _get(client, "/datasets?q=NATUR")
    assert ">llmbar-natural</a>" in page and ">llmbar-gptout</a>" not in page and ">hostile-markup</a>" not in page
    page = _get(client, "/datasets?task_type=pointwise")
    assert ">llmbar-natural</a>" not in page and "No dataset matches" in page
    page = _get(client, "/datasets?source=llmbar&task_type=pairwise")
    assert ">llmbar-gptout</a>" in page


def test_dataset_page_versions_charts_agreement_validation(client, web_registry):
    reg = web_registry.reg
    details = reg.dataset("llmbar-natural")
    v = details.version
    page = _get(client, "/datasets/llmbar-natural")
    assert f"v{v.version}" in page and v.content_hash[:12] in page
    for x in reg.versions("llmbar-natural"):
        assert f"?version={x.version}" in page
    diff = v.diff_from_parent
    assert f"~{diff['changed']}" in page  # the timeline shows v2's diff from v1
    for label, n in v.statistics["label_distribution"].items():
        assert f"{label} {n}" in page
    assert 'id="chart-labels"' in page and 'id="chart-lengths"' in page
    assert 'src="/static/vendor/plotly.min.js"' in page and "cdn" not in page.lower()
    assert 'id="validation-status">passed' in page
    for e in v.validation["expectations"][:3]:
        assert e["expectation"] in page
    assert 'id="agreement"' in page
    v1 = _get(client, "/datasets/llmbar-natural?version=1")
    assert reg.dataset("llmbar-natural@1").version.content_hash[:12] in v1
    assert client.get("/datasets/no-such-dataset").status_code == 404


def test_row_browser_paginates_and_filters(client, web_registry):
    reg = web_registry.reg
    table = reg.load_table(web_registry.natural_v2)
    ids = table.column("example_id").to_pylist()
    page1 = _get(client, f"/rows/{quote(web_registry.natural_v2, safe='')}")
    assert ids[0] in page1 and ids[19] in page1 and ids[20] not in page1
    assert f"{table.num_rows} rows" in page1 and 'id="next-page"' in page1
    page2 = _get(client, f"/rows/{quote(web_registry.natural_v2, safe='')}?page=2")
    assert ids[20] in page2 and ids[0] not in page2
    only_a = _get(client, f"/rows/{quote(web_registry.natural_v2, safe='')}?label=A")
    n_a = table.column("label").to_pylist().count("A")
    assert f"{n_a} rows" in only_a
    in_category = _get(client, f"/rows/{quote(web_registry.natural_v2, safe='')}?category=natural&label=B")
    assert f"{table.num_rows - n_a} rows" in in_category
    assert "0 rows" in _get(client, f"/rows/{quote(web_registry.natural_v2, safe='')}?category=no-such")
    last = _get(client, f"/rows/{quote(web_registry.natural_v2, safe='')}?page=999")
    assert ids[-1] in last and "next-page" not in last


def test_diff_highlights_changed_fields(client, web_registry):
    reg = web_registry.reg
    diff = reg.diff(web_registry.natural_v1, web_registry.natural_v2)
    page = _get(client, f"/diff?a={web_registry.natural_v1}&b={web_registry.natural_v2}")
    s = diff.rows.summary()
    assert f"{s['changed']} changed" in page and f"{s['unchanged']} unchanged" in page
    assert diff.rows.changed[0] in page
    assert '<span class="badge changed-field">label</span>' in page
    old = reg.load_pandas(web_registry.natural_v1).set_index("example_id").loc[diff.rows.changed[0], "label"]
    new = reg.load_pandas(web_registry.natural_v2).set_index("example_id").loc[diff.rows.changed[0], "label"]
    assert old != new
    assert f'<td class="old"><div class="text">{old}</div></td><td class="new"><div class="text">{new}</div></td>' in page


def test_leaderboard_full_names_chart_tied_mark(client, web_registry):
    reg = web_registry.reg
    board = reg.leaderboard(web_registry.natural_v2)
    page = _get(client, f"/leaderboard/{quote(web_registry.natural_v2, safe='')}")
    for s in board.standings:
        assert f'evaluator-name">{html.escape(s.evaluator)}' in page  # full names, never cut
        assert _num(s.value) in page
        assert f'href="/runs/{s.runs[0]}"' in page
    assert "gpt-4/llmbar-vanilla" in page
    assert 'id="chart-leaderboard"' in page
    figure = _figure(page, "chart-leaderboard")
    assert len(figure["data"][0]["x"]) == len(board.standings)
    if board.tied:
        assert "tied with best" in page
    assert "time / 1000" in page
    t = board.best.metrics.get("time_per_1000")
    assert t is not None and _num(t) in page
    kind = _get(client, f"/leaderboard/{quote(web_registry.natural_v2, safe='')}?kind=external")
    assert 'evaluator-name">gpt-4/llmbar-vanilla' in kind and 'evaluator-name">longer<' not in kind
    assert '<span class="badge ok">best</span>' in kind  # ranked among its kind
    other = _get(client, f"/leaderboard/{quote(web_registry.natural_v2, safe='')}?metric=correct_both")
    assert "Ranked by <b>correct_both</b>" in other


def _figure(page: str, div_id: str) -> dict:
    m = re.search(rf'data-target="{div_id}">(.*?)</script>', page, re.S)
    assert m, div_id
    return json.loads(m.group(1))


def test_run_page_metrics_confusion_and_disagreements(client, web_registry):
    reg = web_registry.reg
    run_id = web_registry.runs["gpt-4/llmbar-vanilla"]
    run = reg.run(run_id)
    page = _get(client, f"/runs/{run_id}")
    acc = run.metric("accuracy")
    assert _num(acc.value) in page and f"[{_num(acc.ci_low)}, {_num(acc.ci_high)}]" in page
    assert 'id="chart-confusion"' in page
    confusion = _figure(page, "chart-confusion")
    assert sum(map(sum, confusion["data"][0]["z"])) == run.n_judgments
    # the examples it got wrong: computed here from the predictions and the labels
    preds = reg.predictions(run_id).to_pylist()
    labels = dict(zip(*[reg.load_table(run.dataset).column(c).to_pylist() for c in ("example_id", "label")]))
    wrong = sorted({p["example_id"] for p in preds if p["verdict"] != labels[p["example_id"]]})
    assert f"({len(wrong)} examples" in page
    assert page.count('class="card disagreement"') == min(len(wrong), 20)
    assert "as given (order 0)" in page and "swapped (order 1)" in page
    assert "human choice" in page


def test_run_page_bias_panel(client, web_registry):
    """The GPT-4 import's bias diagnostics (issue 15) in their own panel, with CIs and definitions."""
    run = web_registry.reg.run(web_registry.runs["gpt-4/llmbar-vanilla"])
    page = _get(client, f"/runs/{run.id}")
    panel = page.split('id="bias"', 1)[1].split("</table>", 1)[0]
    for name in ("prob_prefer_first", "flip_rate", "lc_accuracy", "accuracy_longer_worse", "parse_failure_rate"):
        m = run.metric(name)
        assert f">{name}</span>" in panel and _num(m.value) in panel, name
    flip = run.metric("flip_rate")
    assert f"[{_num(flip.ci_low)}, {_num(flip.ci_high)}]" in panel
    assert 'title="Both orders: share of the examples' in panel
    assert ">flip_rate<" not in page.split('id="metrics"', 1)[1].split("</table>", 1)[0]   # not twice


def test_leaderboard_page_optional_columns(client, web_registry):
    """leaderboard?columns=…: the bias diagnostics (issue 15) beside the ranked metric; a wrong name is an error page."""
    ref = quote(web_registry.natural_v2, safe="")
    page = _get(client, f"/leaderboard/{ref}?columns=flip_rate,lc_accuracy")
    board = web_registry.reg.leaderboard(web_registry.natural_v2)
    cells = re.findall(r'<td class="num extra-column">([^<]*)</td>', page)
    assert page.count('<th class="num extra-column">') == 2 and len(cells) == 2 * len(board.standings)
    assert cells[:2] == [_num(board.standings[0].metrics["flip_rate"]), _num(board.standings[0].metrics["lc_accuracy"])]
    bad = client.get(f"/leaderboard/{ref}?columns=flip_rat")
    assert "did you mean &#39;flip_rate&#39;" in bad.text or "did you mean 'flip_rate'" in bad.text
    assert "extra-column" not in _get(client, f"/leaderboard/{ref}")


def test_run_page_of_hostile_dataset_escapes_texts(client, web_registry):
    runs = web_registry.reg.runs(dataset=web_registry.hostile, evaluator="longer")
    page = _get(client, f"/runs/{runs[0].id}")
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in page


def test_hostile_markup_is_escaped_everywhere(client, web_registry):
    ref = quote(web_registry.hostile, safe="")
    page = _get(client, f"/rows/{ref}")
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&#34;window.__xss = 2&#34;&gt;" in page
    assert "&lt;a href=&#34;javascript:window.__xss=3&#34;&gt;" in page
    assert XSS not in page
    _get(client, "/datasets/hostile-markup")
    _get(client, f"/leaderboard/{ref}")
    for url in (f"/datasets/{quote(XSS, safe='')}", f"/checkpoints/{quote(XSS, safe='')}",
                f"/diff?a={quote(XSS)}&b=x", f"/best?dataset={quote(XSS)}", f"/login?next={quote(XSS)}"):
        r = client.get(url)  # names in error messages and forms are escaped too
        assert r.status_code in (200, 404, 422) and not any(raw in r.text for raw in RAW_MARKUP), url


def test_chart_json_cannot_end_its_script():
    from registry.web import charts

    fig = charts.label_distribution({"</script><script>alert(1)</script>": 3, "a\u2028b&c": 1})
    out = str(charts.render(fig, "x"))
    assert out.count("</script>") == 1 and "<script>alert" not in out
    assert "\u2028" not in out and "&c" not in out
    payload = out[out.index(">", out.index("<script")) + 1: out.rindex("</script>")]
    assert json.loads(payload)["data"][0]["x"][0] == "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"


def test_lineage_graph_joins_parents_and_training_data():
    from registry.web import charts

    fig = charts.lineage_graph("m@3", ["m@2", "m@1"], ["a@1", "b<x>@2"], ["held@1"], links={"m@1": "/checkpoints/m%401"})
    edges, chain, trained, held = fig["data"]
    assert chain["text"] == ["m@1", "m@2", "m@3"] and chain["customdata"][0] == "/checkpoints/m%401"
    assert trained["text"] == ["a@1", "b&lt;x&gt;@2"] and held["text"] == ["held@1"]
    assert edges["x"].count(None) == 2 + 2  # two parent edges, two training edges
    # many training sets around one checkpoint (the demo's): every node inside the drawn range
    wide = charts.lineage_graph("m@1", [], [f"d{i}@1" for i in range(5)], ["h1@1", "h2@1"])
    low, high = wide["layout"]["xaxis"]["range"]
    assert all(low < x < high for trace in wide["data"][1:] for x in trace["x"])
    assert charts.safe_json({"k": "</script>\u2028"}) == r'{"k":"\u003c/script\u003e\u2028"}'


def test_calibration_bins_prob_a():
    from registry.web import charts

    fig = charts.calibration([0.05, 0.05, 0.95, 0.95, float("nan")], [False, True, True, True])
    observed = fig["data"][1]
    assert observed["x"] == [0.05, 0.95] and observed["y"] == [0.5, 1.0] and observed["text"] == ["n=2", "n=2"]


def test_plotly_is_served_locally_with_a_long_cache(client):
    r = client.get("/static/vendor/plotly.min.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert "max-age=31536000" in r.headers["cache-control"] and len(r.content) > 1_000_000
    assert client.get("/static/charts.js").status_code == 200


def test_best_finder_matrix_checkpoints(client, web_registry):
    reg = web_registry.reg
    best = reg.best(task_type="pairwise")
    page = _get(client, "/best?task_type=pairwise")
    assert f'id="best-name">{html.escape(best.best.evaluator)}<' in page
    for s in best.tied:
        assert f'tied-name">{html.escape(s.evaluator)}<' in page
    by_dataset = reg.best(dataset="llmbar-natural")
    page = _get(client, "/best?dataset=llmbar-natural&metric=accuracy")
    assert f'id="best-name">{html.escape(by_dataset.best.evaluator)}<' in page
    bad = _get(client, "/best?task_type=pairwise&metric=no-such-metric")
    assert 'id="best-error"' in bad
    assert 'id="best-error"' in _get(client, "/best?dataset=llmbar-natural&max_cost=abc")
    local = reg.best(dataset="llmbar-natural", exclude_imported=True, max_cost_per_1k=0.0)
    page = _get(client, "/best?dataset=llmbar-natural&exclude_imported=true&max_cost=0")
    assert f'id="best-name">{html.escape(local.best.evaluator)}<' in page
    assert 'class="name">gpt-4/llmbar-vanilla<' not in page and len(local.standings) == 4
    external = _get(client, "/best?dataset=llmbar-natural&kind=external")
    assert 'id="best-name">gpt-4/llmbar-vanilla<' in external
    _get(client, "/best")
    matrix = _get(client, "/matrix")
    for name, run_id in web_registry.runs.items():
        assert f'href="/runs/{run_id}"' in matrix and html.escape(name) in matrix
    assert 'id="chart-matrix"' in matrix and 'id="chart-protocols"' in matrix
    reife = _get(client, f"/matrix?dataset={quote(web_registry.natural_v2)}")
    for name in ("longer", "shorter", "random", "always-first"):  # checkpoint NAME@1 × score-both-orders@1
        assert f'href="/runs/{web_registry.runs[name]}">' in reife.split('id="protocol-matrix"')[1]
        assert f'href="/checkpoints/{name}%401"' in reife
    _get(client, "/checkpoints")
    page = _get(client, "/checkpoints/gpt-4%401")
    assert "gpt-4@1" in page and "gpt-4/llmbar-vanilla" in page


def test_reads_need_login_when_not_public(web_registry):
    from fastapi.testclient import TestClient

    from registry.web.app import WebSettings, create_app

    app = create_app(registry=web_registry.reg, web=WebSettings(token=TOKEN, public_read=False))
    with TestClient(app) as c:
        assert c.get("/datasets").status_code == 401
        r = c.get("/datasets?q=x", headers={"Accept": "text/html"}, follow_redirects=False)  # a browser
        assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fdatasets%3Fq%3Dx"
        assert c.get("/login").status_code == 200  # the login page is always reachable
        assert c.get("/static/vendor/plotly.min.js").status_code == 200
        _login(c)
        assert c.get("/datasets").status_code == 200


def _login(c, token: str = TOKEN):
    form = c.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    return c.post("/login", data={"token": token, "csrf": csrf, "next": "/regressions"}, follow_redirects=False)


def test_login_sets_an_httponly_strict_cookie_only_for_the_right_token(web_registry, app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        r = _login(c, "wrong-token")
        assert r.status_code == 403 and "wrong token" in r.text and "autorater_token" not in r.headers.get("set-cookie", "")
        r = _login(c)
        assert r.status_code == 303 and r.headers["location"] == "/regressions"
        cookie = [v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("autorater_token=")][0]
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    for target in ("//evil.example", "/\t/evil.example", "/\\evil.example", "https://evil.example"):
        with TestClient(app) as c:  # never a redirect off this server
            form = c.get("/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
            r = c.post("/login", data={"token": TOKEN, "csrf": csrf, "next": target}, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == "/", target
    with TestClient(app) as c:  # a login form without its CSRF cookie is refused
        r = c.post("/login", data={"token": TOKEN, "csrf": "forged"}, follow_redirects=False)
        assert r.status_code == 403


class _Recording:
    """The shared registry, but acknowledging only records the call (the browser test acknowledges
    the shared regression for real)."""

    def __init__(self, reg) -> None:
        self._reg = reg
        self.acks: list[tuple[int, str, str | None]] = []

    def __getattr__(self, name: str):
        return getattr(self._reg, name)

    def acknowledge(self, regression_id: int, *, note: str, by: str | None = None):
        self.acks.append((regression_id, note, by))
        return next(g for g in self._reg.regressions() if g.id == regression_id)


def test_acknowledge_needs_login_and_csrf(web_registry):
    """Refused without the login cookie, without or with a wrong CSRF token, with another browser's
    token or a wrong login cookie — and nothing changes; accepted with both."""
    from fastapi.testclient import TestClient

    from registry.web.app import WebSettings, create_app

    reg = web_registry.reg
    rid = web_registry.regression_id
    before = next(g for g in reg.regressions() if g.id == rid)
    recording = _Recording(reg)
    app = create_app(registry=recording, web=WebSettings(token=TOKEN, public_read=True))

    def unchanged() -> bool:
        now = next(g for g in reg.regressions() if g.id == rid)
        return not recording.acks and (now.status, now.ack_note, now.acked_at) == (before.status, before.ack_note,
                                                                                   before.acked_at)

    with TestClient(app) as c:
        r = c.post(f"/regressions/{rid}/ack", data={"note": "n", "csrf": "x"}, follow_redirects=False)
        assert r.status_code == 401 and unchanged()  # not logged in
        assert _login(c).status_code == 303
        page = c.get("/regressions?status=open").text
        if before.status == "open":
            assert f'action="/regressions/{rid}/ack"' in page
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        r = c.post(f"/regressions/{rid}/ack", data={"note": "n"}, follow_redirects=False)
        assert r.status_code == 403 and unchanged()  # no CSRF token
        r = c.post(f"/regressions/{rid}/ack", data={"note": "n", "csrf": csrf[:-2] + "xx"}, follow_redirects=False)
        assert r.status_code == 403 and unchanged()  # a wrong one
        with TestClient(app) as other:  # another browser's CSRF token does not fit this one's cookie
            _login(other)
            r = other.post(f"/regressions/{rid}/ack", data={"note": "n", "csrf": csrf}, follow_redirects=False)
            assert r.status_code == 403 and unchanged()
        with TestClient(app) as forged:  # a wrong login cookie, with a matching CSRF pair
            forged.cookies.set("autorater_token", "wrong-token")
            forged.cookies.set("autorater_csrf", "k" * 43)
            r = forged.post(f"/regressions/{rid}/ack", data={"note": "n", "csrf": "k" * 43}, follow_redirects=False)
            assert r.status_code == 401 and unchanged()
        r = c.post(f"/regressions/{rid}/ack", data={"note": "expected: labels fixed", "by": "alice", "csrf": csrf},
                   follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/regressions?acked={rid}"
        assert recording.acks == [(rid, "expected: labels fixed", "alice")]
    with TestClient(app) as anonymous:
        page = _get(anonymous, "/regressions")
        assert f'id="regression-{rid}"' in page and "Log in</a> to acknowledge" in page
        assert 'class="ack-form"' not in page


def test_matrix_pages_through_evaluators(client, web_registry, monkeypatch):
    from registry.web import pages

    monkeypatch.setattr(pages, "MATRIX_ROWS", 2)
    names = sorted(web_registry.runs)
    first, second = _get(client, "/matrix"), _get(client, "/matrix?page=2")
    table = first.split('id="matrix"')[1].split("</table>")[0]
    assert f'<td class="name">{names[0]}</td>' in table and f'<td class="name">{names[2]}</td>' not in table
    assert f'<td class="name">{names[2]}</td>' in second.split('id="matrix"')[1] and "page 2 of 3" in second


@pytest.fixture(scope="module")
def other_tasks(tmp_path_factory, data_root):
    """A second registry with a real pointwise (SummEval coherence) and a real classification
    (SummEdits podcast) dataset, judged by the random baseline: the pages of the other task types."""
    from fastapi.testclient import TestClient

    from registry import api
    from registry.config import Settings
    from registry.services.evaluators import ensure_baselines
    from registry.web.app import WebSettings, create_app

    base = tmp_path_factory.mktemp("web-other")
    settings = Settings.from_env(home=str(base / "home"), db_url=f"sqlite:///{base / 'home' / 'registry.db'}",
                                 store=str(base / "home" / "store"), dvc_remote=str(base / "remote"),
                                 data_root=str(data_root))
    reg = api.init(settings=settings)
    done = reg.register_all(only=["summeval-coherence", "summedits-podcast"])
    if len(done.registered) != 2:
        reg.close()
        pytest.skip(f"SummEval / SummEdits files not present: {done.to_dict()}")
    ensure_baselines(reg._ctx, minilm=False)
    runs = {d: reg.evaluate("random", d, n_boot=100, slice_by=["category"], min_slice_size=5).id
            for d in ("summeval-coherence", "summedits-podcast")}
    app = create_app(registry=reg, web=WebSettings(token=TOKEN, public_read=True))
    with TestClient(app) as c:
        yield reg, c, runs
    reg.close()


def test_pointwise_and_classification_pages(other_tasks):
    reg, c, runs = other_tasks
    pw = reg.dataset("summeval-coherence").version
    page = _get(c, "/datasets/summeval-coherence")
    assert 'id="chart-scores"' in page and 'id="chart-lengths"' in page and f"{pw.row_count:,} rows" in page
    page = _get(c, f"/runs/{runs['summeval-coherence']}")
    spearman = reg.run(runs["summeval-coherence"]).metric("spearman")
    assert "spearman" in page and _num(spearman.value) in page
    scatter = _figure(page, "chart-scores")
    assert len(scatter["data"][0]["x"]) == pw.row_count
    cl = reg.dataset("summedits-podcast").version
    page = _get(c, "/datasets/summedits-podcast")
    assert 'id="chart-labels"' in page
    page = _get(c, f"/runs/{runs['summedits-podcast']}")
    run = reg.run(runs["summedits-podcast"])
    assert _num(run.metric("balanced_accuracy").value) in page
    confusion = _figure(page, "chart-confusion")
    assert sorted(confusion["data"][0]["y"]) == sorted(cl.statistics["label_distribution"])
    assert sum(map(sum, confusion["data"][0]["z"])) == run.n_judgments
    assert page.count('class="card disagreement"') == 20  # a random judge disagrees often
    sliced = [m for m in run.metrics if m.slice != "all"]
    if len({m.slice for m in sliced}) >= 2:
        assert 'id="chart-slices"' in page
    for url in ("/leaderboard/summeval-coherence", "/leaderboard/summedits-podcast", "/best?task_type=pointwise",
                "/best?task_type=classification", "/matrix", f"/rows/{quote(cl.ref)}"):
        _get(c, url)
