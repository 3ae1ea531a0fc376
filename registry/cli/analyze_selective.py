"""``autorater analyze selective`` (Trust or Escalate: a confidence threshold with a guarantee, and
cascades of judges up to a human) and ``autorater analyze ppi`` (prediction-powered estimates,
PPI++) — see :mod:`registry.cli.analyze`; the math is in :mod:`registry.domain.selective` and
:mod:`registry.domain.ppi`."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from registry.cli.analyze import app
from registry.cli.common import number as _num
from registry.cli.common import JSON_OPTION, cell, code_column, console, name_column, open_registry, print_json


def _cost(costs: dict) -> str:
    unit = {"judgments": lambda v: f"{v:,.0f} judgments", "seconds": lambda v: f"{v:,.1f} s",
            "usd": lambda v: f"${v:,.4f}"}
    parts = [unit.get(k, lambda v, k=k: f"{k} {v:.3f}")(v) for k, v in sorted(costs.items()) if v is not None]
    return "\n".join(parts) or "-"


@app.command("selective")
def selective(
    evaluator: str = typer.Option(None, "--evaluator", "-e", help="Evaluator (the first level of a cascade)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset NAME[@VERSION] (pairwise or classification)."),
    target: float = typer.Option(0.9, "--target", help="Accuracy to guarantee on the kept examples."),
    delta: float = typer.Option(0.1, "--delta", help="Allowed probability that the guarantee fails."),
    confidence: str = typer.Option("auto", "--confidence",
                                   help="auto | prob_a | orders | samples (auto: the first available, in that order)."),
    calibration_fraction: float = typer.Option(0.5, "--calibration-fraction", help="Share of examples to calibrate on."),
    seed: int = typer.Option(0, "--seed", help="Seed of the calibration/test split."),
    cascade: str = typer.Option(None, "--cascade",
                                help="E1,E2,…: judges from cheap to expensive (after --evaluator), then 'human'."),
    splits: int = typer.Option(1, "--splits", help="Repeat over this many seeded splits (share meeting the target)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Calibrate a confidence threshold on a calibration split so that accuracy on the kept examples
    is ≥ TARGET with probability ≥ 1 − DELTA (fixed-sequence testing, exact binomial p-values);
    report coverage, accuracy and cost on the test split. With --cascade, what a judge does not keep
    goes to the next judge, and finally to a human."""
    names = [c.strip() for c in cascade.split(",")] if cascade else None
    r = open_registry().analyze_selective(evaluator, dataset, target=target, delta=delta, confidence=confidence,
                                          calibration_fraction=calibration_fraction, seed=seed, cascade=names,
                                          splits=splits)
    if json_out:
        print_json(r)
        return
    table = Table(title=f"selective evaluation on {escape(r.dataset)}: accuracy ≥ {r.target:g} with probability "
                        f"≥ {1 - r.delta:g} ({r.n_calibration} calibration / {r.n_test} test examples)")
    name_column(table, "level\n(confidence)")
    rows = [(_num(lv.threshold), f"{lv.test['reached']} → {lv.test['kept']}", _num(lv.test["coverage"]),
             _num(lv.test["accuracy"]), _num(lv.accuracy_all), _cost(lv.test["cost_per_1000"])) for lv in r.levels]
    rows.append(("-", f"{r.human['reached']} → {r.human['kept']}", _num(r.human["coverage"]), "1.000", "-", "0"))
    headers = ("λ", "reached\n→ kept", "share", "acc\nkept", "acc\nall", "cost/\n1000")
    for i, header in enumerate(headers):
        code_column(table, header, [row[i] for row in rows], justify="right")
    names = [f"{cell(lv.evaluator)}\n({lv.confidence})" for lv in r.levels] + ["human"]
    for name, row in zip(names, rows, strict=True):
        table.add_row(name, *row)
    console.print(table)
    verdict = "met" if r.met else "NOT met"
    console.print(f"judges decide {r.coverage:.1%} of the test examples at accuracy {_num(r.accuracy)} (target "
                  f"{r.target:g}: {verdict}); {r.human_fraction:.1%} escalated to a human; judges' cost per 1000: "
                  f"{_cost(r.cost_per_1000).replace(chr(10), ', ')}", highlight=False, markup=False)
    for lv in r.levels:
        if lv.threshold is None and lv.calibration.get("reason"):
            console.print(f"{lv.evaluator}: {lv.calibration['reason']}", highlight=False, markup=False)
    if r.simulation:
        s = r.simulation
        console.print(f"over {s['splits']} seeded splits: target met in {s['met']:.1%} (guarantee: ≥ {1 - r.delta:.0%}), "
                      f"a threshold found in {s['with_threshold']:.1%}, mean coverage {s['mean_coverage']:.1%}",
                      highlight=False, markup=False)


@app.command("ppi")
def ppi(
    evaluator: str = typer.Option(..., "--evaluator", "-e", help="Evaluator whose verdicts cover every example."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset NAME[@VERSION]."),
    human_labels: int = typer.Option(..., "--human-labels", "-n", help="Number N of random human labels used."),
    metric: str = typer.Option(None, "--metric", "-m",
                               help="win_rate_a (pairwise) | positive_rate (classification) | mean_score (pointwise)."),
    positive: str = typer.Option(None, "--positive", help="positive_rate's class (default: the rarer human label)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the draw of human labels."),
    draws: int = typer.Option(1, "--draws", help="Repeat the draw K times: coverage of the full-label value, widths."),
    alpha: float = typer.Option(0.05, "--alpha", help="1 − confidence level of the CIs."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Estimate a metric that needs human labels from the judge's verdicts on every example plus N
    human labels (PPI++, power-tuned), with its CI beside the human-only CI on the same N."""
    r = open_registry().analyze_ppi(evaluator, dataset, human_labels=human_labels, metric=metric, positive=positive,
                                    seed=seed, draws=draws, alpha=alpha)
    if json_out:
        print_json(r)
        return
    what = f"{r.metric} ({r.positive})" if r.positive else r.metric
    table = Table(title=f"{escape(what)} on {escape(r.dataset)}: {r.human_labels} human labels + "
                        f"{escape(r.evaluator)}'s verdicts on {r.n_total} examples ({1 - r.alpha:.0%} CIs)")
    name_column(table, "estimate")
    rows = [(_num(e["estimate"]), f"[{_num(e['ci_low'])}, {_num(e['ci_high'])}]", _num(e["width"]),
             _num(e.get("lambda"), 2)) for e in (r.ppi, r.classical)]
    for i, header in enumerate(("value", "CI", "width", "λ")):
        code_column(table, header, [row[i] for row in rows], justify="right")
    for name, row in zip(("PPI++", "human only"), rows, strict=True):
        table.add_row(name, *row)
    console.print(table)
    console.print(f"judge alone {_num(r.judge_only)}; all {r.n_total} human labels {_num(r.full_label_value)}",
                  highlight=False, markup=False)
    if r.simulation:
        s = r.simulation
        console.print(f"over {s['draws']} draws of {s['n']} labels: coverage PPI++ {s['ppi_coverage']:.1%}, human only "
                      f"{s['classical_coverage']:.1%}; mean width PPI++ {_num(s['ppi_mean_width'])}, human only "
                      f"{_num(s['classical_mean_width'])}", highlight=False, markup=False)
