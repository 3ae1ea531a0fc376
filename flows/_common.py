"""What every flow shares: opening the registry from ``AUTORATER_*`` settings, and retry rules."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from registry.services.app import RegistryContext

#: Pairs evaluated at once inside one flow run (``AUTORATER_FLOW_WORKERS``, default 2).
DEFAULT_WORKERS = int(os.environ.get("AUTORATER_FLOW_WORKERS", "2"))
#: Tag of every evaluation task: ``prefect concurrency-limit create autorater-evaluation N`` caps
#: evaluations across all flow runs of a Prefect server.
EVALUATION_TAG = "autorater-evaluation"


@contextmanager
def open_registry() -> Iterator[RegistryContext]:
    """The registry named by the environment (each task opens its own: engines and DVC repos are
    not shared between threads)."""
    reg = RegistryContext.open()
    try:
        yield reg
    finally:
        reg.close()


def retry_unless_invalid(task, task_run, state) -> bool:
    """Retry transient failures (a locked database, a lost connection); an invalid input or an
    unknown name fails the same way again, so it is not retried."""
    from registry.errors import InvalidInput, NotFound

    try:
        state.result()
    except (InvalidInput, NotFound):
        return False
    except BaseException:
        return True
    return True
