"""What every flow shares: opening the registry from ``AUTORATER_*`` settings, and retry rules."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from prefect.task_runners import ThreadPoolTaskRunner

from registry.config import Settings
from registry.services.app import RegistryContext

#: Pairs evaluated at once inside one flow run (``AUTORATER_FLOW_WORKERS``, default 2).
DEFAULT_WORKERS = int(os.environ.get("AUTORATER_FLOW_WORKERS", "2"))
#: Tag of every evaluation task: ``prefect concurrency-limit create autorater-evaluation N`` caps
#: evaluations across all flow runs of a Prefect server.
EVALUATION_TAG = "autorater-evaluation"


@contextmanager
def open_registry(settings: Settings | None = None) -> Iterator[RegistryContext]:
    """The registry of ``settings``, else the one named by the environment (each task opens its
    own: engines and DVC repos are not shared between threads). Tasks that may run on a Dask
    worker get the flow's resolved settings as a parameter: a worker process does not share the
    flow's environment."""
    reg = RegistryContext.open(settings)
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


class SettingsTaskRunner(ThreadPoolTaskRunner):
    """The task runner of ``meta_evaluate``, chosen when each flow run starts (Prefect calls
    :meth:`duplicate` then): a ``prefect-dask`` ``DaskTaskRunner`` connected to the scheduler at
    ``AUTORATER_DASK_ADDRESS`` when that is set, else a ``ThreadPoolTaskRunner`` of
    ``AUTORATER_FLOW_WORKERS`` threads."""

    def duplicate(self):  # noqa: ANN201 - a DaskTaskRunner or a ThreadPoolTaskRunner
        return pair_task_runner()


def pair_task_runner(address: str | None = None):  # noqa: ANN201
    """A ``DaskTaskRunner`` on the cluster at ``address`` (default: ``AUTORATER_DASK_ADDRESS``),
    else the thread pool."""
    address = address or Settings.from_env().dask_address
    if not address:
        return ThreadPoolTaskRunner(max_workers=DEFAULT_WORKERS)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:
        from registry.errors import RegistryError

        raise RegistryError(f"AUTORATER_DASK_ADDRESS={address} needs prefect-dask: "
                            "pip install 'autorater-registry[dask]'") from exc
    return DaskTaskRunner(address=address)
