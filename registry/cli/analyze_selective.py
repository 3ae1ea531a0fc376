"""``autorater analyze`` commands of this module (see :mod:`registry.cli.analyze`)."""

from __future__ import annotations

from registry.cli.analyze import app  # noqa: F401
