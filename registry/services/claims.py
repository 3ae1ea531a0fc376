"""Claims: at most one live process evaluates a given (evaluator, dataset version) pair.

A claim is an advisory lock held for the length of the evaluation
(:meth:`~registry.adapters.store.abstract.AbstractStore.claim_pair`: ``pg_try_advisory_lock`` on
PostgreSQL, an ``flock`` beside the SQLite file). The database server or the operating system
releases it when the holder dies, even on SIGKILL or a lost machine, so:

* a run row still ``running`` when its pair is claimed belongs to a process that died; it is
  marked ``failed`` with the error :data:`ABANDONED` and the pair runs again (the dead run's
  cached judgments are reused, so only the rest is computed);
* a pair whose claim is held elsewhere is ``busy``: the holder is alive and will finish it.

Every run takes its pair's claim: the flows' :func:`~registry.services.matrix.evaluate_pair` at
once or not at all (``busy``), :func:`~registry.services.evaluation.run_evaluation` (``autorater
eval run``, ``eval matrix``) waiting for a live holder to finish, then taking the holder's run when
it has the same parameters. :func:`reap_abandoned` (for ``store gc``) marks the ``running`` rows of
dead processes failed without running anything.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from registry.services.app import RegistryContext

ABANDONED = "abandoned: the process running it ended without finishing (found when the pair was claimed again)"


def claim(reg: RegistryContext, evaluator: str, dataset: str, *,
          wait: float | None = 0) -> AbstractContextManager[bool]:
    """Hold the claim of ``evaluator`` on ``dataset`` (``name@version``) for the block; yields
    ``False`` (and holds nothing) when another live process holds it — at once (``wait=0``),
    after ``wait`` seconds, or never (``wait=None``: waits for the holder to end)."""
    return reg.store.claim_pair(evaluator, dataset, wait=wait)


def abandon_running(reg: RegistryContext, evaluator: str, dataset: str) -> list[int]:
    """Mark the pair's ``running`` rows failed as :data:`ABANDONED`; call only under its claim."""
    return reg.store.abandon_running(evaluator, dataset, error=ABANDONED)


def reap_abandoned(reg: RegistryContext) -> list[int]:
    """Mark every ``running`` row whose process died failed as :data:`ABANDONED` (its pair's
    claim is free: no live process is running it); returns their ids. Rows of live runs (claim
    held) are left alone. Nothing is re-run: the next ``eval run`` or flow of the pair does that."""
    pairs = dict.fromkeys((r.evaluator, r.dataset) for r in reg.store.list_runs(status="running"))
    out: list[int] = []
    for evaluator, dataset in pairs:
        with claim(reg, evaluator, dataset) as got:
            if got:
                out += abandon_running(reg, evaluator, dataset)
    return sorted(out)
