"""``retrain_autorater``: train → register the checkpoint → meta-evaluate it → compare with the
champion → promote it, or record why not (the ``candidate`` alias and the flow's artifact)."""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, get_run_logger, task

from flows._common import open_registry, retry_unless_invalid
from flows.metaeval import meta_evaluate

CANDIDATE = "candidate"
Method = Literal["encoder", "lora"]


@task(name="train-autorater", retries=1, retry_delay_seconds=10, retry_condition_fn=retry_unless_invalid)
def train_task(autorater: str, mixture: dict[str, Any] | str, config: dict[str, Any] | None, parent: str | None,
               model_cards_dir: str | None, method: Method = "encoder") -> dict[str, Any]:
    """Train on the mixture (a dict in the YAML form, or a mixture YAML path) and register the
    checkpoint: the encoder scorer (from ``parent`` when given), or (``method="lora"``) LoRA
    adapters on the llm-judge checkpoint ``parent``."""
    from pathlib import Path

    from registry.domain.training import LoRAConfig, Mixture, TrainConfig
    from registry.errors import InvalidInput
    from registry.services.training import train_autorater, train_llm_judge

    mix = Mixture.from_yaml(mixture) if isinstance(mixture, str) else Mixture.from_dict(mixture)
    cards = Path(model_cards_dir) if model_cards_dir else None
    with open_registry() as reg:
        if method == "lora":
            if not parent:
                raise InvalidInput("LoRA retraining needs parent: the llm-judge checkpoint to adapt", field="parent")
            result = train_llm_judge(reg, autorater=autorater, base=parent, mixture=mix,
                                     config=LoRAConfig(**(config or {})), model_cards_dir=cards)
        elif method == "encoder":
            result = train_autorater(reg, autorater=autorater, mixture=mix, config=TrainConfig(**(config or {})),
                                     parent=parent, model_cards_dir=cards)
        else:
            raise InvalidInput(f"unknown method {method!r}; one of encoder, lora", field="method")
    return {"checkpoint": result.checkpoint.ref, "created": result.created, "rows_used": result.rows_used,
            "seconds": result.seconds, "metrics": result.metrics}


@task(name="create-evaluator")
def evaluator_task(checkpoint: str, protocol: str) -> str:
    """The checkpoint under ``protocol`` as an evaluator (idempotent)."""
    from registry.services.evaluators import create_evaluator

    with open_registry() as reg:
        return create_evaluator(reg, checkpoint=checkpoint, protocol=protocol)[0].name


@task(name="promote-or-record")
def promote_task(checkpoint: str) -> dict[str, Any]:
    """Apply the champion rule; a refused candidate gets the ``candidate`` alias."""
    import dataclasses

    from registry.services.evaluators import set_alias
    from registry.services.regressions import promote_champion

    with open_registry() as reg:
        decision = promote_champion(reg, checkpoint)
        if not decision.promoted:
            set_alias(reg, checkpoint, CANDIDATE)
    return dataclasses.asdict(decision)


@flow(name="retrain-autorater")
def retrain_autorater(autorater: str, mixture: dict[str, Any] | str, config: dict[str, Any] | None = None,
                      parent: str | None = None, protocol: str = "score-single-order",
                      datasets: list[str] | None = None, model_cards_dir: str | None = None,
                      n_boot: int = 1000, method: Method = "encoder") -> dict[str, Any]:
    """Train a new checkpoint of ``autorater`` (from ``parent`` when given), evaluate it under
    ``protocol`` on every dataset's latest version (or ``datasets``), check each run for
    regressions, and move the ``champion`` alias to it when the champion rule allows; otherwise
    the checkpoint gets the ``candidate`` alias and the decision says why.

    ``method="lora"`` fine-tunes the generative judge ``parent`` with LoRA instead (``config`` is
    a :class:`~registry.domain.training.LoRAConfig`; evaluate it under a generative protocol such
    as ``pairwise-base``)."""
    from prefect.artifacts import create_markdown_artifact

    logger = get_run_logger()
    trained = train_task(autorater, mixture, config, parent, model_cards_dir, method)
    checkpoint = trained["checkpoint"]
    evaluator = evaluator_task(checkpoint, protocol)
    evaluation = meta_evaluate(evaluators=[evaluator], datasets=datasets, n_boot=n_boot)
    decision = promote_task(checkpoint)
    verdict = "promoted to champion" if decision["promoted"] else f"kept as {CANDIDATE}"
    logger.info("%s: %s (%s)", checkpoint, verdict, decision["reason"])
    create_markdown_artifact(
        key=f"retrain-{autorater}".lower().replace("_", "-"), description=f"retraining of {autorater}",
        markdown=(f"# {checkpoint}: {verdict}\n\n{decision['reason']}\n\n"
                  f"- runs: {len(evaluation['succeeded'])} new, {len(evaluation['already_done'])} already done\n"
                  f"- regressions: {len(evaluation['regressions'])}\n"))
    return {"checkpoint": checkpoint, "evaluator": evaluator, "training": trained, "evaluation": evaluation,
            "decision": decision}
