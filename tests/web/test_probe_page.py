"""The dataset page of a perturbation probe shows its lineage (parent, transform, parameters, seed)."""

from __future__ import annotations

import pytest

from tests.web.conftest import new_registry


@pytest.mark.slow
def test_probe_page_shows_lineage(tmp_path, data_root):
    from fastapi.testclient import TestClient

    from registry.web.app import WebSettings, create_app

    reg, _, _ = new_registry(tmp_path, data_root)
    try:
        reg.derive_dataset("natural-trunc", source_ref="llmbar-natural@1", transform="truncate-better",
                           params={"keep": 0.25}, seed=2)
        with TestClient(create_app(registry=reg, web=WebSettings(token="t" * 32, public_read=True))) as client:
            page = client.get("/datasets/natural-trunc")
            parent = client.get("/datasets/llmbar-natural")
    finally:
        reg.close()
    assert page.status_code == 200
    text = " ".join(page.text.split())
    assert 'id="lineage"' in text and "probe derived from" in text
    assert '<a href="/datasets/llmbar-natural?version=1">llmbar-natural@1</a>' in text
    assert "by <code>truncate-better</code> (keep=0.25), seed 2" in text and "100 of 100 rows changed" in text
    assert parent.status_code == 200 and 'id="lineage"' not in parent.text
