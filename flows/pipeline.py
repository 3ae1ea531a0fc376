"""The stages of the DVC pipeline (``dvc.yaml``): ``python -m flows.pipeline STAGE``.

``register`` → ``train`` → ``evaluate`` → ``report``, each reading its section of
``params.yaml`` and writing a small JSON file under ``pipeline/`` that the next stage depends on;
``report`` writes ``pipeline/metrics.json`` (DVC metrics: ``dvc metrics diff`` compares two
revisions) and ``pipeline/report.md``. The registry itself (database and content store) lives in
``registry.home`` beside the pipeline and is content-addressed, so re-running a stage with the same
inputs reproduces the same versions, checkpoint and runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

OUT = Path("pipeline")


def _params(path: str = "params.yaml") -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def _registry(params: dict[str, Any], *, init: bool = False):
    from registry.config import Settings
    from registry.services.app import RegistryContext, init_registry

    home = Path(params["registry"]["home"]).resolve()
    settings = Settings.from_env(home=str(home), db_url=params["registry"].get("db_url") or f"sqlite:///{home}/registry.db",
                                 store=str(home / "store"), dvc_remote=str(home / "dvc-remote"))
    return init_registry(settings) if init else RegistryContext.open(settings)


def _write(name: str, data: Any) -> None:
    OUT.mkdir(exist_ok=True)
    (OUT / name).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _read(name: str) -> Any:
    return json.loads((OUT / name).read_text(encoding="utf-8"))


def register(params: dict[str, Any]) -> None:
    """Register the catalog datasets named in ``register.datasets`` from the data folder."""
    from registry.errors import InvalidInput
    from registry.services.datasets import register_all

    names = list(params["register"]["datasets"])
    reg = _registry(params, init=True)
    try:
        if reg.settings.data_root is None:
            raise InvalidInput("no data folder: set AUTORATER_DATA")
        result = register_all(reg, reg.settings.data_root, only=set(names))
        problems = result.failed + result.skipped
        if problems:
            raise InvalidInput(f"datasets not registered: {problems}")
        versions = {r.version.dataset: r.version for r in result.registered + result.unchanged}
        _write("registered.json", {n: {"ref": versions[n].ref, "content_hash": versions[n].content_hash,
                                       "rows": versions[n].row_count} for n in names})
    finally:
        reg.close()


def train(params: dict[str, Any]) -> None:
    """Train ``train.autorater`` on ``train.mixture`` with ``train.config``."""
    from registry.domain.training import Mixture, TrainConfig
    from registry.services.training import train_autorater

    p = params["train"]
    registered = _read("registered.json")
    reg = _registry(params)
    try:
        # pin the mixture to the versions the register stage produced
        mixture = dict(p["mixture"])
        mixture["components"] = [
            {**c, "dataset": registered[c["dataset"]]["ref"]} if c["dataset"] in registered else c
            for c in ({"dataset": c} if isinstance(c, str) else c for c in mixture["components"])]
        result = train_autorater(reg, autorater=p["autorater"], mixture=Mixture.from_dict(mixture),
                                 config=TrainConfig(**p.get("config", {})), parent=p.get("parent"))
        _write("checkpoint.json", {"checkpoint": result.checkpoint.ref, "sha256": result.checkpoint.sha256,
                                   "rows_used": result.rows_used,
                                   "train_metrics": {k: v for k, v in result.metrics.items()
                                                     if k not in ("seconds", "rows_per_s")}})
    finally:
        reg.close()


def evaluate(params: dict[str, Any]) -> None:
    """Evaluate the trained checkpoint (under ``evaluate.protocol``) on ``evaluate.datasets``."""
    from registry.services.evaluators import create_evaluator
    from registry.services.matrix import evaluate_pair, missing_pairs

    p = params["evaluate"]
    registered = _read("registered.json")
    checkpoint = _read("checkpoint.json")["checkpoint"]
    reg = _registry(params)
    try:
        ev, _ = create_evaluator(reg, checkpoint=checkpoint, protocol=p.get("protocol", "score-single-order"))
        refs = [registered[d]["ref"] for d in p["datasets"]]
        for pair in missing_pairs(reg, evaluators=[ev.name], datasets=refs):
            evaluate_pair(reg, pair, seed=p.get("seed", 0), n_boot=p.get("n_boot", 1000))
        runs = {r.dataset: r for r in reg.store.latest_runs(evaluator=ev.name)}
        _write("runs.json", {"evaluator": ev.name, "runs": {ref: runs[ref].id for ref in refs if ref in runs}})
    finally:
        reg.close()


def report(params: dict[str, Any]) -> None:
    """Headline metric with its 95% CI per dataset → ``metrics.json`` and ``report.md``."""
    from registry.services.scoring import headline_for

    runs = _read("runs.json")
    reg = _registry(params)
    try:
        metrics: dict[str, Any] = {}
        lines = [f"# {runs['evaluator']}", "", "| dataset | metric | value | 95% CI | n |", "|---|---|---|---|---|"]
        for ref, run_id in sorted(runs["runs"].items()):
            run = reg.store.get_run(run_id)
            name = headline_for(reg.store.get_version(ref))
            m = run.metric(name)
            if m is None or m.value is None:
                continue
            metrics[ref.split("@")[0]] = {name: m.value, f"{name}_ci_low": m.ci_low, f"{name}_ci_high": m.ci_high,
                                          "n": m.n}
            lines.append(f"| {ref} | {name} | {m.value:.4f} | [{m.ci_low:.4f}, {m.ci_high:.4f}] | {m.n} |")
        _write("metrics.json", metrics)
        (OUT / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    finally:
        reg.close()


STAGES = {"register": register, "train": train, "evaluate": evaluate, "report": report}


def main(argv: list[str] | None = None) -> int:
    """``python -m flows.pipeline STAGE [PARAMS_FILE]``."""
    from registry.errors import RegistryError

    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in STAGES:
        print(f"usage: python -m flows.pipeline {{{','.join(STAGES)}}} [params.yaml]", file=sys.stderr)
        return 2
    try:
        STAGES[argv[0]](_params(*argv[1:2]))
    except RegistryError as exc:
        print(f"error ({exc.code}): {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
