"""The training loops' batch plan: seeded epochs of length-bucketed batches (dynamic padding)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def plan_batches(lengths: Sequence[int], *, batch_size: int, epochs: float, max_steps: int | None,
                 rng: random.Random, chunk_batches: int = 64) -> list[list[int]]:
    """Batches of item indices for a whole run.

    Each epoch shuffles the items (a fractional last epoch takes the first part of its shuffle),
    sorts them by length inside chunks of ``chunk_batches`` batches and cuts them into batches —
    little padding per batch — then shuffles the batches, so lengths and tasks stay mixed across
    steps. ``max_steps`` cuts the plan. Everything random comes from ``rng``."""
    plan: list[list[int]] = []
    whole = math.ceil(epochs)
    chunk = batch_size * chunk_batches
    for e in range(whole):
        order = list(range(len(lengths)))
        rng.shuffle(order)
        if e == whole - 1 and epochs != whole:  # a fractional last epoch
            order = order[:max(1, round(len(order) * (epochs - (whole - 1))))]
        batches = []
        for start in range(0, len(order), chunk):
            part = sorted(order[start:start + chunk], key=lambda i: lengths[i])
            batches.extend(part[k:k + batch_size] for k in range(0, len(part), batch_size))
        rng.shuffle(batches)
        plan.extend(batches)
    return plan[:max_steps] if max_steps is not None else plan


__all__ = ["plan_batches"]
