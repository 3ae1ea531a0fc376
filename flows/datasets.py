"""``register_dataset``: one source file → adapter → spec validation → a stored dataset version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from flows._common import open_registry, retry_unless_invalid


@task(name="register-dataset-version", retries=1, retry_delay_seconds=2, retry_condition_fn=retry_unless_invalid)
def register_version_task(name: str, source: str, path: str, options: dict[str, Any] | None,
                          task_type: str | None, labels: list[str] | None, description: str | None) -> dict[str, Any]:
    """Read, validate and store one version (nothing is left behind when validation fails)."""
    from registry.services.datasets import register_dataset_version

    with open_registry() as reg:
        r = register_dataset_version(reg, name=name, source=source, path=Path(path), options=options,
                                     task_type=task_type, labels=tuple(labels) if labels else None,
                                     description=description)
    v = r.version
    return {"ref": v.ref, "created": r.created, "content_hash": v.content_hash, "row_count": v.row_count,
            "task_type": v.task_type, "diff": r.diff}


@flow(name="register-dataset", log_prints=False)
def register_dataset(name: str, source: str, path: str, options: dict[str, Any] | None = None,
                     task_type: str | None = None, labels: list[str] | None = None,
                     description: str | None = None, evaluate: bool = False) -> dict[str, Any]:
    """Register ``path`` (read by adapter ``source``) as a version of dataset ``name``.

    With ``evaluate`` the new version is meta-evaluated right away by every active evaluator (a
    served registry does the same through the ``autorater.dataset.version.registered`` event)."""
    result = register_version_task(name, source, str(path), options, task_type, labels, description)
    get_run_logger().info("%s %s (%d rows)", "registered" if result["created"] else "unchanged",
                          result["ref"], result["row_count"])
    if evaluate:
        from flows.metaeval import meta_evaluate

        result["evaluation"] = meta_evaluate(datasets=[result["ref"]])
    return result
