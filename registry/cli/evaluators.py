"""``autorater checkpoint | protocol | evaluator``: what is evaluated and how."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from registry.cli.common import (
    JSON_OPTION,
    cell,
    code_column,
    console,
    name_column,
    new_app,
    open_registry,
    print_json,
)
from registry.domain.options import parse_json_pairs

checkpoint_app = new_app("Autorater checkpoints (safetensors folders, built-in heuristics, external models).")
protocol_app = new_app("Evaluation protocols (versioned, hashed recipes).")
evaluator_app = new_app("Evaluators: a checkpoint under a protocol.")


def _kv(items: list[str] | None, option: str) -> dict:
    """KEY=VALUE items; values that parse as JSON (numbers, true/false) keep their type."""
    return parse_json_pairs(items, option=option)


@checkpoint_app.command("register")
def checkpoint_register(
    autorater: str = typer.Argument(..., help="Autorater name, e.g. minilm-scorer or gpt-4."),
    kind: str = typer.Option(..., "--kind", "-k", help="Evaluator kind: encoder-scorer, random, longer, ..., external."),
    path: Path = typer.Option(None, "--path", "-p", help="Folder of safetensors weights (copied into the store)."),
    uri: str = typer.Option(None, "--uri", help="Hub id or external:NAME for models that are not stored."),
    default: bool = typer.Option(False, "--default", help="Build and register the default untrained MiniLM scorer."),
    model_card: str = typer.Option(None, "--model-card", help="Path of the model card (model_cards/...)."),
    parent: str = typer.Option(None, "--parent", help="Parent checkpoint AUTORATER@VERSION (lineage)."),
    tag: list[str] = typer.Option(None, "--tag", help="KEY=VALUE tag (repeatable)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Register a checkpoint (idempotent on content) as the next version of AUTORATER."""
    reg = open_registry()
    tags = _kv(tag, "--tag")
    if default:
        r = reg.register_default_checkpoint(autorater, seed=int(tags.get("seed", 0)), model_card=model_card,
                                            tags=tags, parent=parent)
    else:
        r = reg.register_checkpoint(autorater, kind=kind, path=path, uri=uri, model_card=model_card, tags=tags,
                                    parent=parent)
    ckpt, created = r.entity, r.created
    if json_out:
        print_json(r)
    else:
        console.print(("registered " if created else "unchanged: ") + f"[bold]{ckpt.ref}[/] sha256 {ckpt.sha256[:12]}")


@checkpoint_app.command("list")
def checkpoint_list(autorater: str = typer.Option(None, "--autorater", help="Only this autorater."),
                    json_out: bool = JSON_OPTION) -> None:
    """List checkpoints with their aliases."""
    rows = open_registry().checkpoints(autorater)
    if json_out:
        print_json(rows)
        return
    table = Table(title=f"checkpoints ({len(rows)})")
    cells = [(c.ref, c.kind, c.format, ", ".join(c.aliases), c.sha256[:12], c.uri) for c in rows]
    for col in ("checkpoint", "kind"):
        name_column(table, col)
    for i, col in ((2, "format"), (3, "aliases"), (4, "sha256")):
        code_column(table, col, [r[i] for r in cells])
    name_column(table, "uri")
    for r in cells:
        table.add_row(*map(cell, r))
    console.print(table)


@checkpoint_app.command("alias")
def checkpoint_alias(ref: str = typer.Argument(..., help="AUTORATER@VERSION"),
                     alias: str = typer.Argument(..., help="Alias to move, e.g. champion."),
                     json_out: bool = JSON_OPTION) -> None:
    """Point ALIAS of the autorater at checkpoint REF (moving it if it exists)."""
    ckpt = open_registry().set_alias(ref, alias)
    print_json(ckpt) if json_out else console.print(f"{alias} → [bold]{ckpt.ref}[/]")


@checkpoint_app.command("promote")
def checkpoint_promote(
    ref: str = typer.Argument(..., help="Candidate checkpoint AUTORATER@VERSION."),
    metric: str = typer.Option(None, "--metric", help="Metric to compare (default: each dataset's headline metric)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Move the autorater's champion alias to REF if it has no open regression and a better mean
    metric than the champion on the datasets both were evaluated on. Exits 1 when refused."""
    decision = open_registry().promote(ref, metric=metric)
    if json_out:
        print_json(decision)
    else:
        verdict = "[bold green]promoted[/]" if decision.promoted else "[bold yellow]refused[/]"
        console.print(f"{verdict} {decision.candidate} (champion was {decision.previous_champion or 'none'}): "
                      f"{decision.reason}", highlight=False)
    if not decision.promoted:
        raise typer.Exit(1)


@protocol_app.command("list")
def protocol_list(json_out: bool = JSON_OPTION) -> None:
    """List registered protocols (shipped protocol files are synced first)."""
    rows = open_registry().protocols()
    if json_out:
        print_json(rows)
        return
    table = Table(title=f"protocols ({len(rows)})")
    name_column(table, "protocol")
    code_column(table, "sha256", [p.sha256[:12] for p in rows])
    table.add_column("description", overflow="fold")
    for p in rows:
        table.add_row(cell(p.ref), p.sha256[:12], cell(p.description))
    console.print(table)


@protocol_app.command("show")
def protocol_show(ref: str = typer.Argument(..., help="NAME or NAME@VERSION."), json_out: bool = JSON_OPTION) -> None:
    """Show a protocol's configuration."""
    p = open_registry().protocol(ref)
    if json_out:
        print_json(p)
    else:
        console.print(f"[bold]{p.ref}[/] sha256 {p.sha256}\n{p.description}")
        print_json(p.config)


@evaluator_app.command("create")
def evaluator_create(
    checkpoint: str = typer.Option(None, "--checkpoint", "-c", help="AUTORATER[@VERSION|@ALIAS]."),
    protocol: str = typer.Option("score-both-orders", "--protocol", "-p", help="Protocol NAME[@VERSION]."),
    name: str = typer.Option(None, "--name", help="Evaluator name (default AUTORATER@V/PROTOCOL)."),
    config: list[str] = typer.Option(None, "--config", help="KEY=VALUE evaluator setting (repeatable)."),
    price: float = typer.Option(None, "--price-per-1k-tokens", help="USD per 1000 tokens, for cost reports."),
    baselines: bool = typer.Option(False, "--baselines", help="Create the heuristic baselines and the untrained MiniLM scorer."),
    jury: str = typer.Option(None, "--jury", help="E1,E2,…: a jury of these evaluators, combined from their stored "
                                                  "runs (no model calls; see --combine)."),
    combine: str = typer.Option("majority", "--combine", help="Jury combiner: majority | weighted (agreement-weighted "
                                                              "vote) | stacked (logistic model)."),
    folds: int = typer.Option(5, "--folds", help="Jury cross-fitting folds (weighted, stacked)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the jury's (or cascade's) fold assignment."),
    cascade: str = typer.Option(None, "--cascade", help="E1,E2,…: a cascade of these evaluators, cheapest first, "
                                                        "routed through their stored runs (no model calls)."),
    target: float = typer.Option(0.9, "--target", help="Cascade: accuracy each trusted level must reach."),
    delta: float = typer.Option(0.1, "--delta", help="Cascade: allowed failure probability of the guarantee."),
    confidence: str = typer.Option("auto", "--confidence", help="Cascade: members' confidence: auto | prob_a | "
                                                                "samples | orders."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Create an evaluator from a checkpoint and a protocol (idempotent), a jury of evaluators
    (--jury E1,E2,… --combine majority|weighted|stacked) or a cascade (--cascade E1,E2,… --target --delta)."""
    reg = open_registry()
    if cascade is not None:
        if jury is not None or checkpoint or baselines or config or price is not None:
            from registry.errors import InvalidInput

            raise InvalidInput("--cascade creates a cascade of existing evaluators; leave out --jury, --checkpoint, "
                               "--config, --price-per-1k-tokens and --baselines (its cost is its members')",
                               field="cascade")
        r = reg.create_cascade(members=[m.strip() for m in cascade.split(",")], target=target, delta=delta,
                               confidence=confidence, folds=folds, seed=seed, name=name)
        if json_out:
            print_json(r)
        else:
            members = " → ".join(m["name"] for m in r.entity.config["members"])
            console.print(("created " if r.created else "unchanged: ") + f"cascade [bold]{r.entity.name}[/] "
                          f"({members}; target {target:g}, δ {delta:g}) sha256 {r.entity.sha256[:12]}",
                          highlight=False)
        return
    if jury is not None:
        if checkpoint or baselines or config or price is not None:
            from registry.errors import InvalidInput

            raise InvalidInput("--jury creates a jury of existing evaluators; leave out --checkpoint, --config, "
                               "--price-per-1k-tokens and --baselines (its cost is its members')", field="jury")
        r = reg.create_jury(members=[m.strip() for m in jury.split(",")], combine=combine, folds=folds, seed=seed,
                            name=name)
        if json_out:
            print_json(r)
        else:
            members = ", ".join(m["name"] for m in r.entity.config["members"])
            console.print(("created " if r.created else "unchanged: ") + f"jury [bold]{r.entity.name}[/] "
                          f"({combine} of {members}) sha256 {r.entity.sha256[:12]}", highlight=False)
        return
    if baselines:
        rows = reg.create_baselines()
        print_json(rows) if json_out else console.print("evaluators: " + ", ".join(e.name for e in rows))
        return
    if not checkpoint:
        from registry.errors import InvalidInput

        raise InvalidInput("pass --checkpoint AUTORATER[@VERSION] (or --baselines)", field="checkpoint")
    r = reg.create_evaluator(checkpoint=checkpoint, protocol=protocol, name=name, config=_kv(config, "--config"),
                             price_per_1k_tokens=price)
    ev, created = r.entity, r.created
    if json_out:
        print_json(r)
    else:
        console.print(("created " if created else "unchanged: ") + f"[bold]{ev.name}[/] sha256 {ev.sha256[:12]}")


@evaluator_app.command("list")
def evaluator_list(json_out: bool = JSON_OPTION) -> None:
    """List evaluators."""
    rows = open_registry().evaluators()
    if json_out:
        print_json(rows)
        return
    table = Table(title=f"evaluators ({len(rows)})")
    cells = [(e.name, e.kind, e.checkpoint or "-", e.protocol, "yes" if e.active else "no", e.sha256[:12])
             for e in rows]
    for col in ("evaluator", "kind", "checkpoint", "protocol"):
        name_column(table, col)
    code_column(table, "active", [r[4] for r in cells])
    code_column(table, "sha256", [r[5] for r in cells])
    for r in cells:
        table.add_row(*map(cell, r))
    console.print(table)
