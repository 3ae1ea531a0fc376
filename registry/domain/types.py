"""Closed vocabularies shared by every layer."""

from typing import Literal

TaskType = Literal["pairwise", "pointwise", "classification"]
TASK_TYPES: tuple[TaskType, ...] = ("pairwise", "pointwise", "classification")
PAIRWISE_LABELS: tuple[str, ...] = ("A", "B", "tie")
