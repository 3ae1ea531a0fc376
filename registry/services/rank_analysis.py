"""ReIFE analyses over the stored runs (issue 15): ``analyze ranks`` and ``analyze protocols``.

The math is :mod:`registry.domain.rank_analysis`; this module only gathers, for a selection of
evaluators and dataset versions, the latest succeeded run of each evaluator on each version and its
per-example values of the metric (a per-example *mean* metric: ``accuracy`` — ReIFE's ½-credit
accuracy — by default; ``correct_both``, ``accuracy_3way``, … also work), from the per-example
judgments the standings keep (:mod:`registry.services.standings`; computed from the predictions
once for a run without them).

Grouping evaluators by base LLM (checkpoint) and protocol: an evaluator's config may say it
(``llm`` and ``protocol``: what ``eval import-tree`` records for LLMBar's judges); else an imported
(``external``) evaluator named ``<llm>/<protocol>`` — LLMBar's ``gpt-4/llmbar-vanilla`` — gives both
from its name (registries imported before the config held them); else the checkpoint reference
and the protocol name (``tiny-s@1`` × ``pairwise-cot``, as ``eval matrix`` makes them).

Datasets: the named versions (``NAME`` = latest), else the latest version of every dataset on which
at least two selected evaluators ran and that shares two evaluators with another such dataset (ranks)
or on which some checkpoint ran under two protocols (protocols). Each dataset's examples are
resampled with their own seeded draw (derived from ``seed`` and the dataset reference, so a
dataset's resamples do not depend on what else is selected).
"""

from __future__ import annotations

import fnmatch
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from registry.domain.metrics.bootstrap import Bootstrap
from registry.domain.rank_analysis import (
    RankView,
    accuracy_points,
    accuracy_samples,
    analyze_protocols as _analyze_protocols,
    complete_block,
    correlate_rows,
    grid_accuracies,
)
from registry.errors import InvalidInput, NotFound
from registry.results import GridCell, LeftOutItem, ProtocolAnalysis, RankAnalysis
from registry.services.app import RegistryContext

DEFAULT_METRIC = "accuracy"
BASE_PROTOCOLS = ("pairwise-base", "llmbar-vanilla", "base", "vanilla")
"""The default base protocol: the first of these present."""


def _split(values: str | Sequence[str] | None) -> list[str]:
    if values is None:
        return []
    items = values.split(",") if isinstance(values, str) else [v for x in values for v in str(x).split(",")]
    return [v.strip() for v in items if v and v.strip()]


def llm_and_protocol(ev) -> tuple[str, str]:
    """(base LLM / checkpoint, protocol) of an evaluator (module docstring)."""
    cfg = ev.config or {}
    if isinstance(cfg.get("llm"), str) and isinstance(cfg.get("protocol"), str):
        return cfg["llm"], cfg["protocol"]
    if ev.kind == "external":
        head, _, tail = ev.name.partition("/")
        return (head, tail) if tail else (ev.name, "external")
    return ev.checkpoint or ev.name, ev.protocol.split("@")[0]


def _select_evaluators(reg: RegistryContext, patterns: str | Sequence[str] | None) -> dict:
    everyone = {e.name: e for e in reg.store.list_evaluators()}
    wanted = _split(patterns)
    if not wanted:
        return everyone
    chosen: dict = {}
    for p in wanted:
        if any(ch in p for ch in "*?["):
            hits = fnmatch.filter(everyone, p)
            if not hits:
                raise InvalidInput(f"no evaluator matches {p!r}", field="evaluators")
            chosen.update((h, everyone[h]) for h in hits)
        elif p in everyone:
            chosen[p] = everyone[p]
        else:
            raise NotFound.named("evaluator", p, everyone)
    return chosen


def _seed(seed: int, ref: str) -> int:
    return int(np.random.SeedSequence([seed, zlib.crc32(ref.encode())]).generate_state(1)[0])


@dataclass
class _Data:
    """Per dataset version: each selected evaluator's per-example values (NaN: not judged) over the
    version's rows, and the run they come from."""

    metric: str
    evaluators: dict
    refs: list[str]
    values: dict[str, dict[str, np.ndarray]]
    runs: dict[tuple[str, str], int]
    n_rows: dict[str, int]
    skipped: list[LeftOutItem]
    explicit: bool

    def draw(self, ref: str, n_boot: int, seed: int) -> Bootstrap:
        return Bootstrap.draw(self.n_rows[ref], n_boot, _seed(seed, ref))


def _gather(reg: RegistryContext, *, datasets, evaluators, metric: str | None) -> _Data:
    from registry.domain.metrics.per_example import untestable_reason
    from registry.services.queries import _StoredRuns

    metric = metric or DEFAULT_METRIC
    if untestable_reason(metric):
        raise InvalidInput(f"{metric} cannot be resampled by examples: {untestable_reason(metric)}", field="metric")
    chosen = _select_evaluators(reg, evaluators)
    named = _split(datasets)
    store = reg.store
    versions = [store.get_version(d) for d in named] if named else \
        sorted(store.latest_versions().values(), key=lambda v: v.ref)
    if named and len({v.ref for v in versions}) < len(versions):
        raise InvalidInput("--datasets names a dataset version twice", field="datasets")
    refs = [v.ref for v in versions]
    by_ref: dict[str, dict[str, int]] = {r: {} for r in refs}
    for run in store.latest_runs(datasets=refs):
        if run.evaluator in chosen:
            by_ref[run.dataset][run.evaluator] = run.id
    data = _Data(metric, chosen, [], {}, {}, {}, [], bool(named))
    for v in versions:
        ran = by_ref[v.ref]
        if len(ran) < 2:
            data.skipped.append(LeftOutItem("dataset", v.ref, f"{len(ran)} of the selected evaluators ran on it "
                                                              "(2 needed)"))
            continue
        stored = _StoredRuns(reg, v, sorted(ran.values()))
        n_rows = stored.columns.table.num_rows
        position = {str(e): i for i, e in enumerate(stored.columns.at("example_id", np.arange(n_rows)))}
        rows: dict[str, np.ndarray] = {}
        try:
            for name, run_id in sorted(ran.items()):
                d = stored.decomposition(run_id, metric)
                if d.kind != "mean":
                    raise InvalidInput(f"{metric} is not a mean of per-example values on {v.ref} ({v.task_type}); "
                                       "the analyses resample examples and average: use accuracy, correct_both, "
                                       "accuracy_3way or another per-example mean", field="metric")
                x = np.full(n_rows, np.nan)
                x[[position[i] for i in d.ids]] = d.values(d.columns)
                rows[name] = x
        except InvalidInput as exc:
            if named:
                raise InvalidInput(f"{v.ref}: {exc}", field="metric") from None
            data.skipped.append(LeftOutItem("dataset", v.ref, str(exc)))
            continue
        data.refs.append(v.ref)
        data.values[v.ref] = rows
        data.n_rows[v.ref] = n_rows
        data.runs.update(((name, v.ref), run_id) for name, run_id in ran.items())
    return data


# ----------------------------------------------------------------------------- the checkpoint × protocol grid
@dataclass
class _Grid:
    checkpoints: list[str]
    protocols: list[str]
    evaluator: dict[tuple[str, str], str]
    refs: list[str]
    left_out: list[LeftOutItem]

    def values(self, data: _Data) -> list[np.ndarray]:
        """Per dataset: (L, P, n) per-example values."""
        return [np.stack([np.stack([data.values[ref][self.evaluator[(c, p)]] for p in self.protocols])
                          for c in self.checkpoints]) for ref in self.refs]

    def cells(self) -> tuple[GridCell, ...]:
        return tuple(GridCell(c, p, self.evaluator[(c, p)]) for c in self.checkpoints for p in self.protocols)


def _grid(data: _Data, *, checkpoints, protocols, base: str | None) -> _Grid:
    """The complete checkpoint × protocol block of the selected evaluators on the usable datasets."""
    cells: dict[tuple[str, str], str] = {}
    left: list[LeftOutItem] = []
    # two evaluators of one checkpoint under one protocol (other configs, e.g. max_tokens): the cell keeps the
    # one that ran on the most datasets (then the first name), the other is left out with the reason
    runs_of = {name: sum(name in data.values[ref] for ref in data.refs) for name in data.evaluators}
    for name in sorted(data.evaluators, key=lambda n: (-runs_of[n], n)):
        key = llm_and_protocol(data.evaluators[name])
        if key in cells:
            left.append(LeftOutItem("evaluator", name, f"{key[0]} under protocol {key[1]} is {cells[key]} in the "
                                    "grid (another config of it; choose with --evaluators)"))
            continue
        cells[key] = name
    known_c = sorted({c for c, _ in cells})
    known_p = sorted({p for _, p in cells})
    want_c, want_p = _split(checkpoints), _split(protocols)
    for w, known, what in ((want_c, known_c, "checkpoint"), (want_p, known_p, "protocol")):
        for name in w:
            if name not in known:
                raise NotFound.named(f"{what} among the selected evaluators", name, known)
    if base is not None and base not in known_p:
        raise NotFound.named("base protocol among the selected evaluators", base, known_p)
    if base is not None and want_p and base not in want_p:
        want_p = [base, *want_p]
    cells = {k: v for k, v in cells.items() if (not want_c or k[0] in want_c) and (not want_p or k[1] in want_p)}
    ran_on = {ref: set(data.values[ref]) for ref in data.refs}
    # datasets: the named ones, else those where a checkpoint ran under two protocols
    refs = list(data.refs)
    if not data.explicit:
        keep = []
        for ref in refs:
            per_ckpt: dict[str, int] = {}
            for (c, _), ev in cells.items():
                # with a base protocol, only checkpoints that ran under it there count
                if base is None or (c, base) in cells and cells[(c, base)] in ran_on[ref]:
                    per_ckpt[c] = per_ckpt.get(c, 0) + (ev in ran_on[ref])
            if max(per_ckpt.values(), default=0) >= 2:
                keep.append(ref)
            else:
                left.append(LeftOutItem("dataset", ref, "no checkpoint ran on it under two of the protocols"
                                        + (f" (one of them {base})" if base is not None else "")))
        refs = keep
    ckpts = sorted({c for c, _ in cells}, key=lambda c: known_c.index(c))
    protos = sorted({p for _, p in cells})
    present = np.zeros((len(ckpts), len(protos)), dtype=bool)
    for i, c in enumerate(ckpts):
        for j, p in enumerate(protos):
            present[i, j] = (c, p) in cells and all(cells[(c, p)] in ran_on[r] for r in refs)
    rows, cols = complete_block(present, keep_col=protos.index(base) if base in protos else None) \
        if refs else ([], [])
    for i, c in enumerate(ckpts):
        if i not in rows:
            missing = [p for j, p in enumerate(protos) if j in cols and not present[i, j]]
            left.append(LeftOutItem("checkpoint", c, "no run under " + ", ".join(missing) if missing
                                    else "left out to keep the grid complete"))
    for j, p in enumerate(protos):
        if j not in cols:
            missing = [c for i, c in enumerate(ckpts) if i in rows and not present[i, j]]
            left.append(LeftOutItem("protocol", p, "no run of " + ", ".join(missing) if missing
                                    else "left out to keep the grid complete"))
    ckpts, protos = [ckpts[i] for i in rows], [protos[j] for j in cols]
    return _Grid(ckpts, protos, {(c, p): cells[(c, p)] for c in ckpts for p in protos}, refs, left)


# ----------------------------------------------------------------------------- ranks
def analyze_ranks(reg: RegistryContext, *, datasets=None, evaluators=None, metric: str | None = None,
                  checkpoints=None, protocols=None, n_boot: int = 1000, seed: int = 0,
                  level: float = 0.95) -> RankAnalysis:
    """Kendall τ-b and Spearman ρ between the rankings of the evaluators on every pair of datasets,
    of the base LLMs under every pair of protocols and of the protocols under every pair of base
    LLMs, with bootstrap CIs (examples resampled; module docstring)."""
    _check_boot(n_boot, level)
    data = _gather(reg, datasets=datasets, evaluators=evaluators, metric=metric)
    # datasets × evaluators
    evs = sorted({e for ref in data.refs for e in data.values[ref]})
    shared = {ref: sum(1 for other in data.refs if other != ref and
                       len(set(data.values[ref]) & set(data.values[other])) >= 2) for ref in data.refs}
    skipped = list(data.skipped)
    refs = [r for r in data.refs if shared[r] or data.explicit]
    skipped += [LeftOutItem("dataset", r, "shares fewer than two evaluators with every other dataset")
                for r in data.refs if r not in refs]
    scores = np.full((len(refs), len(evs)), np.nan)
    samples = np.full((len(refs), len(evs), n_boot), np.nan)
    at = {e: k for k, e in enumerate(evs)}
    for i, ref in enumerate(refs):
        names = sorted(data.values[ref])
        x = np.stack([data.values[ref][n] for n in names])
        idx = [at[n] for n in names]
        scores[i, idx] = accuracy_points(x)
        samples[i, idx] = accuracy_samples(x, data.draw(ref, n_boot, seed))
    pairs = correlate_rows(refs, evs, scores, samples, level=level)
    note = None if pairs else "fewer than two datasets share two evaluators"
    by_dataset = RankView("datasets", "datasets", "evaluators", tuple(pairs), note,
                          {"scores": {ref: {e: float(scores[i, at[e]]) for e in evs if np.isfinite(scores[i, at[e]])}
                                      for i, ref in enumerate(refs)}})
    # protocols × base LLMs
    grid = _grid(data, checkpoints=checkpoints, protocols=protocols, base=None)
    views = [by_dataset, *_grid_views(data, grid, n_boot=n_boot, seed=seed, level=level)]
    if not any(v.pairs for v in views):
        raise InvalidInput("nothing to correlate: fewer than two datasets share two of the selected evaluators, "
                           "and no two protocols were run by two checkpoints"
                           + (f" (left out: {'; '.join(f'{s.name}: {s.reason}' for s in skipped[:3])})"
                              if skipped else ""), field="datasets")
    return RankAnalysis(metric=data.metric, datasets=tuple(refs), evaluators=tuple(evs),
                        checkpoints=tuple(grid.checkpoints), protocols=tuple(grid.protocols),
                        grid_datasets=tuple(grid.refs), views=tuple(views),
                        left_out=tuple(skipped + grid.left_out), n_boot=n_boot, seed=seed, level=level)


def _grid_views(data: _Data, grid: _Grid, *, n_boot: int, seed: int, level: float) -> list[RankView]:
    if len(grid.checkpoints) < 2 or len(grid.protocols) < 2:
        why = (f"the complete checkpoint × protocol grid is {len(grid.checkpoints)} × {len(grid.protocols)} "
               "(2 × 2 needed)")
        return [RankView("protocols", "protocols", "checkpoints", (), why),
                RankView("checkpoints", "checkpoints", "protocols", (), why)]
    point, samples = grid_accuracies(grid.values(data), [data.draw(r, n_boot, seed) for r in grid.refs])
    thin = "with two items every correlation is ±1: more checkpoints are needed for a ranking"
    by_protocol = correlate_rows(grid.protocols, grid.checkpoints, point.T, samples.transpose(1, 0, 2), level=level)
    by_ckpt = correlate_rows(grid.checkpoints, grid.protocols, point, samples, level=level)
    scores = {c: {p: float(point[i, j]) for j, p in enumerate(grid.protocols)} for i, c in enumerate(grid.checkpoints)}
    return [RankView("protocols", "protocols", "checkpoints", tuple(by_protocol),
                     thin if len(grid.checkpoints) < 3 else None, {"scores": scores}),
            RankView("checkpoints", "checkpoints", "protocols", tuple(by_ckpt),
                     thin.replace("checkpoints", "protocols") if len(grid.protocols) < 3 else None)]


def _check_boot(n_boot: int, level: float) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 10:
        raise InvalidInput(f"the number of bootstrap resamples must be an integer ≥ 10, got {n_boot!r}", field="n_boot")
    if not 0.0 < level < 1.0:
        raise InvalidInput(f"the CI level must be between 0 and 1, got {level!r}", field="level")


# ----------------------------------------------------------------------------- protocols
def analyze_protocols(reg: RegistryContext, *, datasets=None, evaluators=None, metric: str | None = None,
                      checkpoints=None, protocols=None, base: str | None = None, n_boot: int = 1000, seed: int = 0,
                      alpha: float = 0.05, level: float = 0.95) -> ProtocolAnalysis:
    """Each protocol's accuracy per checkpoint (macro average over the datasets), its mean over the
    checkpoints, each checkpoint's mean over the protocols, paired tests against ``base`` and each
    checkpoint's best protocol (module docstring)."""
    _check_boot(n_boot, level)
    if not 0.0 < alpha < 1.0:
        raise InvalidInput(f"alpha must be between 0 and 1, got {alpha!r}", field="alpha")
    data = _gather(reg, datasets=datasets, evaluators=evaluators, metric=metric)
    if base is None:
        seen = {llm_and_protocol(e)[1] for e in data.evaluators.values()}
        base = next((b for b in BASE_PROTOCOLS if b in seen), None)
        if base is None:
            raise InvalidInput("name the base protocol with --base (none of " + ", ".join(BASE_PROTOCOLS)
                               + " is among the selected evaluators' protocols: " + ", ".join(sorted(seen)[:20]) + ")",
                               field="base")
    grid = _grid(data, checkpoints=checkpoints, protocols=protocols, base=base)
    if not grid.refs:
        raise InvalidInput("no dataset has runs of a checkpoint under two of the selected protocols"
                           + _why(data.skipped + grid.left_out), field="datasets")
    if base not in grid.protocols or len(grid.protocols) < 2 or not grid.checkpoints:
        raise InvalidInput(f"no checkpoint ran under the base protocol {base!r} and another protocol on every "
                           f"dataset ({', '.join(grid.refs)})" + _why(grid.left_out), field="base")
    point, samples = grid_accuracies(grid.values(data), [data.draw(r, n_boot, seed) for r in grid.refs])
    report = _analyze_protocols(grid.checkpoints, grid.protocols, base, point, samples,
                                n=sum(data.n_rows[r] for r in grid.refs), alpha=alpha, level=level)
    return ProtocolAnalysis(metric=data.metric, datasets=tuple(grid.refs), cells=grid.cells(), report=report,
                            left_out=tuple(data.skipped + grid.left_out), n_boot=n_boot, seed=seed)


def _why(items: list[LeftOutItem]) -> str:
    return f" (left out: {'; '.join(f'{s.kind} {s.name}: {s.reason}' for s in items[:4])})" if items else ""
