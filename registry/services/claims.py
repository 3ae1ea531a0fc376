"""Claims: at most one live process evaluates a given (evaluator, dataset version) pair.

A claim is an advisory lock held for the length of the evaluation
(:meth:`~registry.adapters.store.abstract.AbstractStore.claim_pair`: ``pg_try_advisory_lock`` on
PostgreSQL, an ``flock`` beside the SQLite file). The database server or the operating system
releases it when the holder dies, even on SIGKILL or a lost machine, so:

* a run row still ``running`` when its pair is claimed belongs to a process that died; it is
  marked ``failed`` with the error :data:`ABANDONED` and the pair runs again (the dead run's
  cached judgments are reused, so only the rest is computed);
* a pair whose claim is held elsewhere is ``busy``: the holder is alive and will finish it.

Runs started outside the flows (``autorater eval run``) take no claim.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from registry.services.app import RegistryContext

ABANDONED = "abandoned: the process running it ended without finishing (found when the pair was claimed again)"


def claim(reg: RegistryContext, evaluator: str, dataset: str) -> AbstractContextManager[bool]:
    """Hold the claim of ``evaluator`` on ``dataset`` (``name@version``) for the block; yields
    ``False`` (and holds nothing) when another live process holds it."""
    return reg.store.claim_pair(evaluator, dataset)


def abandon_running(reg: RegistryContext, evaluator: str, dataset: str) -> list[int]:
    """Mark the pair's ``running`` rows failed as :data:`ABANDONED`; call only under its claim."""
    return reg.store.abandon_running(evaluator, dataset, error=ABANDONED)
