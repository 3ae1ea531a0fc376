"""``autorater analyze ranks`` and ``autorater analyze protocols``: the ReIFE analyses (see
:mod:`registry.cli.analyze` and :mod:`registry.services.rank_analysis`)."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from registry.cli.analyze import app
from registry.cli.common import number as _num
from registry.cli.common import JSON_OPTION, cell, code_column, console, name_column, open_registry, print_json

_DATASETS = typer.Option(None, "--datasets", "-d", help="Dataset versions NAME[@VERSION], comma-separated "
                         "(default: the latest version of every dataset the selected evaluators share).")
_EVALUATORS = typer.Option(None, "--evaluators", "-e", help="Evaluator names or globs, comma-separated "
                           "(e.g. 'gpt-4/*,chatgpt/*'; default: every evaluator).")
_METRIC = typer.Option(None, "--metric", "-m", help="A per-example mean metric (default: accuracy).")
_CHECKPOINTS = typer.Option(None, "--checkpoints", help="Base LLMs / checkpoints of the grid, comma-separated "
                            "(an evaluator's config llm, the prefix of an imported judge's name, or its checkpoint).")
_PROTOCOLS = typer.Option(None, "--protocols", help="Protocols of the grid, comma-separated.")
_N_BOOT = typer.Option(1000, "--n-boot", help="Bootstrap resamples of the examples.")
_SEED = typer.Option(0, "--seed", help="Seed of the bootstrap.")


def _ci(value: float | None, low: float | None, high: float | None, digits: int = 3) -> str:
    return f"{_num(value, digits)} [{_num(low, digits)}, {_num(high, digits)}]"


def _p(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.3g}"


MAX_PAIRS = 15
"""Pairs of a view listed one by one in the terminal; above this, one line per row (``--json`` has every pair)."""


def _per_row(view, title: str, r) -> None:
    rows = list(dict.fromkeys([c.a for c in view.pairs] + [c.b for c in view.pairs]))
    table = Table(title=f"{title}: {len(view.pairs)} pairs, mean Kendall τ-b {_num(view.mean('kendall'))}, mean "
                        f"Spearman ρ {_num(view.mean('spearman'))} ({r.metric}; every pair with --json)")
    name_column(table, view.rows_are[:-1])
    values = [(_num(mean), cell(low.b if low and low.a == row else low.a if low else None),
               _ci(low.kendall, low.kendall_low, low.kendall_high) if low else "-")
              for row, mean, low in view.per_row(rows)]
    for header in ("mean τ-b with the others", "least correlated with", "its τ-b [CI]"):
        _value_column(table, header)
    for row, v in zip(rows, values, strict=True):
        table.add_row(cell(row), *v)
    console.print(table)
    if view.note:
        console.print(f"note: {view.note}", highlight=False, markup=False)


MAX_LEFT_OUT = 3
"""Items left out for one reason listed by name in the terminal; above this, one line with their count."""


def _value_column(table: Table, header: str) -> None:
    """A right-aligned column of values with CIs that wraps, so the name columns keep their width."""
    table.add_column(escape(header), justify="right", overflow="fold", min_width=6)


def _left_out(items) -> None:
    by_reason: dict[tuple[str, str], list[str]] = {}
    for s in items:
        by_reason.setdefault((s.kind, s.reason), []).append(s.name)
    for (kind, reason), names in by_reason.items():
        if len(names) <= MAX_LEFT_OUT:
            for name in names:
                console.print(f"left out {kind} {name}: {reason}", highlight=False, markup=False)
        else:
            console.print(f"left out {len(names)} {kind}s ({', '.join(names[:2])}, …; every one with --json): "
                          f"{reason}", highlight=False, markup=False)


@app.command("ranks")
def ranks(
    datasets: str = _DATASETS,
    evaluators: str = _EVALUATORS,
    metric: str = _METRIC,
    checkpoints: str = _CHECKPOINTS,
    protocols: str = _PROTOCOLS,
    n_boot: int = _N_BOOT,
    seed: int = _SEED,
    json_out: bool = JSON_OPTION,
) -> None:
    """Rank stability (ReIFE): Kendall τ-b and Spearman ρ, with bootstrap CIs over the examples, between
    the evaluators' rankings on every pair of datasets, the base LLMs' rankings under every pair of
    protocols, and the protocols' rankings under every pair of base LLMs."""
    r = open_registry().analyze_ranks(datasets=datasets, evaluators=evaluators, metric=metric,
                                      checkpoints=checkpoints, protocols=protocols, n_boot=n_boot, seed=seed)
    if json_out:
        print_json(r)
        return
    titles = {"datasets": "evaluators ranked on two datasets", "protocols": "base LLMs ranked under two protocols",
              "checkpoints": "protocols ranked for two base LLMs"}
    for view in r.views:
        if not view.pairs:
            console.print(f"{titles[view.name]}: {view.note}", highlight=False, markup=False)
            continue
        if len(view.pairs) > MAX_PAIRS:
            _per_row(view, titles[view.name], r)
            continue
        table = Table(title=f"{titles[view.name]} ({r.metric}; {int(r.level * 100)}% CIs over {r.n_boot} "
                            "resamples of the examples)")
        name_column(table, view.rows_are[:-1] + " A")
        name_column(table, view.rows_are[:-1] + " B")
        values = [(str(c.n_items), _ci(c.kendall, c.kendall_low, c.kendall_high),
                   _ci(c.spearman, c.spearman_low, c.spearman_high)) for c in view.pairs]
        code_column(table, view.items_are, [v[0] for v in values], justify="right")
        for header in ("Kendall τ-b [CI]", "Spearman ρ [CI]"):
            _value_column(table, header)
        for c, v in zip(view.pairs, values, strict=True):
            table.add_row(cell(c.a), cell(c.b), *v)
        console.print(table)
        if view.note:
            console.print(f"note: {view.note}", highlight=False, markup=False)
    _left_out(r.left_out)


@app.command("protocols")
def protocols_command(
    base: str = typer.Option(None, "--base", "-b", help="The base protocol the others are tested against "
                             "(default: pairwise-base or llmbar-vanilla, whichever is present)."),
    datasets: str = _DATASETS,
    evaluators: str = _EVALUATORS,
    metric: str = _METRIC,
    checkpoints: str = _CHECKPOINTS,
    protocols: str = _PROTOCOLS,
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level of the paired tests."),
    n_boot: int = _N_BOOT,
    seed: int = _SEED,
    json_out: bool = JSON_OPTION,
) -> None:
    """Which protocol helps which base LLM (ReIFE): each protocol's accuracy per LLM (macro average over the
    datasets), its mean over the LLMs, paired bootstrap tests against the base protocol, each LLM's mean
    over the protocols and best protocol, and whether the best protocol is the same for every LLM."""
    a = open_registry().analyze_protocols(base=base, datasets=datasets, evaluators=evaluators, metric=metric,
                                          checkpoints=checkpoints, protocols=protocols, n_boot=n_boot, seed=seed,
                                          alpha=alpha)
    if json_out:
        print_json(a)
        return
    rep = a.report
    table = Table(title=f"{a.metric} by protocol (macro average over {len(a.datasets)} dataset(s)); "
                        f"Δ = minus {escape(rep.base)}, paired bootstrap, * p < {rep.alpha:g}")
    name_column(table, "protocol", min_width=10)
    rows = []
    for j, p in enumerate(rep.protocols):
        m = rep.protocol_means[j]
        row = [_ci(m.value, m.ci_low, m.ci_high), _delta(m.versus_base)]
        for i in range(len(rep.checkpoints)):
            c = rep.cells[i][j]
            row.append(f"{_num(c.value)} {_delta(c.versus_base)}" if c.versus_base else _num(c.value) + " (base)")
        rows.append(row)
    headers = ["mean over LLMs [CI]", "Δ mean [CI], p", *rep.checkpoints]
    for header in headers:  # long cells: they wrap, so the protocol names keep their width on 80 columns
        _value_column(table, header)
    for p, row in zip(rep.protocols, rows, strict=True):
        table.add_row(cell(p), *row)
    console.print(table)

    best = Table(title="each base LLM: mean over the protocols and best protocol")
    name_column(best, "LLM", min_width=8)
    values = [(_ci(m.value, m.ci_low, m.ci_high), ", ".join(b.protocols), _num(b.value), _num(b.share, 2),
               ", ".join(b.tied) or "-") for m, b in zip(rep.checkpoint_means, rep.best, strict=True)]
    for header in ("mean [CI]", "best protocol", "best value", "share of resamples"):
        _value_column(best, header)
    name_column(best, f"tied with the best (p ≥ {rep.alpha:g})")
    for b, v in zip(rep.best, values, strict=True):
        best.add_row(cell(b.checkpoint), *(escape(x) for x in v))
    console.print(best)
    verdict = "yes" if rep.same_best else "no"
    console.print(f"is the best protocol the same for every LLM? {verdict} (in {_num(rep.same_best_share, 2)} of "
                  f"the resamples every LLM has the same best)", highlight=False, markup=False)
    _left_out(a.left_out)


def _delta(t) -> str:
    if t is None:
        return "-"
    star = "*" if t.significant else ""
    return f"{t.difference:+.3f}{star} [{_num(t.ci_low)}, {_num(t.ci_high)}] p={_p(t.p_value)}"
