"""The Python API of the Autorater Registry: a :class:`Registry` whose methods are the use cases the
``autorater`` command line offers — the CLI is a thin layer over it, as sqlite-utils' is over its
Python API.

::

    import registry

    with registry.open() as reg:              # AUTORATER_* settings, like the CLI
        reg.register_all()
        reg.create_baselines()
        run = reg.evaluate("longer", "llmbar-natural")
        print(reg.leaderboard("llmbar-natural").to_dict())

Every method is a thin call of a service (:mod:`registry.services`) and returns typed, frozen
objects — the entities of :mod:`registry.domain.entities`, the services' results and the small
types of :mod:`registry.results` — whose ``to_dict()`` is the JSON the CLI prints with ``--json``.
Heavy libraries (pandas, scipy, torch, Great Expectations, DVC) are imported inside the methods
that need them: ``import registry`` and the read-only calls stay light.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.config import Settings
from registry.errors import InvalidInput, NotFound
from registry.results import (
    AliasTarget,
    BackendServer,
    BaselineRun,
    CatalogRegistration,
    ChangedExample,
    CheckpointDetails,
    DatasetDetails,
    DatasetDiff,
    HeadlineMatrix,
    JuryAnalysis,
    MatrixCell,
    MetricEntry,
    ProtocolDetails,
    Registered,
    RegistryInfo,
    RegressionCheck,
    RowsPage,
    RunSummary,
    SchemaRevision,
    SourceInfo,
    StoppedServer,
    StorePull,
    StorePush,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from registry.domain.entities import (
        Checkpoint,
        DatasetVersion,
        EvaluationRun,
        Evaluator,
        PromotionDecision,
        Protocol,
        Regression,
    )
    from registry.domain.training import LoRAConfig, Mixture, TrainConfig
    from registry.services.app import RegistryContext as Context
    from registry.services.datasets import DatasetSummary, Registration
    from registry.services.imports import BatchItem
    from registry.services.matrix import MatrixResult
    from registry.services.queries import Comparison, EvaluatorFilter, Ranking
    from registry.services.rescore import Rescore  # re-scoring stored runs (issue 15)
    from registry.services.store_maintenance import StoreGc, StoreVerification
    from registry.services.training import TailPatchResult, TrainResult
    from registry.results import ProtocolAnalysis, RankAnalysis  # ReIFE analyses (issue 15)
    from registry.results import PpiEstimate, SelectiveEvaluation  # selective evaluation, PPI++ (issue 15)
    from registry.results import Derivation, Robustness  # perturbation probes (issue 15)

Progress = Callable[[int, int], None]
"""``(done, total)`` callback of a long call (judgments of a run)."""

def _settings(url: str | None, home: str | Path | None, store: str | Path | None, dvc_remote: str | None,
              data_root: str | Path | None, settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    return Settings.from_env(db_url=url, home=home, store=store, dvc_remote=dvc_remote, data_root=data_root)


def open(url: str | None = None, *, home: str | Path | None = None, store: str | Path | None = None,  # noqa: A001
         dvc_remote: str | None = None, data_root: str | Path | None = None,
         settings: Settings | None = None) -> Registry:
    """Open an initialised registry.

    ``url`` is the SQLAlchemy URL of its database; it and the other arguments override the
    ``AUTORATER_*`` settings (:mod:`registry.config`) that the CLI reads, and ``settings`` replaces
    them all. Refuses a database whose schema is out of date, naming the command that upgrades it
    (:func:`init` creates or upgrades one)."""
    from registry.services.app import RegistryContext as Context

    return Registry(Context.open(_settings(url, home, store, dvc_remote, data_root, settings)))


def init(url: str | None = None, *, home: str | Path | None = None, store: str | Path | None = None,
         dvc_remote: str | None = None, data_root: str | Path | None = None,
         settings: Settings | None = None) -> Registry:
    """Create or upgrade the registry's database (Alembic migrations) and its DVC-tracked artifact
    store, then open it; idempotent. Arguments as for :func:`open`."""
    from registry.services.app import init_registry

    return Registry(init_registry(_settings(url, home, store, dvc_remote, data_root, settings)))


class Registry:
    """One open registry — its database and artifact store — and the use cases on it.

    Open one with :func:`open` or :func:`init`; close it with :meth:`close` or a ``with`` block."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        """The handle the services take (settings, SQL store, artifact store)."""
        self._closed = False

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Registry {self.settings.db_url}{' (closed)' if self._closed else ''}>"

    def close(self) -> None:
        """Release the database connections and the artifact store (idempotent)."""
        if not self._closed:
            self._closed = True
            self._ctx.close()

    @property
    def settings(self) -> Settings:
        """The resolved settings the registry was opened with."""
        return self._ctx.settings

    def info(self) -> RegistryInfo:
        """Where the registry lives (database, store, DVC remote, data root) and how much it holds."""
        s = self._ctx.settings
        return RegistryInfo(db_url=s.db_url, store=str(s.store), dvc_remote=s.dvc_remote, data_root=str(s.data_root),
                            counts=self._ctx.store.counts())

    # ------------------------------------------------------------------ catalog
    def sources(self) -> list[SourceInfo]:
        """Every source adapter with its public origin, licence, citation and datasets."""
        return source_catalog()

    def metrics(self, task_type: str | None = None) -> list[MetricEntry]:
        """The metric catalog (of ``task_type``), headline metrics marked."""
        return metric_catalog(task_type)

    # ------------------------------------------------------------------ datasets
    def register_dataset(self, name: str, *, source: str, path: str | Path, task_type: str | None = None,
                         options: Mapping[str, Any] | None = None, labels: Sequence[str] | None = None,
                         description: str | None = None) -> Registration:
        """Read ``path`` with adapter ``source``, validate it and register it as the next version of
        dataset ``name``; the same content again returns the existing version (``created`` False)."""
        from registry.services.datasets import register_dataset_version

        return register_dataset_version(self._ctx, name=name, source=source, path=Path(path), options=options,
                                        task_type=task_type, labels=tuple(labels) if labels else None,
                                        description=description)

    def register_all(self, data_root: str | Path | None = None, *, only: Iterable[str] | None = None,
                     on_progress: Callable[[str, str], None] | None = None) -> CatalogRegistration:
        """Register every catalog dataset found under ``data_root`` (default: the settings' data
        root), or only the datasets or sources named in ``only``; a dataset that fails is reported
        and does not stop the others. ``on_progress(dataset, status)`` follows each one."""
        from registry.services.datasets import register_all

        root = data_root or self.settings.data_root
        if root is None:
            raise InvalidInput("no data root: pass data_root or set AUTORATER_DATA", field="data_root")
        only = set(only) if only else None
        r = register_all(self._ctx, Path(root), on_progress=on_progress, only=only)
        return CatalogRegistration(registered=tuple(r.registered), unchanged=tuple(r.unchanged),
                                   skipped=tuple(r.skipped), failed=tuple(r.failed))

    def datasets(self, task_type: str | None = None, *, source: str | None = None,
                 q: str | None = None) -> list[DatasetSummary]:
        """Every dataset (of ``task_type``) with its latest version and the adapter and file it came from;
        ``source`` keeps those whose latest version was read by that adapter, ``q`` those whose name
        holds that text (case-insensitive)."""
        from registry.services.datasets import list_datasets

        rows = list_datasets(self._ctx, task_type)
        if source is not None:
            rows = [r for r in rows if r.source == source]
        if q:
            rows = [r for r in rows if q.casefold() in r.name.casefold()]
        return rows

    def dataset(self, ref: str) -> DatasetDetails:
        """Version ``NAME[@VERSION]`` (default latest): hash, parent, statistics, validation report,
        provenance, and the adapter and file it was read from."""
        from registry.services.datasets import show_version, version_file, version_source

        v = show_version(self._ctx, ref)
        return DatasetDetails(version=v, source=version_source(v), source_file=version_file(v))

    def versions(self, name: str) -> list[DatasetVersion]:
        """Every version of dataset ``name``, oldest first."""
        return self._ctx.store.list_versions(name)

    def diff(self, ref_a: str, ref_b: str, *, fields: bool = False) -> DatasetDiff:
        """Row-level diff from ``ref_a`` to ``ref_b``: added, removed and changed example ids; with
        ``fields``, also each changed example's changed fields with their old and new values."""
        from registry.services.datasets import diff_versions

        rows = diff_versions(self._ctx, ref_a, ref_b)
        changes = None
        if fields:
            changes = _changed_fields(self.load_table(ref_a), self.load_table(ref_b), rows.changed)
        return DatasetDiff(from_ref=ref_a, to_ref=ref_b, rows=rows, changes=changes)

    def rows(self, ref: str, *, offset: int = 0, limit: int = 50, label: str | None = None,
             where: Mapping[str, str] | None = None) -> RowsPage:
        """``limit`` rows of version ``ref`` from ``offset`` (canonical order), keeping those whose
        ``label`` is ``label`` and whose columns equal the values of ``where`` (compared as text, e.g.
        ``{"category": "Natural"}``). Reads only the filter columns and the page's rows
        (:func:`registry.services.datasets.read_rows`), not the whole version."""
        from registry.services.datasets import read_rows

        conditions = dict(where or {})
        if label is not None:
            conditions["label"] = label
        version, total, page = read_rows(self._ctx, ref, offset=offset, limit=limit, where=conditions,
                                         filter_field={"label": "label"} if label is not None else None)
        return RowsPage(of=version.ref, total=total, offset=offset, limit=limit, rows=tuple(page))

    def export(self, ref: str, out: str | Path, fmt: str | None = None) -> Path:
        """Write the exact registered rows of ``ref`` to ``out`` (``parquet``, ``jsonl`` or ``csv``;
        default from the suffix); returns the path written."""
        from registry.services.datasets import export_version

        return export_version(self._ctx, ref, Path(out), fmt)

    def load_table(self, ref: str) -> pa.Table:
        """The registered rows of ``ref`` as an Arrow table (canonical order)."""
        from registry.services.datasets import load_table

        return load_table(self._ctx, ref)

    def load_pandas(self, ref: str) -> pd.DataFrame:
        """The registered rows of ``ref`` as a pandas DataFrame."""
        from registry.services.datasets import load_pandas

        return load_pandas(self._ctx, ref)

    # ------------------------------------------------------------------ checkpoints and protocols
    def register_checkpoint(self, autorater: str, *, kind: str, path: str | Path | None = None,
                            uri: str | None = None, model_card: str | None = None,
                            tags: Mapping[str, Any] | None = None, parent: str | None = None) -> Registered[Checkpoint]:
        """Register a checkpoint (a safetensors folder copied into the store, a hub id, a built-in
        heuristic or an external model) as the next version of ``autorater``; idempotent on content."""
        from registry.services.evaluators import register_checkpoint

        ckpt, created = register_checkpoint(self._ctx, autorater, kind=kind, path=Path(path) if path else None,
                                            uri=uri, model_card=model_card, tags=_dict(tags, field="tags"), parent=parent)
        return Registered(ckpt, created)

    def register_default_checkpoint(self, autorater: str, *, seed: int = 0, model_card: str | None = None,
                                    tags: Mapping[str, Any] | None = None,
                                    parent: str | None = None) -> Registered[Checkpoint]:
        """Build the default untrained MiniLM scorer (heads initialised with ``seed``) and register it
        as an ``encoder-scorer`` checkpoint of ``autorater``."""
        import tempfile

        from registry.adapters.evaluators.encoder import build_default_checkpoint

        with tempfile.TemporaryDirectory() as tmp:
            folder = build_default_checkpoint(Path(tmp) / "minilm", seed=seed)
            return self.register_checkpoint(autorater, kind="encoder-scorer", path=folder, model_card=model_card,
                                            tags=tags, parent=parent)

    def checkpoints(self, autorater: str | None = None) -> list[Checkpoint]:
        """Checkpoints (of ``autorater``) with their aliases."""
        return self._ctx.store.list_checkpoints(autorater)

    def checkpoint(self, ref: str) -> Checkpoint:
        """Checkpoint ``AUTORATER[@VERSION|@ALIAS]``."""
        return self._ctx.store.get_checkpoint(ref)

    def checkpoint_details(self, ref: str) -> CheckpointDetails:
        """Checkpoint ``ref`` with its parent chain, the dataset versions it was trained on and its
        model card text (the stored card, else one rendered from a training lineage)."""
        store = self._ctx.store
        ckpt = store.get_checkpoint(ref)
        parents: list[Checkpoint] = []
        seen = {ckpt.ref}
        parent = store.parent_checkpoint(ckpt.ref)
        while parent is not None and parent.ref not in seen:
            parents.append(parent)
            seen.add(parent.ref)
            parent = store.parent_checkpoint(parent.ref)
        datasets = ckpt.lineage.get("datasets") or ()
        if isinstance(datasets, Mapping):
            datasets = list(datasets)
        return CheckpointDetails(checkpoint=ckpt, parents=tuple(parents),
                                 training_datasets=tuple(str(d) for d in datasets),
                                 model_card_text=self._model_card_text(ckpt))

    def _model_card_text(self, ckpt: Checkpoint, max_bytes: int = 1 << 20) -> str | None:
        """The card stored with the checkpoint — its ``model_card`` path or the ``README.md`` of its folder,
        read only from inside the store (a path elsewhere on this machine is never read: the REST API
        serves this text) — else one rendered from a training lineage."""
        import stat

        root = Path(self.settings.store).resolve()
        candidates = []
        if ckpt.model_card:
            candidates.append(self._ctx.artifacts.path(ckpt.model_card))
        if ckpt.format == "safetensors" and ckpt.uri:
            candidates.append(self._ctx.artifacts.path(ckpt.uri) / "README.md")
        for path in candidates:
            try:
                real = path.resolve()
                if root not in real.parents or not stat.S_ISREG(real.stat().st_mode):
                    continue
                with real.open("rb") as f:
                    return f.read(max_bytes).decode("utf-8", "replace")
            except (OSError, ValueError):
                continue
        if ckpt.lineage.get("mixture") and ckpt.lineage.get("config"):
            from registry.services.training import card_info_from_lineage
            from registry.domain.training import render_model_card

            try:
                return render_model_card(card_info_from_lineage(ckpt))
            except (KeyError, TypeError, ValueError):
                return None
        return None

    def alias(self, autorater: str, alias: str) -> AliasTarget:
        """The checkpoint ``alias`` of ``autorater`` points at (e.g. ``champion``) and the evaluators,
        with their configs, that use it."""
        store = self._ctx.store
        ckpt = store.alias_target(autorater, alias)
        if ckpt is None:
            known = [a for c in store.list_checkpoints(autorater) for a in c.aliases]
            raise NotFound.named(f"alias of autorater {autorater!r}", alias, known)
        evaluators = tuple(e for e in store.list_evaluators() if e.checkpoint == ckpt.ref)
        return AliasTarget(autorater=autorater, alias=alias, checkpoint=ckpt, evaluators=evaluators)

    def move_alias(self, ref: str, alias: str, *, metric: str | None = None) -> Checkpoint | PromotionDecision:
        """Move ``alias`` to checkpoint ``ref`` as the command line does: ``champion`` goes through the
        promotion rule (:meth:`promote`; the decision is returned, ``promoted`` False when refused),
        any other alias simply moves (:meth:`set_alias`; the checkpoint is returned)."""
        if alias == "champion":
            return self.promote(ref, metric=metric)
        return self.set_alias(ref, alias)

    def set_alias(self, ref: str, alias: str) -> Checkpoint:
        """Point ``alias`` of the autorater at checkpoint ``ref`` (moving it if it exists)."""
        from registry.services.evaluators import set_alias

        return set_alias(self._ctx, ref, alias)

    def promote(self, ref: str, *, metric: str | None = None) -> PromotionDecision:
        """Move the autorater's ``champion`` alias to ``ref`` if it has no open regression and a better
        mean ``metric`` than the champion on the datasets both were evaluated on (else refused)."""
        from registry.services.regressions import promote_champion

        return promote_champion(self._ctx, ref, metric=metric)

    def protocols(self) -> list[Protocol]:
        """Registered protocols (the shipped protocol files are synced first)."""
        from registry.services.evaluators import sync_protocols

        return sync_protocols(self._ctx)

    def protocol(self, ref: str) -> Protocol:
        """Protocol ``NAME[@VERSION]`` with its configuration."""
        from registry.services.evaluators import sync_protocols

        sync_protocols(self._ctx)
        return self._ctx.store.get_protocol(ref)

    def protocol_details(self, ref: str) -> ProtocolDetails:
        """Protocol ``NAME[@VERSION]`` with the text of its prompt templates (see :class:`ProtocolDetails`)."""
        p = self.protocol(ref)
        return ProtocolDetails(protocol=p, prompt=_prompt_text(p.config))

    # ------------------------------------------------------------------ evaluators
    def create_evaluator(self, *, checkpoint: str, protocol: str = "score-both-orders", name: str | None = None,
                         config: Mapping[str, Any] | None = None,
                         price_per_1k_tokens: float | None = None) -> Registered[Evaluator]:
        """An evaluator from a checkpoint and a protocol (default name ``AUTORATER@V/PROTOCOL``);
        idempotent."""
        from registry.services.evaluators import create_evaluator

        ev, created = create_evaluator(self._ctx, checkpoint=checkpoint, protocol=protocol, name=name,
                                       config=_dict(config), price_per_1k_tokens=price_per_1k_tokens)
        return Registered(ev, created)

    def create_baselines(self) -> list[Evaluator]:
        """The heuristic baselines (random, always-first, longer, …) and the untrained MiniLM scorer."""
        from registry.services.evaluators import ensure_baselines

        return ensure_baselines(self._ctx)

    def evaluators(self) -> list[Evaluator]:
        """Every evaluator."""
        return self._ctx.store.list_evaluators()

    def evaluator_kinds(self) -> dict[str, str]:
        """The kind of every evaluator, by name (a light read: no configs, checkpoints or protocols)."""
        return self._ctx.store.evaluator_kinds()

    def evaluator(self, name: str) -> Evaluator:
        """Evaluator ``name``."""
        return self._ctx.store.get_evaluator(name)

    # ------------------------------------------------------------------ juries (issue 15)
    def create_jury(self, *, members: Sequence[str], combine: str = "majority", folds: int = 5, seed: int = 0,
                    name: str | None = None) -> Registered[Evaluator]:
        """A jury evaluator over ``members`` (evaluator names): ``majority``, ``weighted`` (agreement-weighted)
        or ``stacked`` (logistic) vote over their stored verdicts, fitted by cross-fitting over ``folds``
        seeded folds; run it with :meth:`evaluate` like any evaluator (:mod:`registry.services.jury`)."""
        from registry.services.jury import create_jury

        if isinstance(members, str):
            members = members.split(",")
        ev, created = create_jury(self._ctx, members=list(members), combine=combine, folds=folds, seed=seed,
                                  name=name)
        return Registered(ev, created)

    def create_cascade(self, *, members: Sequence[str], target: float = 0.9, delta: float = 0.1,
                       confidence: str = "auto", folds: int = 5, seed: int = 0,
                       name: str | None = None) -> Registered[Evaluator]:
        """A cascade evaluator over ``members`` (evaluator names, cheapest first): each example takes the
        verdict of the first member whose confidence reaches its threshold (calibrated for accuracy ≥
        ``target`` at ``delta``, cross-fitted over ``folds`` seeded folds), else the last member's; run it
        with :meth:`evaluate` like any evaluator (:mod:`registry.services.cascade`)."""
        from registry.services.cascade import create_cascade

        if isinstance(members, str):
            members = members.split(",")
        ev, created = create_cascade(self._ctx, members=list(members), target=target, delta=delta,
                                     confidence=confidence, folds=folds, seed=seed, name=name)
        return Registered(ev, created)

    def analyze_jury(self, dataset: str, *, budget: float | None = None, members: Sequence[str] | None = None,
                     combine: str = "majority", max_size: int = 5, folds: int = 5, seed: int = 0,
                     n_boot: int = 1000, top: int = 5) -> JuryAnalysis:
        """Search juries of the evaluators with runs on ``dataset`` (or of ``members``) of 2..``max_size``
        members costing at most ``budget`` dollars per 1000 examples; the best one's out-of-fold accuracy
        with its CI and the paired test against the best single candidate (:class:`JuryAnalysis`)."""
        from registry.services.jury import analyze_jury

        if isinstance(members, str):
            members = members.split(",")
        return analyze_jury(self._ctx, dataset, budget=budget, members=list(members) if members else None,
                            combine=combine, max_size=max_size, folds=folds, seed=seed, n_boot=n_boot, top=top)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, evaluator: str, dataset: str, *, seed: int = 0, n_boot: int = 1000, batch_size: int = 64,
                 slice_by: Sequence[str] | None = None, min_slice_size: int = 10,
                 on_progress: Progress | None = None) -> EvaluationRun:
        """Run ``evaluator`` on dataset ``NAME[@VERSION]`` (cached judgments are reused) and store its
        predictions and metrics with CIs; ``slice_by`` also stores the headline metrics per value of
        a column. Regressions are checked by :meth:`detect_regressions` (``autorater eval run`` does both)."""
        from registry.services.evaluation import run_evaluation

        return run_evaluation(self._ctx, evaluator, dataset, seed=seed, n_boot=n_boot, batch_size=batch_size,
                              on_progress=on_progress, slice_by=list(slice_by) if slice_by else None,
                              min_slice_size=min_slice_size)

    def import_predictions(self, fmt: str, path: str | Path, dataset: str, *, evaluator: str,
                           options: Mapping[str, Any] | None = None, slice_by: Sequence[str] | None = None,
                           seed: int = 0, n_boot: int = 1000) -> EvaluationRun:
        """Import an external evaluator's predictions (``llmbar``, ``pandalm``, ``unieval``, ``reife``
        or ``mapped``) for ``dataset`` as a run; the same file and options again return that run."""
        from registry.services.imports import import_predictions

        return import_predictions(self._ctx, fmt, Path(path), dataset, evaluator=evaluator, options=options,
                                  seed=seed, n_boot=n_boot, slice_by=list(slice_by) if slice_by else None)

    def import_tree(self, root: str | Path | Sequence[str | Path], *, fmt: str = "llmbar", seed: int = 0,
                    n_boot: int = 1000,
                    on_progress: Callable[[int, int, str], None] | None = None) -> list[BatchItem]:
        """Import every LLMBar ``evaluators/<judge>/<protocol>/result.json`` under folder ``root`` (or
        the given files), each matched to its registered dataset and named ``<judge>/llmbar-<protocol>``."""
        from registry.services.imports import import_tree

        files = Path(root) if isinstance(root, (str, Path)) else [Path(p) for p in root]
        return import_tree(self._ctx, files, fmt=fmt, seed=seed, n_boot=n_boot, on_progress=on_progress)

    def runs(self, *, dataset: str | None = None, evaluator: str | None = None, status: str | None = None,
             limit: int | None = None) -> list[RunSummary]:
        """Evaluation runs, newest first, with their dataset's headline metric and its CI."""
        from registry.services.scoring import headline_for

        store = self._ctx.store
        runs = store.list_runs(dataset=dataset, evaluator=evaluator, status=status, limit=limit)
        headlines = {ref: headline_for(store.get_version(ref)) for ref in {r.dataset for r in runs}}
        return [RunSummary.of(r, headlines[r.dataset]) for r in runs]

    def run(self, run_id: int) -> EvaluationRun:
        """Run ``run_id``: status, counts, cost, provenance and every metric with its CI."""
        return self._ctx.store.get_run(run_id)

    def rescore(self, run_ids: Sequence[int] | None = None, *, all_runs: bool = False,
                dataset: str | None = None, replace: bool = False) -> Rescore:
        """Compute the metrics of stored runs again from their predictions with today's scoring code
        (the ids given, every succeeded run of ``dataset`` ``NAME[@VERSION]``, or ``all_runs``) and
        store the metrics each lacks — ``replace``: every recomputed value — in one transaction, as a
        landing run does (standings, cached tests and generation included): e.g. to give old runs the
        bias diagnostics. Each run keeps its seed, bootstrap resamples and slicing; values that differ
        from the stored ones are listed (:mod:`registry.services.rescore`)."""
        from registry.services.rescore import rescore_runs

        return rescore_runs(self._ctx, run_ids=run_ids, all_runs=all_runs, dataset=dataset, replace=replace)

    def prediction_rows(self, run_id: int, *, offset: int = 0, limit: int = 50, disagree: bool = False) -> RowsPage:
        """``limit`` per-example predictions of run ``run_id`` from ``offset`` (one row per example, order
        and sample, by example id), each with the human ``human_label`` (pairwise, classification) or
        ``human_score`` (pointwise); ``disagree`` keeps the rows whose verdict differs from the human
        label (a parse failure included; pairwise and classification runs)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from registry.services.evaluation import load_predictions

        run = self.run(run_id)
        preds = load_predictions(self._ctx, run)
        version = self._ctx.store.get_version(run.dataset)
        human = self.load_table(version.ref)
        column = "score" if version.task_type == "pointwise" else "label"
        if disagree and column == "score":
            raise InvalidInput("disagree applies to pairwise and classification runs; this run is on a pointwise "
                               "dataset (scores, no labels)", field="disagree")
        lookup = pa.table({"example_id": human.column("example_id"), f"human_{column}": human.column(column)})
        joined = preds.join(lookup, "example_id", join_type="left outer")
        joined = joined.sort_by([("example_id", "ascending"), ("order", "ascending"), ("sample", "ascending")])
        if disagree:
            same = pc.fill_null(pc.equal(joined.column("verdict"), joined.column("human_label")), False)
            joined = joined.filter(pc.invert(same))
        page = joined.slice(offset, limit).to_pylist() if offset < joined.num_rows else []
        return RowsPage(of=f"run {run.id}", total=joined.num_rows, offset=offset, limit=limit, rows=tuple(page))

    def predictions(self, run_id: int) -> pa.Table:
        """The per-example predictions of run ``run_id`` (one row per example, order and sample:
        ``example_id``, ``order``, ``sample``, ``verdict``, ``score``, ``prob_a``, ``parsed``, ``raw``, …)."""
        from registry.services.evaluation import load_predictions

        return load_predictions(self._ctx, self._ctx.store.get_run(run_id))

    def compare(self, run_a: int, run_b: int, *, metric: str | None = None, n_boot: int = 1000,
                seed: int = 0) -> Comparison:
        """Paired tests of ``metric`` (default: the headline) between two runs of one dataset version
        on the examples both judged: a paired bootstrap, and McNemar's test where it applies."""
        from registry.services.queries import compare_runs

        return compare_runs(self._ctx, run_a, run_b, metric=metric, n_boot=n_boot, seed=seed)

    def matrix(self, checkpoints: str | Sequence[str], protocols: str | Sequence[str],
               datasets: str | Sequence[str], *, config: Mapping[str, Any] | None = None, seed: int = 0,
               n_boot: int = 1000, batch_size: int = 64,
               on_cell: Callable[[int, int, str], None] | None = None,
               on_progress: Progress | None = None) -> MatrixResult:
        """Run every checkpoint × protocol (``"all"``: every protocol that can judge the datasets) on
        every dataset; cells already run are taken from their runs."""
        from registry.services.matrix import run_matrix

        return run_matrix(self._ctx, checkpoints, protocols, datasets, config=_dict(config), seed=seed,
                          n_boot=n_boot, batch_size=batch_size, on_cell=on_cell, on_progress=on_progress)

    # ------------------------------------------------------------------ queries
    def leaderboard(self, dataset: str, metric: str | None = None, *, columns: Sequence[str] | None = None,
                    limit: int | None = None) -> Ranking:
        """Every evaluator on dataset ``NAME[@VERSION]``, ranked by ``metric`` (default: the headline),
        with CIs and the paired test of each against the best. Every standing carries all its run's
        metric values (``Standing.metrics``); ``columns`` names metrics a caller will show beside the
        ranked one (e.g. the bias diagnostics ``flip_rate``, ``lc_accuracy``): each is checked against
        the catalog of the dataset's task type first (an unknown name is an ``InvalidInput``). ``limit``
        keeps only the first ``limit`` standings (as :meth:`best`), read from the cached ranking's first parts."""
        from registry.services.queries import leaderboard

        if columns:
            from registry.domain.metrics.catalog import require_metric

            task_type = self._ctx.store.get_version(dataset).task_type
            for name in columns:
                require_metric(task_type, name)
        return leaderboard(self._ctx, dataset, metric, limit=limit)

    def best(self, *, dataset: str | None = None, task_type: str | None = None, metric: str | None = None,
             coverage: str | None = None, datasets: Sequence[str] | None = None,
             backend: Sequence[str] | None = None, exclude_imported: bool = False,
             max_cost_per_1k: float | None = None, slice: str | None = None,  # noqa: A002
             limit: int | None = None) -> Ranking:
        """The best evaluator for a dataset, a task type (over the datasets chosen by ``coverage``:
        ``common`` or ``all``) or the listed ``datasets``, with the evaluators tied with it.

        Filters (none given: every evaluator, as ``autorater best``): ``backend`` keeps evaluators of
        these kinds or generation backends, ``exclude_imported`` leaves out imported predictions,
        ``max_cost_per_1k`` keeps runs whose dollars per 1000 examples are known and at most that
        (:class:`registry.services.queries.EvaluatorFilter` says how the cost is known). ``slice``
        (``COLUMN=VALUE``, with ``dataset``) ranks by the metric on that slice of the runs
        (:func:`registry.services.queries.slice_ranking`: no paired test). ``limit`` keeps only the first
        ``limit`` standings (:meth:`~registry.services.queries.Ranking.head`: the best, the names of all those
        tied with it and ``standings_total`` stay whole); ``None``: all of them."""
        from registry.services.queries import EvaluatorFilter, best_evaluator, slice_ranking

        only = EvaluatorFilter(kinds=tuple(backend or ()), exclude_imported=exclude_imported,
                               max_cost_per_1k=max_cost_per_1k)
        if limit is not None and limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}", field="limit")
        if slice is not None:
            if not dataset or task_type or datasets or coverage:
                raise InvalidInput("slice ranks one dataset: give it with dataset= only (slices differ between "
                                   "datasets)", field="slice")
            return slice_ranking(self._ctx, dataset, slice, metric, only=only if only.active else None).head(limit)
        return best_evaluator(self._ctx, dataset=dataset, task_type=task_type, metric=metric,
                              coverage=coverage, datasets=list(datasets) if datasets else None,  # type: ignore[arg-type]
                              only=only if only.active else None, limit=limit).head(limit)

    def headline_matrix(self, *, task_type: str | None = None) -> HeadlineMatrix:
        """Evaluators × the latest version of every dataset (of ``task_type``): the headline metric of
        each evaluator's latest succeeded run there (pairs without a run have no cell)."""
        from registry.domain.types import TASK_TYPES

        store = self._ctx.store
        # the standings generations change whenever a run lands or a version is registered: the answer is
        # kept per generation (building 100,000 cells takes about a second; pages ask for it on every view)
        key = (self.settings.db_url, task_type,
               tuple(store.standings_generation(t) for t in ((task_type,) if task_type else TASK_TYPES)))
        with _MATRIX_LOCK:
            if key in _MATRICES:
                _MATRICES.move_to_end(key)
                return _MATRICES[key]
        versions = sorted(v.ref for v in store.latest_versions(task_type).values())
        rows = store.standings(versions) if versions else []
        cells = tuple(MatrixCell(evaluator=r.evaluator, dataset=r.dataset, metric=r.metric, value=r.value,
                                 ci_low=r.ci_low, ci_high=r.ci_high, run=r.run_id)
                      for r in sorted(rows, key=lambda r: (r.evaluator, r.dataset)))
        matrix = HeadlineMatrix(datasets=tuple(versions), evaluators=tuple(sorted({c.evaluator for c in cells})),
                                cells=cells)
        with _MATRIX_LOCK:
            _MATRICES[key] = matrix
            while len(_MATRICES) > 4:
                _MATRICES.popitem(last=False)
        return matrix

    # ------------------------------------------------------------------ ReIFE analyses (issue 15)
    def analyze_ranks(self, *, datasets: str | Sequence[str] | None = None,
                      evaluators: str | Sequence[str] | None = None, metric: str | None = None,
                      checkpoints: str | Sequence[str] | None = None, protocols: str | Sequence[str] | None = None,
                      n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> RankAnalysis:
        """Kendall τ-b and Spearman ρ, with bootstrap CIs over the examples, between the evaluators'
        rankings by ``metric`` (a per-example mean; default ``accuracy``) on every pair of ``datasets``
        (``NAME[@VERSION]``; default: the latest version of every dataset sharing two evaluators with
        another), between the base LLMs' rankings under every pair of protocols and the protocols'
        rankings under every pair of base LLMs. ``evaluators``: names or globs; ``checkpoints`` and
        ``protocols`` narrow the grid (:mod:`registry.services.rank_analysis` says how evaluators
        are grouped by base LLM and protocol)."""
        from registry.services.rank_analysis import analyze_ranks

        return analyze_ranks(self._ctx, datasets=datasets, evaluators=evaluators, metric=metric,
                             checkpoints=checkpoints, protocols=protocols, n_boot=n_boot, seed=seed, level=level)

    def analyze_protocols(self, *, base: str | None = None, datasets: str | Sequence[str] | None = None,
                          evaluators: str | Sequence[str] | None = None, metric: str | None = None,
                          checkpoints: str | Sequence[str] | None = None,
                          protocols: str | Sequence[str] | None = None, n_boot: int = 1000, seed: int = 0,
                          alpha: float = 0.05, level: float = 0.95) -> ProtocolAnalysis:
        """Each protocol's ``metric`` per base LLM (macro average over the datasets) on the complete
        checkpoint × protocol grid of the selected evaluators, the mean over the LLMs of each protocol
        and over the protocols of each LLM, paired bootstrap tests against ``base`` (default: the
        first of ``pairwise-base``, ``llmbar-vanilla`` present), each LLM's best protocol and whether
        it is the same for every LLM."""
        from registry.services.rank_analysis import analyze_protocols

        return analyze_protocols(self._ctx, datasets=datasets, evaluators=evaluators, metric=metric,
                                 checkpoints=checkpoints, protocols=protocols, base=base, n_boot=n_boot, seed=seed,
                                 alpha=alpha, level=level)

    # ------------------------------------------------------------------ regressions
    def regressions(self, *, status: str | None = None, evaluator: str | None = None,
                    dataset: str | None = None) -> list[Regression]:
        """Recorded regressions (``open`` / ``acknowledged``), newest first."""
        from registry.services.regressions import list_regressions

        return list_regressions(self._ctx, status=status, evaluator=evaluator, dataset=dataset)

    def acknowledge(self, regression_id: int, *, note: str, by: str | None = None) -> Regression:
        """Acknowledge a regression: it stays recorded but no longer blocks the champion alias."""
        from registry.services.regressions import acknowledge

        return acknowledge(self._ctx, regression_id, note=note, by=by)

    def detect_regressions(self, run_id: int, *, threshold: float | None = None, alpha: float | None = None,
                           n_boot: int = 1000, seed: int = 0) -> RegressionCheck:
        """Compare run ``run_id`` with its baselines (previous dataset version, parent or champion
        checkpoint, previous protocol version) and record the significant drops; idempotent."""
        from registry.services.regressions import baselines_for, detect_regressions

        baselines = tuple(BaselineRun(kind, b.id, b.evaluator, b.dataset) for kind, b in baselines_for(self._ctx, run_id))
        found = detect_regressions(self._ctx, run_id, threshold=threshold, alpha=alpha, n_boot=n_boot, seed=seed)
        return RegressionCheck(run=run_id, baselines=baselines, regressions=tuple(found))

    # ------------------------------------------------------------------ training
    def train(self, mixture: str | Path | Mixture, *, autorater: str = "minilm-flame", parent: str | None = None,
              config: TrainConfig | None = None, model_cards_dir: str | Path | None = None,
              on_progress: Callable[[int, int, float], None] | None = None) -> TrainResult:
        """Train the MiniLM autorater on a mixture of registered datasets (a :class:`Mixture` or its
        YAML file), optionally from checkpoint ``parent``, and register the checkpoint."""
        from registry.services.training import train_autorater

        return train_autorater(self._ctx, autorater=autorater, mixture=_mixture(mixture), config=config,
                               parent=parent, model_cards_dir=_path(model_cards_dir), on_progress=on_progress)

    def tail_patch(self, *, base: str, mixture: str | Path | Mixture, target: str, steps: int = 20,
                   config: TrainConfig | None = None, total_rows: int | None = None, retrain: bool = True,
                   autorater: str | None = None, model_cards_dir: str | Path | None = None) -> TailPatchResult:
        """Choose mixture weights by tail-patching checkpoint ``base`` on each candidate and measuring
        the held-out ``target`` (FLAMe-Opt), then retrain on the optimized mixture (unless ``retrain`` is False)."""
        from registry.services.training import tail_patch

        return tail_patch(self._ctx, base=base, candidates=_mixture(mixture), target=target, steps=steps,
                          config=config, total_rows=total_rows, retrain=retrain, autorater=autorater,
                          model_cards_dir=_path(model_cards_dir))

    def train_lora(self, *, base: str, mixture: str | Path | Mixture, autorater: str, config: LoRAConfig | None = None,
                   model_cards_dir: str | Path | None = None,
                   on_progress: Callable[[int, int, float], None] | None = None) -> TrainResult:
        """Fine-tune the generative judge ``base`` (an ``llm-judge`` checkpoint) with LoRA on a mixture;
        the merged weights are registered as a new ``llm-judge`` checkpoint of ``autorater``."""
        from registry.services.training import train_llm_judge

        return train_llm_judge(self._ctx, autorater=autorater, base=base, mixture=_mixture(mixture), config=config,
                               model_cards_dir=_path(model_cards_dir), on_progress=on_progress)

    # ------------------------------------------------------------------ artifact store
    def push(self) -> StorePush:
        """Upload every stored artifact to the DVC remote."""
        return StorePush(pushed=self._ctx.artifacts.push(), remote=self.settings.dvc_remote)

    def pull(self) -> StorePull:
        """Download every tracked artifact from the DVC remote."""
        return StorePull(pulled=self._ctx.artifacts.pull(), remote=self.settings.dvc_remote)

    def verify_store(self) -> StoreVerification:
        """Re-hash every stored dataset version, predictions file and checkpoint folder and compare
        with the hash the database records; ``ok`` is False when one is missing, changed or unreadable."""
        from registry.services.store_maintenance import verify_store

        return verify_store(self._ctx)

    def collect_garbage(self, *, grace_s: float | None = None, dry_run: bool = False) -> StoreGc:
        """Remove (``dry_run``: list) what killed writers left in the store: ``store/tmp`` leftovers,
        files no database row references (with their DVC pointers) and unreferenced DVC cache
        objects, each only when older than ``grace_s`` seconds (default one hour)."""
        from registry.services.store_maintenance import TMP_GRACE_S, collect_garbage

        return collect_garbage(self._ctx, grace_s=TMP_GRACE_S if grace_s is None else grace_s, dry_run=dry_run)

    # ------------------------------------------------------------------ perturbation probes (issue 15)
    def derive_dataset(self, name: str, *, source_ref: str, transform: str, params: Mapping[str, Any] | None = None,
                       seed: int = 0) -> Derivation:
        """Register a perturbation probe of pairwise version ``source_ref`` as the next version of
        dataset ``name``: ``transform`` (``swap``, ``pad-worse``, ``pad-better``, ``truncate-better``,
        ``format-worse``; see :mod:`registry.domain.probes`) with ``params`` (defaults for those not
        given) and ``seed``. Registered like any version (validated, content-addressed, DVC-tracked),
        the lineage in its provenance (``derived_from``); the parent's example ids are kept. The same
        derivation again returns the same version (``created`` False). ``name`` may exist only as
        probes of the same parent dataset by the same transform."""
        from registry.services.probes import derive_dataset

        return derive_dataset(self._ctx, name, source_ref=source_ref, transform=transform,
                              params=_dict(params, field="params"), seed=seed)

    def robustness(self, evaluator: str | Sequence[str] | None, *, parent: str, probe: str,
                   metric: str | None = None, n_boot: int = 1000, seed: int = 0) -> Robustness:
        """Each evaluator's ``metric`` (default: the parent's headline, accuracy) on its latest
        successful runs on ``parent`` and on ``probe``, the drop parent − probe on the examples both
        judged (paired by example id) with a paired-bootstrap CI and p-value (McNemar's p where the
        metric is 0/1 correctness). ``evaluator`` ``None``: every evaluator with runs on both."""
        from registry.services.probes import robustness

        names = [evaluator] if isinstance(evaluator, str) else None if evaluator is None else list(evaluator)
        return robustness(self._ctx, names, parent=parent, probe=probe, metric=metric, n_boot=n_boot, seed=seed)

    # ------------------------------------------------------------------ selective evaluation, PPI++ (issue 15)
    def analyze_selective(self, evaluator: str | None, dataset: str, *, target: float, delta: float,
                          confidence: str = "auto", calibration_fraction: float = 0.5, seed: int = 0,
                          cascade: Sequence[str] | None = None, splits: int = 1) -> SelectiveEvaluation:
        """Trust or Escalate: calibrate a confidence threshold on a seeded calibration split of
        ``dataset`` so that the accuracy on the kept examples is ≥ ``target`` with probability
        ≥ 1 − ``delta`` (fixed-sequence testing, exact binomial p-values), and report coverage,
        accuracy and cost on the test split. ``cascade`` (evaluators after ``evaluator``, cheap to
        expensive) escalates what a level does not keep to the next, then to a human.
        ``confidence``: ``auto``, ``prob_a``, ``orders`` or ``samples``. ``splits`` > 1 also repeats
        the calibration on that many seeded splits (the share meeting the target)."""
        from registry.services.selective import selective_evaluation

        names = ([evaluator] if evaluator else []) + [c for c in (cascade or []) if c != evaluator]
        return selective_evaluation(self._ctx, names, dataset, target=target, delta=delta, confidence=confidence,
                                    calibration_fraction=calibration_fraction, seed=seed, splits=splits)

    def analyze_ppi(self, evaluator: str, dataset: str, *, human_labels: int, metric: str | None = None,
                    positive: str | None = None, seed: int = 0, draws: int = 1, alpha: float = 0.05) -> PpiEstimate:
        """PPI++: estimate ``metric`` (``win_rate_a``, ``positive_rate``, ``mean_score``; default: the
        dataset's task type's) from the judge's verdicts on every example plus ``human_labels`` seeded
        random human labels, with a (1 − ``alpha``) CI beside the human-only CI on the same labels;
        ``draws`` > 1 repeats the draw (coverage of the full-label value, mean widths)."""
        from registry.services.selective import ppi_estimate

        return ppi_estimate(self._ctx, evaluator, dataset, human_labels=human_labels, metric=metric,
                            positive=positive, seed=seed, draws=draws, alpha=alpha)

    # ------------------------------------------------------------------ report
    def report(self, out: str | Path, *, datasets: Sequence[str] | None = None,
               task_type: str | None = None) -> Path:
        """Write the self-contained HTML report (:func:`registry.web.report.build_report`: leaderboards,
        matrix, open regressions; Plotly inlined, no network needed) to ``out``.

        ``out`` is refused as ``dataset export`` refuses it (inside the store, the DVC remote or onto
        the database, a folder, a special file); the report is built first, then written to a temporary
        file beside ``out`` and renamed onto it, so a failure leaves nothing (and an existing file as it was)."""
        import os
        import secrets

        from registry.services.datasets import _check_export_target, _make_parent
        from registry.web.report import build_report

        out = Path(out)
        _check_export_target(self._ctx, out)
        text = build_report(self, datasets, task_type).encode("utf-8")
        created = _make_parent(out)
        tmp = out.parent / f".{out.name[:40]}.{secrets.token_hex(6)}.report-tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask decides, as for any file
            with os.fdopen(fd, "wb") as fh:
                fh.write(text)
            os.replace(tmp, out)
        except OSError as exc:
            if created is not None:
                import shutil

                shutil.rmtree(created, ignore_errors=True)
            raise InvalidInput(f"cannot write the report: {exc.strerror or exc}", file=out) from None
        finally:
            if tmp.exists():
                tmp.unlink()
        return out


def _mixture(mixture: str | Path | Mixture) -> Mixture:
    from registry.domain.training import Mixture

    return mixture if isinstance(mixture, Mixture) else Mixture.from_yaml(Path(mixture))


def _dict(mapping: Mapping[str, Any] | None, *, field: str = "config") -> dict[str, Any] | None:
    if mapping is not None and not isinstance(mapping, Mapping):
        from registry.errors import InvalidInput

        raise InvalidInput(f"expected a mapping of keys to values, got {type(mapping).__name__}", field=field)
    return dict(mapping) if mapping is not None else None


def _path(path: str | Path | None) -> Path | None:
    return Path(path) if path is not None else None


def _changed_fields(a: pa.Table, b: pa.Table, ids: Sequence[str]) -> tuple[ChangedExample, ...]:
    """The fields of each example of ``ids`` whose values differ from table ``a`` to table ``b``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not ids:
        return ()
    wanted = pa.array(list(ids), pa.string())
    old = {r["example_id"]: r for r in a.filter(pc.is_in(a.column("example_id"), wanted)).to_pylist()}
    new = {r["example_id"]: r for r in b.filter(pc.is_in(b.column("example_id"), wanted)).to_pylist()}
    out = []
    for i in ids:
        x, y = old.get(i, {}), new.get(i, {})
        fields = {k: {"from": x.get(k), "to": y.get(k)} for k in dict.fromkeys([*x, *y]) if x.get(k) != y.get(k)}
        out.append(ChangedExample(example_id=i, fields=fields))
    return tuple(out)


_MATRICES: OrderedDict[tuple, HeadlineMatrix] = OrderedDict()
"""Headline matrices of this process, by (database, task type, standings generations)."""
_MATRIX_LOCK = threading.Lock()
_PROMPT_KEYS = ("system", "user")


def _prompt_text(config: Mapping[str, Any]) -> str | None:
    """A protocol's prompt templates as one text: each stage's system and user templates, then the
    judge's (``{{``/``}}`` shown as single braces, placeholders left in place); ``None`` without any."""
    from registry.adapters.evaluators.llm_judge import placeholders, render

    def text(template: str) -> str:
        return render(template, {n: "{" + n + "}" for n in placeholders(template)}, known=placeholders(template))

    parts = []
    for stage in config.get("stages") or ():
        if isinstance(stage, Mapping):
            for key in _PROMPT_KEYS:
                if isinstance(stage.get(key), str):
                    parts.append(f"### stage {stage.get('name', '?')}: {key}\n{text(stage[key])}")
    for key, value in config.items():
        if isinstance(value, str) and (key in _PROMPT_KEYS or key.endswith(("_system", "_user", "_prompt"))):
            parts.append(f"### {key}\n{text(value)}")
    return "\n\n".join(parts) if parts else None


# ---------------------------------------------------------------------- catalogs (no registry needed)
def source_catalog() -> list[SourceInfo]:
    """Every source adapter with its public origin, licence, citation and catalog datasets."""
    from registry.adapters.sources import SOURCES, get_adapter

    out = []
    for name in SOURCES.names():
        adapter = get_adapter(name)
        i = adapter.info
        out.append(SourceInfo(name=name, title=i.title, task_types=tuple(i.task_types), origin=i.origin,
                              license=i.license, citation=i.citation,
                              datasets=tuple(d.name for d in adapter.catalog())))
    return out


def catalog_datasets(only: Iterable[str] | None = None) -> list[str]:
    """The datasets :meth:`Registry.register_all` goes through: every catalog dataset, or those named
    in ``only`` or read by a source named in ``only``."""
    from registry.services.datasets import catalog_entries

    only = set(only or ())
    return [d.name for source, d in catalog_entries() if not only or d.name in only or source in only]


def metric_catalog(task_type: str | None = None) -> list[MetricEntry]:
    """Every metric (of ``task_type``) with its task types, kind, definition and source; the headline
    metrics of ``task_type`` (of every task type when None) are marked."""
    from registry.domain.metrics.catalog import HEADLINE, METRICS, check_task_type, headline_metric, metrics_for

    infos = metrics_for(check_task_type(task_type)) if task_type else sorted(METRICS.values(), key=lambda m: m.name)
    headlines = set(HEADLINE.values()) | {headline_metric("pairwise", tie_labels=True)}
    if task_type:
        headlines = {headline_metric(task_type), headline_metric(task_type, tie_labels=True)}
    return [MetricEntry(name=m.name, task_types=tuple(m.task_types), kind=m.kind, definition=m.definition,
                        source=m.source, higher_is_better=m.higher_is_better, headline=m.name in headlines)
            for m in infos]


# ---------------------------------------------------------------------- database schema
def _revision(url: str | None, change: Callable[[Any], None] | None = None) -> SchemaRevision:
    from registry.adapters.store import db

    engine = db.create_engine_for(url or Settings.from_env().db_url)
    try:
        if change is not None:
            change(engine)
        return SchemaRevision(current=db.current_revision(engine), head=db.head_revision())
    finally:
        engine.dispose()


def schema_revision(url: str | None = None) -> SchemaRevision:
    """The database's Alembic revision and the code's head revision (``url`` default: the settings')."""
    return _revision(url)


def upgrade_schema(revision: str = "head", *, url: str | None = None) -> SchemaRevision:
    """Apply the migrations up to ``revision``; returns the revision the database is then at."""
    from registry.adapters.store import db

    return _revision(url, lambda engine: db.upgrade(engine, revision))


def downgrade_schema(revision: str, *, url: str | None = None) -> SchemaRevision:
    """Revert the migrations down to ``revision`` (``base``: all of them)."""
    from registry.adapters.store import db

    return _revision(url, lambda engine: db.downgrade(engine, revision))


# ---------------------------------------------------------------------- managed vLLM servers
def _server_info(server: Any, *, health: bool = True) -> BackendServer:
    alive = server.alive()
    return BackendServer(pid=server.pid, port=server.port, base_url=server.base_url, model=str(server.model),
                         served_model_name=server.served_model_name, alive=alive,
                         healthy=bool(alive and health and server.health()),
                         log=str(server.log_path) if server.log_path else None, pid_file=str(server.pid_file))


def serve_backend(model: str | Path, *, port: int | None = None, host: str = "127.0.0.1", python: str | None = None,
                  max_model_len: int = 1024, dtype: str = "float32", served_model_name: str | None = None,
                  startup_timeout: float = 600.0) -> BackendServer:
    """Start a vLLM OpenAI-compatible server for the local model folder ``model`` in the background
    (it outlives this process; see :func:`backend_servers`, :func:`stop_backends`) and wait until it
    is healthy. ``port`` None: a free one."""
    from registry.adapters.backends.vllm_backend import ManagedServer

    if port is not None and not 0 <= port < 65536:
        raise InvalidInput(f"port must be in 0..65535, got {port}", field="port")
    server = ManagedServer(model, python=python, host=host, port=port or None, max_model_len=max_model_len,
                           dtype=dtype, served_model_name=served_model_name, startup_timeout=startup_timeout)
    server.start()
    return _server_info(server)


def backend_servers() -> list[BackendServer]:
    """The managed servers with a PID file, and whether each is alive and healthy."""
    from registry.adapters.backends.vllm_backend import list_servers

    return [_server_info(s) for s in list_servers()]


def stop_backends(port: int | None = None, *, all: bool = False, grace: float = 15.0) -> list[StoppedServer]:  # noqa: A002
    """Stop the managed server on ``port`` (or every one, ``all=True``) by PID: SIGTERM, SIGKILL after
    ``grace`` seconds; stale PID files are removed. A PID that is no longer a vLLM API server (reused
    by another program) is never signalled."""
    from registry.adapters.backends.vllm_backend import list_servers

    if (port is None) == (not all):
        raise InvalidInput("give a port or all=True", field="port", hint="autorater backend stop --port N or --all")
    servers = [s for s in list_servers() if all or s.port == port]
    if port is not None and not servers:
        raise NotFound(f"no managed vLLM server on port {port}")
    out = []
    for server in servers:
        was_alive = server.is_ours()
        server.stop(grace=grace)
        out.append(StoppedServer(port=server.port, pid=server.pid, stopped=was_alive, stale=not was_alive))
    return out
