"""Aggregating several human annotators' pairwise labels (codes A=0, B=1, tie=2; FAIL = missing)."""

from __future__ import annotations

import numpy as np

from registry.domain.metrics._counts import as_codes

CATEGORIES = (0, 1, 2)


def vote_counts(votes: np.ndarray) -> np.ndarray:
    """Votes (n, k) → counts per category (n, 3); FAIL (−1) votes are missing and not counted."""
    votes = as_codes(np.atleast_2d(votes), field="votes")
    return np.stack([(votes == c).sum(axis=1) for c in CATEGORIES], axis=1)


def modes(votes: np.ndarray) -> np.ndarray:
    """Boolean (n, 3): which categories are a mode of each row (several when modes tie; none
    when a row has no vote)."""
    return modes_of_counts(vote_counts(votes))


def modes_of_counts(counts: np.ndarray) -> np.ndarray:
    """:func:`modes` of rows given as their :func:`vote_counts` (n, 3)."""
    top = counts.max(axis=1, keepdims=True)
    return (counts == top) & (top > 0)


def majority_vote(votes: np.ndarray, *, no_majority: int = 2) -> np.ndarray:
    """Strict plurality label per row: the category with more votes than every other one;
    ``no_majority`` (default tie) when the top count is shared or there is no vote."""
    m = modes(votes)
    unique = m.sum(axis=1) == 1
    return np.where(unique, m.argmax(axis=1), no_majority).astype(np.int8)
