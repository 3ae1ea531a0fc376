"""The app's frame: problem+json errors, the token rule, static files, the `ui` command."""

from __future__ import annotations


def test_info_and_problem_json(client, web_registry):
    r = client.get("/api/v1/info")
    assert r.status_code == 200 and r.json()["datasets"] >= 3
    r = client.get("/api/v1/no-such-endpoint")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == 404 and "Traceback" not in r.text


def test_static_assets_are_local(client):
    r = client.get("/static/app.css")
    assert r.status_code == 200 and "body" in r.text


def test_reads_need_the_token_unless_opened(web_registry):
    from fastapi.testclient import TestClient

    from registry.web.app import WebSettings, create_app
    from tests.web.conftest import TOKEN

    app = create_app(registry=web_registry.reg, web=WebSettings(token=TOKEN, public_read=False))
    with TestClient(app) as c:
        assert c.get("/api/v1/info").status_code == 401
        assert c.get("/api/v1/info", headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert c.get("/api/v1/info", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert c.get("/").status_code == 401
        c.cookies.set("autorater_token", TOKEN)
        assert c.get("/api/v1/info").status_code == 200
    assert WebSettings.from_env(token=None).reads_open  # no token configured: nothing to check
    assert not WebSettings.from_env(token="t", public_read=None).reads_open or \
        __import__("os").environ.get("AUTORATER_API_PUBLIC_READ") == "1"


def test_tune_gc_freezes_what_is_alive_and_raises_the_thresholds():
    import gc

    from registry.web.app import GC_THRESHOLD, tune_gc

    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLD and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
