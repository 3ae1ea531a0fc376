"""Settings, read from the environment (``AUTORATER_*``) with single-machine defaults.

| variable | default | meaning |
|---|---|---|
| ``AUTORATER_HOME`` | ``./.autorater`` | folder for the default SQLite file and store |
| ``AUTORATER_DB_URL`` | ``sqlite:///$AUTORATER_HOME/registry.db`` | SQLAlchemy URL of the registry |
| ``AUTORATER_STORE`` | ``$AUTORATER_HOME/store`` | content-addressed artifact store (a DVC project) |
| ``AUTORATER_DVC_REMOTE`` | ``$AUTORATER_HOME/dvc-remote`` | DVC remote URL (a folder, ``s3://...``, ...) |
| ``AUTORATER_DATA`` | ``../shared/data`` when it exists | root of the public source files |
| ``AUTORATER_MAX_TEXT_CHARS`` | ``200000`` | size limit for one text field |
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
                   specs_dir=specs, max_text_chars=max_chars)
