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

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.config import Settings
from registry.errors import InvalidInput, NotFound
from registry.results import (
    BackendServer,
    BaselineRun,
    CatalogRegistration,
    DatasetDetails,
    DatasetDiff,
    MetricEntry,
    Registered,
    RegistryInfo,
    RegressionCheck,
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
    from registry.services.queries import Comparison, Ranking
    from registry.services.store_maintenance import StoreGc, StoreVerification
    from registry.services.training import TailPatchResult, TrainResult

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

    def datasets(self, task_type: str | None = None) -> list[DatasetSummary]:
        """Every dataset (of ``task_type``) with its latest version and the adapter and file it came from."""
        from registry.services.datasets import list_datasets

        return list_datasets(self._ctx, task_type)

    def dataset(self, ref: str) -> DatasetDetails:
        """Version ``NAME[@VERSION]`` (default latest): hash, parent, statistics, validation report,
        provenance, and the adapter and file it was read from."""
        from registry.services.datasets import show_version, version_file, version_source

        v = show_version(self._ctx, ref)
        return DatasetDetails(version=v, source=version_source(v), source_file=version_file(v))

    def versions(self, name: str) -> list[DatasetVersion]:
        """Every version of dataset ``name``, oldest first."""
        return self._ctx.store.list_versions(name)

    def diff(self, ref_a: str, ref_b: str) -> DatasetDiff:
        """Row-level diff from ``ref_a`` to ``ref_b``: added, removed and changed example ids."""
        from registry.services.datasets import diff_versions

        return DatasetDiff(from_ref=ref_a, to_ref=ref_b, rows=diff_versions(self._ctx, ref_a, ref_b))

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

    def evaluator(self, name: str) -> Evaluator:
        """Evaluator ``name``."""
        return self._ctx.store.get_evaluator(name)

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
    def leaderboard(self, dataset: str, metric: str | None = None) -> Ranking:
        """Every evaluator on dataset ``NAME[@VERSION]``, ranked by ``metric`` (default: the headline),
        with CIs and the paired test of each against the best."""
        from registry.services.queries import leaderboard

        return leaderboard(self._ctx, dataset, metric)

    def best(self, *, dataset: str | None = None, task_type: str | None = None, metric: str | None = None,
             coverage: str | None = None, datasets: Sequence[str] | None = None) -> Ranking:
        """The best evaluator for a dataset, a task type (over the datasets chosen by ``coverage``:
        ``common`` or ``all``) or the listed ``datasets``, with the evaluators tied with it."""
        from registry.services.queries import best_evaluator

        return best_evaluator(self._ctx, dataset=dataset, task_type=task_type, metric=metric,
                              coverage=coverage, datasets=list(datasets) if datasets else None)  # type: ignore[arg-type]

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
