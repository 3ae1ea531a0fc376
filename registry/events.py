"""Registry events, sent to Prefect so that deployments with event triggers can react
(``flows/deployments.py``: a new dataset version or checkpoint re-evaluates exactly the affected
pairs).

| event | resource id | payload |
|---|---|---|
| ``autorater.dataset.version.registered`` | ``autorater.dataset-version.<name>@<version>`` | ``dataset``, ``version``, ``ref``, ``version_id``, ``task_type``, ``content_hash`` |
| ``autorater.checkpoint.registered`` | ``autorater.checkpoint.<autorater>@<version>`` | ``autorater``, ``version``, ``ref``, ``kind``, ``sha256`` |
| ``autorater.evaluator.created`` | ``autorater.evaluator.<name>`` | ``evaluator``, ``checkpoint``, ``protocol``, ``kind`` |

Events are on when ``AUTORATER_EVENTS`` is true, and by default when ``PREFECT_API_URL`` is set
(a Prefect server is there to receive them). Sending is never fatal: the registry is the source of
truth, events only say "look again"; a lost event is made up by the nightly sweep.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

log = logging.getLogger(__name__)

DATASET_VERSION_REGISTERED = "autorater.dataset.version.registered"
CHECKPOINT_REGISTERED = "autorater.checkpoint.registered"
EVALUATOR_CREATED = "autorater.evaluator.created"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def enabled() -> bool:
    """Whether events are sent (``AUTORATER_EVENTS``; default: on when ``PREFECT_API_URL`` is set)."""
    flag = os.environ.get("AUTORATER_EVENTS", "").strip().lower()
    if flag in _TRUE:
        return True
    if flag in _FALSE:
        return False
    if os.environ.get("PREFECT_API_URL"):
        return True
    if "prefect" not in sys.modules:  # importing Prefect only to find no server costs seconds
        return False
    try:  # inside a flow or a test harness the URL may come from Prefect's settings context
        from prefect.settings import PREFECT_API_URL

        return bool(PREFECT_API_URL.value())
    except Exception:
        return False


def emit(event: str, resource_id: str, payload: dict[str, Any]) -> bool:
    """Send ``event`` about resource ``resource_id`` with ``payload``; ``True`` when it was handed
    to Prefect's event worker. Failures are logged, never raised."""
    if not enabled():
        return False
    try:
        from prefect.events import emit_event

        sent = emit_event(event=event, resource={"prefect.resource.id": resource_id}, payload=payload)
        return sent is not None
    except Exception as exc:  # an unreachable server must not fail a registration
        log.warning("could not emit %s for %s: %s", event, resource_id, exc)
        return False
