"""The registry's metadata store as the services see it: intent-named methods that take and return
the entities of :mod:`registry.domain.entities`, and a unit of work.

Every method runs in a transaction of its own, unless it is called inside
:meth:`AbstractStore.unit_of_work`: then all the calls of the block (on the store it yields, from
the thread that opened it) are one transaction, committed when the block ends and rolled back as a
whole when it raises (driver errors surface as :class:`registry.errors.DatabaseError`). A use case
opens one unit of work for the writes that belong together::

    with reg.store.unit_of_work() as uow:
        uow.finish_run(run_id, ...)
        uow.record_metrics(run_id, metrics)

References are the ones users type: datasets ``name`` (latest) or ``name@version``, checkpoints
``autorater``, ``autorater@3`` or ``autorater@champion``, protocols ``name[@version]``; an
unknown one is :class:`registry.errors.NotFound` with "did you mean".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from registry.domain.entities import (
    Checkpoint,
    Dataset,
    DatasetVersion,
    EvaluationRun,
    Evaluator,
    JudgmentRecord,
    MetricRecord,
    Protocol,
    Regression,
    Source,
)
from registry.errors import RegistryError

if TYPE_CHECKING:  # pragma: no cover
    from registry.adapters.store.judgment_segments import JudgmentLookup


class ParentMoved(RegistryError):
    """:meth:`AbstractStore.add_version` was asked for the version after ``parent``, but another
    writer registered a newer version meanwhile: prepare the registration again (its parent and
    row diff) against the new latest version."""

    code = "concurrent_change"


class StandingRecord(NamedTuple):
    """One leaderboard row as the store keeps it: the latest succeeded run of an evaluator on a
    dataset version and one metric of that run (``value`` ``None`` when the run has none). (A named
    tuple: a leaderboard reads thousands of them.)"""

    evaluator: str
    dataset: str
    """The dataset version, ``name@version``."""
    run_id: int
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    n_aligned: int | None
    """Examples the run aligned (a prediction in every order judged); ``None`` if unknown."""
    n_rows: int
    """Rows of the dataset version."""
    metrics: dict[str, float | None] | None = None
    """Every whole-dataset metric of the run (when asked for)."""


class CachedTest(NamedTuple):
    """A cached paired test against the best run: ``p_value`` and ``difference`` (best − candidate),
    or ``None`` with ``test`` saying why there is none; ``test`` otherwise names the test."""

    p_value: float | None
    difference: float | None
    test: str | None


@dataclass(frozen=True)
class StandingsBoard:
    """A dataset version's leaderboard rows with the paired tests cached for them, read in one go."""

    dataset: str
    """``name@version``."""
    task_type: str
    statistics: dict[str, Any]
    """The version's statistics (its headline metric depends on them)."""
    rows: list[StandingRecord]
    tests: dict[int, dict[int, CachedTest]]
    """Cached tests of the rows' metric with the asked bootstrap settings: best run id → candidate run id → test."""
    generation: int = 0
    """The task type's standings generation, read before the rows (see :meth:`AbstractStore.standings_generation`)."""


RUN_STATUSES = ("running", "succeeded", "failed")
"""Statuses of an evaluation run: ``running`` while it runs (or if its process died), then
``succeeded`` or ``failed``."""


class AbstractStore(ABC):
    """Registry metadata: sources, datasets and versions, checkpoints and aliases, protocols,
    evaluators, runs with their metrics, the judgment cache and regressions."""

    # ----------------------------------------------------------------- transactions
    @abstractmethod
    def unit_of_work(self) -> AbstractContextManager[AbstractStore]:
        """One transaction for the block: the store's calls from this thread all run in it,
        committed at the end, rolled back together on any error. Opened inside another unit of
        work, it joins that one."""

    def in_unit_of_work(self) -> bool:
        """Whether this thread has a unit of work open (its writes then wait for the block's end; a
        write from another thread would not be part of it). A store that cannot tell says so."""
        return True

    @abstractmethod
    def claim_pair(self, evaluator: str, dataset: str, *, wait: float | None = 0) -> AbstractContextManager[bool]:
        """Hold the claim of ``evaluator`` on dataset version ``dataset`` for the block: an
        advisory lock released by the database server or the operating system when its holder
        dies. Yields ``False`` (and holds nothing) when another live process holds it — at once
        (``wait=0``), after ``wait`` seconds, or never (``wait=None``: until the holder ends).
        Re-entrant: the thread holding a claim gets it again at once."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    # ----------------------------------------------------------------- sources and datasets
    @abstractmethod
    def list_sources(self) -> list[Source]:
        """Every source that registered data, by name."""

    @abstractmethod
    def list_datasets(self, task_type: str | None = None) -> list[Dataset]:
        """Every dataset (of ``task_type``), by name."""

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """How many sources, datasets and dataset versions are registered."""

    @abstractmethod
    def get_version(self, ref: str) -> DatasetVersion:
        """The version ``name@version`` (the latest for ``name``)."""

    @abstractmethod
    def list_versions(self, name: str) -> list[DatasetVersion]:
        """Every version of dataset ``name``, oldest first."""

    @abstractmethod
    def latest_versions(self, task_type: str | None = None) -> dict[str, DatasetVersion]:
        """The newest version of every dataset (of ``task_type``), by dataset name."""

    @abstractmethod
    def latest_version(self, name: str, *, task_type: str | None = None) -> DatasetVersion | None:
        """The newest version of dataset ``name`` (``None`` when it has none or does not exist);
        with ``task_type``, a dataset of another task type is :class:`InvalidInput`."""

    @abstractmethod
    def find_version_by_hash(self, name: str, content_hash: str) -> DatasetVersion | None:
        """The version of dataset ``name`` with this content hash, if any."""

    @abstractmethod
    def find_version_by_fingerprint(self, name: str, fingerprint: str) -> DatasetVersion | None:
        """The newest version of dataset ``name`` registered from an identical input, if any."""

    @abstractmethod
    def add_version(self, *, dataset: str, task_type: str, description: str, source: Source | None,
                    parent: int | None, content_hash: str, row_count: int, spec_name: str, spec_version: int,
                    spec_sha256: str, storage_uri: str, labels: list[str] | None, statistics: dict[str, Any],
                    validation_report: dict[str, Any], diff_from_parent: dict[str, int] | None,
                    provenance: dict[str, Any], input_fingerprint: str | None) -> tuple[DatasetVersion, int, bool]:
        """Record the next version of ``dataset`` (created, and its ``source`` recorded, when
        new; a dataset of another task type is :class:`InvalidInput`) with version ``parent`` of
        the same dataset as its parent. Returns the version, its row id (the ``version_id`` of
        the registration event) and ``True``.

        Safe against concurrent writers: registering transactions take turns; when the same
        content was registered meanwhile, returns that version with ``False`` (nothing written);
        when ``parent`` is no longer the latest version, raises :class:`ParentMoved`."""

    # ----------------------------------------------------------------- checkpoints
    @abstractmethod
    def get_checkpoint(self, ref: str) -> Checkpoint:
        """The checkpoint ``autorater``, ``autorater@version`` or ``autorater@alias``."""

    @abstractmethod
    def list_checkpoints(self, autorater: str | None = None) -> list[Checkpoint]:
        """Every checkpoint (of ``autorater``), by autorater then version."""

    @abstractmethod
    def parent_checkpoint(self, ref: str) -> Checkpoint | None:
        """The checkpoint ``ref`` was derived from (possibly of another autorater), if any."""

    @abstractmethod
    def add_checkpoint(self, *, autorater: str, kind: str, uri: str, sha256: str, format: str,
                       model_card: str | None = None, tags: dict | None = None, lineage: dict | None = None,
                       parent: str | None = None, description: str = "") -> tuple[Checkpoint, bool]:
        """Register a checkpoint (the autorater too when new; idempotent on its sha256);
        returns (checkpoint, created)."""

    @abstractmethod
    def set_alias(self, ref: str, alias: str) -> Checkpoint:
        """Point ``alias`` of the checkpoint's autorater at checkpoint ``ref`` (moves it)."""

    @abstractmethod
    def alias_target(self, autorater: str, alias: str) -> Checkpoint | None:
        """The checkpoint an alias of ``autorater`` points at, if the alias exists."""

    # ----------------------------------------------------------------- protocols
    @abstractmethod
    def upsert_protocol(self, protocol: Protocol) -> Protocol:
        """Register a protocol version (idempotent); other content under a registered
        ``name@version`` is :class:`AlreadyExists`."""

    @abstractmethod
    def get_protocol(self, ref: str) -> Protocol:
        """The protocol ``name@version`` (the latest for ``name``)."""

    @abstractmethod
    def list_protocols(self) -> list[Protocol]:
        """Every protocol version, by name then version."""

    @abstractmethod
    def earlier_protocols(self, ref: str) -> list[Protocol]:
        """The versions of protocol ``ref`` older than it, newest first."""

    # ----------------------------------------------------------------- evaluators
    @abstractmethod
    def add_evaluator(self, *, name: str, kind: str, checkpoint: str | None, protocol: str, config: dict,
                      sha256: str, price_per_1k_tokens: float | None = None) -> tuple[Evaluator, bool]:
        """Pair checkpoint ``checkpoint`` (``None``: external) with protocol ``protocol``
        (idempotent on the evaluator hash; a taken name is :class:`AlreadyExists`); returns
        (evaluator, created)."""

    @abstractmethod
    def get_evaluator(self, name: str) -> Evaluator:
        """The evaluator ``name``."""

    @abstractmethod
    def list_evaluators(self, *, active_only: bool = False) -> list[Evaluator]:
        """Every (active) evaluator, by name."""

    @abstractmethod
    def evaluator_kinds(self) -> dict[str, str]:
        """The kind of every evaluator, by name (one light read: pages that need no more than that)."""

    @abstractmethod
    def evaluators_of(self, checkpoint: str, protocol: str) -> list[Evaluator]:
        """The evaluators pairing checkpoint ``checkpoint`` with protocol ``protocol``, oldest first."""

    # ----------------------------------------------------------------- runs
    @abstractmethod
    def start_run(self, evaluator: str, dataset: str, *, seed: int) -> EvaluationRun:
        """Record a ``running`` run of ``evaluator`` on dataset version ``dataset``."""

    @abstractmethod
    def finish_run(self, run_id: int, *, seconds: float, n_examples: int, n_judgments: int, n_executed: int,
                   n_cached: int, prompt_tokens: int, completion_tokens: int, cost_usd: float | None,
                   predictions_uri: str, predictions_sha256: str, provenance: dict[str, Any]) -> None:
        """Mark run ``run_id`` ``succeeded`` now, with its counts, cost, predictions and provenance
        (its metrics: :meth:`record_metrics`). Keeps the standings (see "standings" below)."""

    @abstractmethod
    def fail_run(self, run_id: int, *, error: str, seconds: float | None = None) -> None:
        """Mark run ``run_id`` ``failed`` now, with the error."""

    @abstractmethod
    def abandon_running(self, evaluator: str, dataset: str, *, error: str) -> list[int]:
        """Mark the ``running`` runs of ``evaluator`` on ``dataset`` failed with ``error`` (their
        process died); returns their ids."""

    @abstractmethod
    def record_metrics(self, run_id: int, metrics: Iterable[MetricRecord]) -> None:
        """Replace the metrics of run ``run_id`` (and, for a succeeded run, its standings). When
        ``metrics`` has an ``examples`` attribute (bytes: the run's per-example judgments, as
        :func:`registry.services.scoring.compute_metrics` attaches them), they are stored too."""

    @abstractmethod
    def add_finished_run(self, *, evaluator: str, dataset: str, started_at: datetime, finished_at: datetime,
                         seconds: float, seed: int, n_examples: int, n_judgments: int, predictions_uri: str,
                         predictions_sha256: str, provenance: dict[str, Any], metrics: list[MetricRecord],
                         n_executed: int = 0, n_cached: int = 0) -> EvaluationRun:
        """Record a finished (succeeded) run with its metrics, e.g. imported predictions (and its
        per-example judgments and standings, as :meth:`record_metrics`)."""

    @abstractmethod
    def get_run(self, run_id: int) -> EvaluationRun:
        """The run ``run_id`` with its metrics."""

    @abstractmethod
    def list_runs(self, *, dataset: str | None = None, evaluator: str | None = None, status: str | None = None,
                  limit: int | None = None) -> list[EvaluationRun]:
        """Runs, newest first, filtered by dataset (``name`` for any version or ``name@version``),
        evaluator and status (one of :data:`RUN_STATUSES`)."""

    @abstractmethod
    def latest_runs(self, *, datasets: Iterable[str] | None = None, evaluator: str | None = None,
                    status: str = "succeeded") -> list[EvaluationRun]:
        """The newest run with ``status`` of each (evaluator, dataset version), oldest first;
        restricted to the dataset versions ``datasets`` and to ``evaluator`` when given — the
        rows of a leaderboard."""

    @abstractmethod
    def previous_version_run(self, evaluator: str, dataset: str) -> EvaluationRun | None:
        """The newest succeeded run of ``evaluator`` on the newest version of the dataset older
        than version ``dataset`` that it ran on."""

    @abstractmethod
    def checkpoint_runs(self, checkpoint: str) -> list[EvaluationRun]:
        """The succeeded runs of every evaluator of checkpoint ``checkpoint``, oldest first."""

    @abstractmethod
    def find_run_by_provenance(self, evaluator: str, version_ref: str, key: str, value: Any) -> EvaluationRun | None:
        """The newest succeeded run of ``evaluator`` on ``version_ref`` whose provenance has
        ``key == value`` (e.g. an import's content address), or ``None``."""

    # ----------------------------------------------------------------- judgment cache
    @abstractmethod
    def cached_judgments(self, key: str, example_hashes: Iterable[str], order: int,
                         sample: int) -> dict[str, JudgmentRecord]:
        """The cached judgments under ``key`` (an evaluator hash or a stage key) of these
        examples in one order and sample, by example hash."""

    @abstractmethod
    def save_judgments(self, records: Iterable[JudgmentRecord]) -> None:
        """Cache judgments (a record with the same key, example, order and sample is replaced): one
        idempotent upsert, so writers of the same judgments at once never fail and lose none."""

    @abstractmethod
    def count_judgments(self, key: str | None = None) -> int:
        """How many judgments are cached (under ``key``)."""

    @abstractmethod
    def judgment_lookup(self, key: str, order: int, sample: int, *, memory_bytes: int = 256 << 20) -> JudgmentLookup:
        """Bulk reads and writes of the cache under ``key`` in one order and sample, by 16-byte example
        hashes in Arrow arrays: ``find(hashes)`` → (found mask, one row of judgment columns per
        hash), ``save(table)`` caches many judgments at once (an Arrow *segment*, see
        :mod:`registry.adapters.store.judgment_segments`). What :meth:`save_judgments` wrote is
        found too (and wins); ``memory_bytes`` bounds the decoded segments it keeps."""

    # ----------------------------------------------------------------- regressions
    @abstractmethod
    def add_regression(self, *, candidate_run_id: int, baseline_run_id: int, baseline_kind: str, metric: str,
                       slice: str, delta: float, ci_low: float, ci_high: float, p_value: float, method: str,
                       severity: str, baseline_value: float, candidate_value: float, n_shared: int,
                       threshold: float, alpha: float, status: str, details: dict[str, Any]
                       ) -> tuple[Regression, bool]:
        """Record a regression (idempotent on candidate run, baseline run, metric and slice, also
        against a concurrent writer); returns (regression, created)."""

    @abstractmethod
    def get_regression(self, regression_id: int) -> Regression:
        """The regression ``regression_id``."""

    @abstractmethod
    def acknowledge_regression(self, regression_id: int, *, note: str, by: str | None) -> Regression:
        """Mark regression ``regression_id`` acknowledged now, with the note and who did it."""

    @abstractmethod
    def list_regressions(self, *, status: str | None = None, evaluator: str | None = None,
                         dataset: str | None = None, candidate_run_id: int | None = None,
                         checkpoint: str | None = None) -> list[Regression]:
        """Regressions, newest first, filtered by status, candidate evaluator, candidate dataset
        (``name`` for any version or ``name@version``), candidate run or candidate checkpoint."""

    # ----------------------------------------------------------------- standings
    # What `best` and `leaderboard` read. The store keeps them in the transaction that finishes a
    # run (finish_run, record_metrics, add_finished_run): the leaderboard row of the run's
    # (evaluator, dataset version) when it is the latest succeeded one, its per-example judgments
    # when given, the version's cached paired tests dropped and its task type's generation moved on.
    @abstractmethod
    def standings(self, datasets: Iterable[str], metric: str | None = None, *,
                  with_metrics: bool = False) -> list[StandingRecord]:
        """The leaderboard rows of dataset versions ``datasets`` (``name@version``): the latest
        succeeded run of every evaluator on each, with ``metric`` of that run on the whole dataset
        (default: the version's headline metric) and, ``with_metrics``, all its metric values."""

    @abstractmethod
    def standing_values(self, datasets: Iterable[str], metric: str, *,
                        changed_after: int | None = None) -> list[tuple[str, str, int, float | None]]:
        """What :meth:`standings` gives of ``metric`` on dataset versions ``datasets``, as plain tuples
        (evaluator, ``name@version``, run id, value): what a task-type ranking reads of every row.
        ``changed_after``: only the rows written after the task type's generation was this one (each
        row keeps the generation its write moved to: a reader that saw generation ``g`` has seen every
        row written up to ``g``)."""

    @abstractmethod
    def board(self, dataset: str, metric: str | None = None, *, n_boot: int, seed: int) -> StandingsBoard:
        """The leaderboard rows of dataset version ``dataset`` (``name`` = latest) with all their
        metric values — ``metric``'s value, or the headline's (each row's ``metric``) — and the paired
        tests cached for that metric with these bootstrap settings: what :meth:`standings` and
        :meth:`cached_tests` give, in one transaction."""

    @abstractmethod
    def run_examples(self, run_ids: Iterable[int]) -> dict[int, bytes]:
        """The stored per-example judgments of these runs (runs without any are left out)."""

    @abstractmethod
    def save_run_examples(self, run_id: int, data: bytes) -> None:
        """Store the per-example judgments of run ``run_id`` (replacing any)."""

    @abstractmethod
    def cached_tests(self, dataset: str, metric: str, best_run_id: int, *, n_boot: int,
                     seed: int) -> dict[int, CachedTest]:
        """The cached paired tests of ``metric`` against run ``best_run_id`` on dataset version
        ``dataset``, with these bootstrap settings, by candidate run id."""

    @abstractmethod
    def save_tests(self, dataset: str, metric: str, best_run_id: int, tests: dict[int, CachedTest], *,
                   n_boot: int, seed: int) -> None:
        """Cache paired tests (by candidate run id); one already cached by a concurrent query is kept."""

    @abstractmethod
    def standings_generation(self, task_type: str) -> int:
        """The generation of ``task_type``'s standings: it moves on whenever a run finishes on one of
        its dataset versions or a version of it is registered (0 before either; a new database's
        first generation is drawn at random, so an answer kept from a database that was replaced
        does not pass for current)."""

    @abstractmethod
    def cached_ranking(self, key: str, task_type: str) -> tuple[int, bytes | None]:
        """``task_type``'s current generation, and the ranking cached under ``key`` if it was computed
        at that generation (else ``None``)."""

    @abstractmethod
    def save_ranking(self, key: str, task_type: str, generation: int, ranking: bytes) -> None:
        """Cache a ranking of ``task_type`` computed from the standings of ``generation``."""

    @abstractmethod
    def cached_ranking_parts(self, keys: Iterable[str], *, current: bool = True,
                             head: str | None = None) -> dict[str, tuple[str, int, bytes]]:
        """The cached rankings (or parts of one) under ``keys`` that were computed at their task type's
        current generation (``current=False``: at any generation): key → (task type, generation, bytes);
        the others are left out. ``head``: only that key is held to the current generation, the others
        (parts its head document names with their own generations) are returned at any."""

    @abstractmethod
    def save_ranking_parts(self, task_type: str, generation: int, parts: dict[str, bytes]) -> None:
        """Cache a ranking of ``task_type`` computed from the standings of ``generation`` as several
        rows (key → bytes) in one transaction; a key cached at a newer generation is kept."""
