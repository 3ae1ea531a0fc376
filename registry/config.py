"""Settings, read from the environment (``AUTORATER_*``) with single-machine defaults.

| variable | default | meaning |
|---|---|---|
| ``AUTORATER_HOME`` | ``./.autorater`` | folder for the default SQLite file and store |
| ``AUTORATER_DB_URL`` | ``sqlite:///$AUTORATER_HOME/registry.db`` | SQLAlchemy URL of the registry |
| ``AUTORATER_STORE`` | ``$AUTORATER_HOME/store`` | content-addressed artifact store (a DVC project) |
| ``AUTORATER_DVC_REMOTE`` | ``$AUTORATER_HOME/dvc-remote`` | DVC remote URL (a folder, ``s3://...``, ...) |
| ``AUTORATER_DATA`` | ``../shared/data`` when it exists | root of the public source files |
| ``AUTORATER_MAX_TEXT_CHARS`` | ``200000`` | size limit for one text field |
| ``AUTORATER_MAX_INPUT_MB`` | ``20480`` | size limit for one input file or folder (MB; gzip: also once uncompressed) |
| ``AUTORATER_REGRESSION_THRESHOLD`` | ``0.02`` | smallest drop of a headline metric recorded as a regression |
| ``AUTORATER_REGRESSION_MAJOR`` | ``0.05`` | a drop at least this large is a *major* regression (else *minor*) |
| ``AUTORATER_REGRESSION_ALPHA`` | ``0.05`` | significance level of the paired test behind a regression |
| ``AUTORATER_WEBHOOK_URL`` | unset | URL that receives a JSON POST for each new regression (else a log warning) |
| ``AUTORATER_WEBHOOK_TIMEOUT`` | ``5`` | seconds before a webhook POST is given up (and logged) |
| ``AUTORATER_DASK_ADDRESS`` | unset | Dask scheduler (``tcp://host:8786``) that runs ``meta_evaluate``'s pairs (else threads) |
| ``AUTORATER_S3_ENDPOINT_URL`` | unset | endpoint of an S3-compatible server for an ``s3://`` remote (MinIO, Ceph, …) |
| ``AUTORATER_MEMORY_MB`` | ``2048`` | working memory (MB) of one registration or evaluation run: inputs are read, validated, sorted and written — datasets judged, cached and scored — in chunks sized from it |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: Where the project's ``dataset_specs/`` folder is (shipped beside the package).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_data_root() -> Path | None:
    for candidate in (Path.cwd() / "../shared/data", PROJECT_ROOT / "../shared/data"):
        if candidate.is_dir():
            return candidate.resolve()
    return None


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one registry instance."""

    home: Path
    db_url: str
    store: Path
    dvc_remote: str
    data_root: Path | None
    specs_dir: Path = field(default=PROJECT_ROOT / "dataset_specs")
    max_text_chars: int = 200_000
    max_input_mb: float = 20480.0
    """Largest input file (or folder) read, in MB (2**20 bytes); a ``.gz`` file once uncompressed too."""
    regression_threshold: float = 0.02
    """Smallest drop (baseline − candidate, in metric units) recorded as a regression."""
    regression_major: float = 0.05
    """Drops at least this large are ``major`` regressions, smaller ones ``minor``."""
    regression_alpha: float = 0.05
    """Significance level of the paired test: a drop counts only when p < alpha."""
    webhook_url: str | None = None
    """Where each new regression is POSTed as JSON; ``None``: a log warning instead."""
    webhook_timeout: float = 5.0
    """Seconds before a webhook POST is given up (a failed POST is logged, never fatal)."""
    dask_address: str | None = None
    """Address of the Dask scheduler that runs ``meta_evaluate``'s pair tasks; ``None``: threads."""
    s3_endpoint_url: str | None = None
    """Endpoint of an S3-compatible server for an ``s3://`` remote (the DVC remote's ``endpointurl``);
    ``None``: AWS. Credentials are never settings: DVC reads ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN`` (or a profile) from the environment."""
    memory_mb: float = 2048.0
    """Working memory (MB, 2**20 bytes) a registration may use: the input is read, validated, sorted and
    written in chunks sized from it, so its peak does not grow with the number of rows (at least 1).
    An evaluation run reads, judges, caches and scores a dataset version in chunks sized from it too
    (:mod:`registry.services.evaluation`)."""

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Read settings from ``AUTORATER_*`` variables; keyword overrides win."""
        env = os.environ
        home = Path(str(overrides.get("home") or env.get("AUTORATER_HOME", ".autorater"))).resolve()
        db_url = str(overrides.get("db_url") or env.get("AUTORATER_DB_URL") or f"sqlite:///{home / 'registry.db'}")
        store = Path(str(overrides.get("store") or env.get("AUTORATER_STORE") or home / "store")).resolve()
        remote = str(overrides.get("dvc_remote") or env.get("AUTORATER_DVC_REMOTE") or home / "dvc-remote")
        data = overrides.get("data_root") or env.get("AUTORATER_DATA")
        data_root = Path(str(data)).resolve() if data else _default_data_root()
        specs = Path(str(overrides.get("specs_dir") or env.get("AUTORATER_SPECS") or PROJECT_ROOT / "dataset_specs"))
        max_chars = int(str(overrides.get("max_text_chars") or env.get("AUTORATER_MAX_TEXT_CHARS") or 200_000))
        return cls(home=home, db_url=db_url, store=store, dvc_remote=remote, data_root=data_root,
                   specs_dir=specs, max_text_chars=max_chars, max_input_mb=max_input_mb(overrides),
                   regression_threshold=_number(overrides, "regression_threshold", 0.02, lo=0.0),
                   regression_major=_number(overrides, "regression_major", 0.05, lo=0.0),
                   regression_alpha=_number(overrides, "regression_alpha", 0.05, lo=0.0, hi=1.0),
                   webhook_url=str(overrides.get("webhook_url") or env.get("AUTORATER_WEBHOOK_URL") or "") or None,
                   webhook_timeout=_number(overrides, "webhook_timeout", 5.0, lo=0.0),
                   dask_address=_text(overrides, "dask_address"),
                   s3_endpoint_url=_text(overrides, "s3_endpoint_url"),
                   memory_mb=_number(overrides, "memory_mb", 2048.0, lo=1.0))


def _text(overrides: dict[str, object], key: str) -> str | None:
    """An optional text setting from ``overrides[key]`` or ``AUTORATER_<KEY>`` (empty: unset)."""
    raw = overrides.get(key)
    if raw is None:
        raw = os.environ.get(f"AUTORATER_{key.upper()}")
    return str(raw).strip() or None if raw is not None else None


def max_input_mb(overrides: dict[str, object] | None = None) -> float:
    """The input size limit in MB: ``overrides["max_input_mb"]``, else ``AUTORATER_MAX_INPUT_MB``, else 20480."""
    value = _number(dict(overrides or {}), "max_input_mb", 20480.0, lo=0.0)
    if value == float("inf"):
        from registry.errors import InvalidInput

        raise InvalidInput("AUTORATER_MAX_INPUT_MB must be a finite number of MB", field="max_input_mb")
    return value


def _number(overrides: dict[str, object], key: str, default: float, *, lo: float | None = None,
            hi: float | None = None) -> float:
    """A float setting from ``overrides[key]`` or ``AUTORATER_<KEY>``, checked against its range."""
    from registry.errors import InvalidInput

    var = f"AUTORATER_{key.upper()}"
    raw = overrides.get(key)
    if raw is None:
        raw = os.environ.get(var) or default
    try:
        value = float(str(raw))
    except ValueError:
        raise InvalidInput(f"{var}={raw!r} is not a number", field=key) from None
    if (lo is not None and value < lo) or (hi is not None and value > hi) or value != value:
        raise InvalidInput(f"{var}={raw!r} is out of range [{lo}, {hi if hi is not None else 'inf'}]", field=key)
    return value
