"""Notifications: a JSON POST to a webhook (``AUTORATER_WEBHOOK_URL``), or a log warning when no
webhook is set. Sending never fails the caller: an unreachable or failing webhook is logged."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any

from registry import __version__

logger = logging.getLogger("registry.notify")


def notify(event: str, payload: dict[str, Any], *, summary: str, webhook_url: str | None,
           timeout: float = 5.0) -> bool:
    """Send ``{"event": event, **payload}`` to ``webhook_url``; without one, log ``summary`` as a
    warning. Returns whether the webhook accepted it (a 2xx answer); ``False`` without a webhook."""
    if not webhook_url:
        logger.warning("%s: %s", event, summary)
        return False
    body = json.dumps({"event": event, **payload}, default=str).encode("utf-8")
    request = urllib.request.Request(webhook_url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": f"autorater-registry/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (URL set by the operator)
            ok = 200 <= response.status < 300
            if not ok:
                logger.warning("webhook %s answered %s to %s (%s)", webhook_url, response.status, event, summary)
            return ok
    except (urllib.error.URLError, OSError, ValueError) as exc:
        logger.warning("webhook %s failed for %s (%s): %s", webhook_url, event, summary, exc)
        return False
