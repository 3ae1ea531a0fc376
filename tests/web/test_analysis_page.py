"""The ReIFE analyses on the web app's ``/analysis`` page and in the HTML report: the values of
``reg.analyze_ranks`` / ``reg.analyze_protocols`` (same resamples), a reason where an analysis has too
little data, escaped input echoed back, and a τ heatmap drawn by the local charts script."""

from __future__ import annotations

import html

from tests.web.conftest import XSS
from tests.web.test_pages import _get


def test_analysis_page_shows_the_rank_correlations_of_the_api(client, web_registry):
    from registry.web.reife import N_BOOT

    reg = web_registry.reg
    page = _get(client, "/analysis")
    ranks = reg.analyze_ranks(n_boot=N_BOOT)
    pairs = ranks.view("datasets").pairs
    assert len(pairs) == 3                       # natural@2, gptout@1, hostile-markup@1: 4 heuristics on each
    for c in pairs:
        assert f'<td class="name">{c.a}</td><td class="name">{c.b}</td><td class="num">{c.n_items}</td>' in page
        assert f'data-value="{c.kendall}">{c.kendall:.3f}<' in page
    assert 'id="chart-reife-tau"' in page and "Kendall τ-b between the evaluators" in page
    # the figure is drawn by the page's scripts: Plotly and charts.js must be on it (they once were not)
    assert '<script src="/static/vendor/plotly.min.js"></script>' in page and '/static/charts.js' in page
    # one protocol per checkpoint here: the protocol analysis says why it has nothing to show
    assert 'id="reife-protocols-missing"' in page and "two of the selected protocols" in page
    assert 'href="/analysis" class="on"' in page


def test_analysis_page_filters_and_escapes_what_it_echoes(client, web_registry):
    page = _get(client, f"/analysis?datasets={web_registry.gptout},{web_registry.hostile}&evaluators=longer,shorter,random")
    assert page.count('<table class="reife-pairs"') == 1 and f'<td class="name">{web_registry.gptout}</td>' in page
    page = _get(client, "/analysis?evaluators=" + XSS.replace("&", "%26").replace("#", "%23"))
    assert 'id="reife-ranks-missing"' in page and html.escape(XSS, quote=True)[:40] in page


def test_report_has_the_reife_section(web_registry):
    from registry.web.report import build_report

    reg = web_registry.reg
    text = build_report(reg)
    assert 'id="reife-section"' in text and 'href="#reife-section"' in text
    (pair, *_) = reg.analyze_ranks(n_boot=200).view("datasets").pairs
    assert f'data-value="{pair.kendall}">{pair.kendall:.3f}<' in text


def test_a_registry_too_large_for_the_page_points_to_the_command_line(client, monkeypatch):
    from registry.web import reife

    monkeypatch.setattr(reife, "MAX_CELLS", 1)
    page = _get(client, "/analysis")
    assert 'id="reife-ranks-missing"' in page and "autorater analyze ranks" in page
    assert "reife-pairs" not in page
