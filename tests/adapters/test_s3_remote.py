"""An ``s3://`` DVC remote (``dvc-s3``) on an S3-compatible server started by the test on
127.0.0.1 (``moto`` in server mode): ``store push`` / ``store pull``, and loading a version that is
only on the remote (its local file and DVC cache object removed) pulls it. The remote URL comes
from ``AUTORATER_DVC_REMOTE``, the endpoint from ``AUTORATER_S3_ENDPOINT_URL``, the credentials
only from the environment: the secret is in no store file, no database row and no output."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pytest

from tests.flows.helpers import DATA

pytestmark = pytest.mark.slow

BUCKET = "autorater-team"
PREFIX = "registry/store"
SECRET = f"moto-secret-{uuid.uuid4().hex}"
TOKEN = f"moto-token-{uuid.uuid4().hex}"


@pytest.fixture
def s3(tmp_path, monkeypatch):
    """A moto S3 server on a free port of 127.0.0.1 with one bucket; AWS credentials in the
    environment only (no profile or config file is read)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "autorater-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    try:
        yield endpoint, client
    finally:
        server.stop()


def _keys(client) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_push_pull_and_load_from_an_s3_remote_without_storing_the_credentials(s3, tmp_path, data_root,
                                                                               monkeypatch, caplog):
    from typer.testing import CliRunner

    import registry
    from registry.cli.main import app

    endpoint, client = s3
    # everything at INFO, and the registry's, DVC's and s3fs's own debug logs (botocore's DEBUG log
    # prints signed requests, session token included: the registry never turns it on)
    caplog.set_level(logging.INFO)
    for name in ("registry", "flows", "dvc", "dvc_data", "dvc_objects", "dvc_s3", "s3fs"):
        caplog.set_level(logging.DEBUG, logger=name)
    home = tmp_path / "home"
    db = home / "registry.db"
    monkeypatch.setenv("AUTORATER_HOME", str(home))
    monkeypatch.setenv("AUTORATER_DB_URL", f"sqlite:///{db}")
    monkeypatch.setenv("AUTORATER_STORE", str(home / "store"))
    monkeypatch.setenv("AUTORATER_DVC_REMOTE", f"s3://{BUCKET}/{PREFIX}")
    monkeypatch.setenv("AUTORATER_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AUTORATER_DATA", str(data_root))
    runner = CliRunner()
    outputs: list[str] = []

    def cli(*args: str, code: int = 0):
        result = runner.invoke(app, [str(a) for a in args])
        outputs.append(result.output + (str(result.exception) if result.exception else ""))
        assert result.exit_code == code, (args, result.output, result.exception)
        return result

    cli("init")
    source, path = DATA["llmbar-natural"]
    cli("dataset", "register", "llmbar-natural", "--source", source, "--path", str(data_root / path))
    pushed = json.loads(cli("store", "push", "--json").stdout)
    assert pushed["pushed"] >= 1 and pushed["remote"] == f"s3://{BUCKET}/{PREFIX}"
    keys = _keys(client)
    assert keys and all(k.startswith(PREFIX + "/") for k in keys), keys
    assert json.loads(cli("store", "push", "--json").stdout)["pushed"] == 0  # nothing new

    with registry.open() as reg:
        store = reg._ctx.artifacts
        local = store.path(reg._ctx.store.get_version("llmbar-natural").storage_uri)
        expected = reg.load_table("llmbar-natural")

    def forget_locally() -> None:
        """Remove the version's file and its DVC cache object: it is now only on the remote."""
        md5 = store.pointer_md5(Path(str(local) + ".dvc"))
        store.cache_path(md5).unlink()
        local.unlink()
        assert not local.exists() and not store.cache_path(md5).exists()

    # loading a version that is only on the remote pulls it (Python API and `dataset export`)
    forget_locally()
    with registry.open() as reg:
        assert reg.load_table("llmbar-natural").equals(expected)
    assert local.exists()
    forget_locally()
    out = tmp_path / "export.jsonl"
    cli("dataset", "export", "llmbar-natural", "--out", str(out))
    assert len(out.read_text().splitlines()) == expected.num_rows == 100
    # `store pull` fetches everything tracked
    forget_locally()
    pulled = json.loads(cli("store", "pull", "--json").stdout)
    assert pulled["pulled"] >= 1 and local.exists()

    # the credentials came from the environment: without them the remote refuses, naming no secret
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    forget_locally()
    refused = cli("dataset", "export", "llmbar-natural", "--out", str(tmp_path / "again.jsonl"), code=6)
    assert "dvc pull" in refused.output and not (tmp_path / "again.jsonl").exists()

    config = (home / "store" / ".dvc" / "config").read_text()
    assert f"url = s3://{BUCKET}/{PREFIX}" in config and f"endpointurl = {endpoint}" in config
    for secret in (SECRET, TOKEN):
        assert secret not in config
        assert secret.encode() not in db.read_bytes()
        assert not any(secret in o for o in outputs) and secret not in caplog.text
        leaked = [p for p in home.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
        assert not leaked, leaked
