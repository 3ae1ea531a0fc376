"""The notification adapter (registry.adapters.notify): a webhook that cannot be reached is logged,
never raised."""

from __future__ import annotations

import logging
import socket

from registry.adapters.notify import notify


def test_unreachable_webhook_is_logged_not_raised(caplog):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger="registry.notify"):
        ok = notify("regression.detected", {"regression": {"id": 1}}, summary="regression 1",
                    webhook_url=f"http://127.0.0.1:{port}/hook", timeout=2)
    assert ok is False
    assert any(f"127.0.0.1:{port}" in m and "failed" in m and "regression 1" in m for m in caplog.messages)
