"""Running an evaluator on a dataset version: judgments through the durable cache, predictions
as content-addressed Parquet, metrics with confidence intervals, all recorded in one run.

Caches, all in the ``judgments`` table:

* judgments — keyed by (evaluator hash, example input hash, order, sample);
* protocol stage outputs (generated references, rubric questions, per-response analyses and
  ratings of multi-stage protocols) — :class:`JudgmentStageStore`: the record's ``key`` is the
  *stage key* (SHA-256 of ``kind: stage``, the backend fingerprint, the stage's templates, inputs
  and generation settings; :meth:`LLMJudge.stage_key`), ``example_hash`` the xxh3-128 of the
  stage's inputs only (:func:`stage_input_hash`), ``order`` 0, ``sample`` the sample index when the
  stage samples (else 0), the verdict's ``raw`` the generated text and no label. Protocols and evaluators
  sharing a stage (same checkpoint, same stage text and settings) share these rows; no migration
  was needed;
* protocol votes (``vote: [name@version, ...]``) — the members run as evaluators of their own
  (same checkpoint and config, member protocol: the same hash as an evaluator created for them,
  so their cached judgments are reused and theirs are reused by a later member run), then each
  example and order gets the majority of the members' verdicts (each member's samples reduced by
  strict plurality first); a split vote is a ``tie``, no member verdict at all a parse failure.
  The vote's own judgments are cached under the vote evaluator's hash.
"""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from registry import __version__
from registry.adapters.evaluators import EVALUATORS, TaskContext, Verdict
from registry.adapters.evaluators.llm_judge import StageOutput, StageStore
from registry.domain.entities import EvaluationRun, JudgmentRecord
from registry.domain.judgments import (
    ORDER_SWAPPED,
    PREDICTION_COLUMNS,
    example_input_hashes,
)
from registry.domain.types import PAIRWISE_LABELS
from registry.errors import InvalidInput, RegistryError
from registry.hashing import sha256_bytes
from registry.services.app import RegistryContext

if TYPE_CHECKING:
    from registry.adapters.store.abstract import AbstractStore
from registry.services.evaluators import checkpoint_folder, evaluator_sha256

Progress = Callable[[int, int], None]
_ARROW_TYPES = {"string": pa.string(), "int8": pa.int8(), "int16": pa.int16(), "int32": pa.int32(),
                "float64": pa.float64(), "bool": pa.bool_()}
PREDICTION_SCHEMA = pa.schema([pa.field(k, _ARROW_TYPES[v]) for k, v in PREDICTION_COLUMNS.items()])
_IMPORTED = datetime.now(UTC)


@functools.cache
def process_started() -> datetime:
    """When this process started (when this module was first imported, if the system does not say).
    A run of the same pair and parameters that another process finished since then was asked for
    concurrently with this process's requests: :func:`run_evaluation` answers with it.

    On Linux, from the process's start in clock ticks since boot and the clock since boot (exact
    to a tick); psutil's ``create_time`` adds the boot time in whole seconds, which may put the
    start up to a second early — a run another process finished just before this one started would
    then be taken for a concurrent one and returned instead of run."""
    try:
        with open("/proc/self/stat", "rb") as f:
            ticks = int(f.read().rsplit(b")", 1)[1].split()[19])  # field 22, starttime
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        return min(datetime.fromtimestamp(time.time() - age, UTC), _IMPORTED)
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import psutil

        return min(datetime.fromtimestamp(psutil.Process().create_time(), UTC), _IMPORTED)
    except Exception:  # psutil missing or the platform will not say
        return _IMPORTED


def _this_process() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


@dataclass(frozen=True)
class RunPlan:
    """What a run will judge: orders × samples over the examples."""

    orders: tuple[int, ...]
    samples: int


def task_context(version) -> TaskContext:
    """The evaluator's view of a dataset version (labels, scale, criterion)."""
    stats = version.statistics or {}
    scale = tuple(stats["scale"]) if stats.get("scale") else None
    labels = version.labels or (PAIRWISE_LABELS if version.task_type == "pairwise" else None)
    return TaskContext(task_type=version.task_type, labels=tuple(labels) if labels else None,
                       scale=scale, criterion=None)


def plan_for(task_type: str, protocol_config: dict, plugin_cls, config: dict | None = None) -> RunPlan:
    """Orders and samples of a run: the protocol's, unless the evaluator's config sets ``orders``
    (``[0]`` as given, ``[1]`` swapped only, ``[0, 1]`` both) or ``samples``."""
    config = config or {}
    orders = config.get("orders", protocol_config.get("orders", list(plugin_cls.default_orders)))
    if task_type != "pairwise" or not isinstance(orders, list):
        orders = [0]
    if not orders or any(o not in (0, 1) for o in orders) or len(set(orders)) != len(orders):
        raise InvalidInput(f"orders must be [0], [1] or [0, 1], got {orders!r}", field="orders")
    samples = config.get("samples", protocol_config.get("samples", 1))
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise InvalidInput(f"samples must be a positive integer, got {samples!r}", field="samples")
    return RunPlan(orders=tuple(int(o) for o in orders), samples=samples)


class JudgmentStageStore(StageStore):
    """Protocol stage outputs in the durable judgment cache (see the module docstring)."""

    def __init__(self, store: AbstractStore) -> None:
        self.store = store

    def get(self, key: str, input_hashes, sample: int) -> dict[str, StageOutput]:
        found = self.store.cached_judgments(key, input_hashes, 0, sample)
        return {h: StageOutput(text=v.raw or "", prompt_tokens=int(v.prompt_tokens or 0),
                               completion_tokens=int(v.completion_tokens or 0), seconds=float(v.seconds or 0.0))
                for h, v in ((h, j.verdict) for h, j in found.items())}

    def put(self, key: str, outputs, sample: int) -> None:
        self.store.save_judgments(
            JudgmentRecord(key=key, example_hash=h, order=0, sample=sample,
                           verdict=Verdict(raw=out.text, prompt_tokens=out.prompt_tokens,
                                           completion_tokens=out.completion_tokens, seconds=out.seconds))
            for h, out in outputs.items())


def _shown(example: dict[str, Any], order: int) -> dict[str, Any]:
    if order != ORDER_SWAPPED:
        return example
    return {**example, "response_a": example["response_b"], "response_b": example["response_a"]}


def _to_cache(ev_sha: str, key: str, order: int, sample: int, v: Verdict) -> JudgmentRecord:
    """A plugin's verdict on the example as shown in ``order`` → its cache record, in the original
    orientation."""
    if order == ORDER_SWAPPED:
        v = v.swapped()
        if v.score is not None and v.label in ("A", "B", "tie"):
            v = replace(v, score=-v.score)  # a pairwise margin flips with the orientation too
    return JudgmentRecord(key=ev_sha, example_hash=key, order=order, sample=sample, verdict=replace(v, extra={}))


@functools.cache
def code_revision() -> str | None:
    """The git commit of the registry's source tree (with ``+dirty`` for local changes), if any."""
    from registry.config import PROJECT_ROOT

    try:
        rev = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("+dirty" if dirty else "")


@functools.cache
def scoring_code() -> str:
    """SHA-256 of the source of everything that turns predictions into metric records (the domain,
    scoring, streaming and this module): a run's scores are reused only under the same code."""
    from pathlib import Path

    import registry

    root = Path(registry.__file__).resolve().parent
    files = sorted((root / "domain").rglob("*.py")) + [root / "services" / f for f in
                                                        ("scoring.py", "streaming.py", "evaluation.py")]
    parts = []
    for f in files:
        try:
            parts.append(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
        except OSError:
            parts.append(str(f).encode() + b"\0-")
    return sha256_bytes(b"\0\0".join(parts))


def scoring_key(ev, *, n_boot: int, slicing: dict[str, Any]) -> dict[str, Any]:
    """What a run's metric records depend on besides its predictions, the version and its seed: kept
    in the run's provenance as ``scoring``, compared by :func:`reusable_scores`."""
    return {"code": scoring_code(), "n_boot": n_boot, "slicing": slicing,
            "price_per_1k_tokens": ev.price_per_1k_tokens}


def reusable_scores(reg: RegistryContext, ev, version, digest: str, *, seed: int, key: dict[str, Any]):
    """The metric records (and per-example judgments) of a succeeded run of ``ev`` on ``version``
    whose predictions file is byte for byte ``digest``, scored with the same seed and
    :func:`scoring_key`: exactly what scoring those predictions again gives (scoring is a pure,
    seeded function of them, the version's rows and that key). ``(records, run id)``, or ``None``."""
    from registry.services.scoring import ScoredMetrics

    for run in reg.store.list_runs(dataset=version.ref, evaluator=ev.name, status="succeeded", limit=20):
        prov = run.provenance or {}
        if (run.predictions_sha256 != digest or run.seed != seed or prov.get("scoring") != key
                or prov.get("evaluator_sha256") != ev.sha256 or prov.get("dataset_sha256") != version.content_hash
                or not run.metrics):
            continue
        examples = reg.store.run_examples([run.id]).get(run.id)
        if examples is None:
            continue
        out = ScoredMetrics(run.metrics)
        out.examples = examples
        return out, run.id
    return None


def _library_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("numpy", "pyarrow", "torch", "transformers", "scipy"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def run_evaluation(reg: RegistryContext, evaluator: str, dataset: str, *, seed: int = 0, n_boot: int = 1000,
                   batch_size: int = 64, on_progress: Progress | None = None,
                   slice_by: Sequence[str] | None = None, min_slice_size: int = 10,
                   chunk_rows: int | None = None) -> EvaluationRun:
    """Run ``evaluator`` on dataset version ``dataset`` (``name[@version]``).

    Judgments already in the cache (same evaluator hash, same example inputs, order and sample)
    are reused; only the missing ones are computed, committed batch by batch so an interrupted
    run resumes where it stopped. The version is read, judged, cached, written and scored a chunk
    of rows at a time (:mod:`registry.services.streaming`; ``chunk_rows`` rows, by default sized
    from ``AUTORATER_MEMORY_MB``), except by protocol votes. The headline metrics are also stored per value of each
    ``slice_by`` column (default ``category``), skipping slices under ``min_slice_size`` examples
    (:func:`registry.services.scoring.compute_metrics`).

    Concurrent callers: the run holds its pair's claim (:mod:`registry.services.claims`); a second
    caller waits for the first to finish, then returns the first one's run when it has the same
    parameters (seed, ``n_boot``, slicing) — as it does for any such run another process finished
    since this process started (:func:`process_started`) —, else runs the pair itself. ``running``
    rows of dead processes, found under the claim, are marked failed as abandoned first."""
    from registry.services.claims import abandon_running, claim
    from registry.services.scoring import check_slicing
    from registry.services.streaming import scoring_table

    store = reg.store
    ev = store.get_evaluator(evaluator)
    version = store.get_version(dataset)
    if ev.kind == "jury":  # combined from its members' stored runs (registry.services.jury)
        from registry.services.jury import run_jury

        return run_jury(reg, ev, version, seed=seed, n_boot=n_boot, slice_by=slice_by, min_slice_size=min_slice_size)
    if ev.kind == "cascade":  # routed through its members' stored runs (registry.services.cascade)
        from registry.services.cascade import run_cascade

        return run_cascade(reg, ev, version, seed=seed, n_boot=n_boot, slice_by=slice_by,
                           min_slice_size=min_slice_size)
    if ev.kind == "external":
        raise InvalidInput(f"evaluator {ev.name!r} is external: import its predictions with `autorater eval import`")
    plugin_cls = EVALUATORS.get(ev.kind)
    if version.task_type not in plugin_cls.task_types:
        raise InvalidInput(f"evaluator {ev.name!r} ({ev.kind}) cannot judge {version.task_type} data "
                           f"({version.ref}); it supports {list(plugin_cls.task_types)}")
    if slice_by is not None or min_slice_size != 10:  # bad slicing options fail before the run starts
        check_slicing(scoring_table(reg, version, slice_by), slice_by, min_slice_size)
    slicing = {"slice_by": list(slice_by) if slice_by is not None else None, "min_slice_size": min_slice_size}
    with claim(reg, ev.name, version.ref, wait=None):
        abandon_running(reg, ev.name, version.ref)
        done = _concurrent_run(reg, ev, version, seed=seed, n_boot=n_boot, slicing=slicing)
        if done is not None:
            return done
        return _run_claimed(reg, ev, version, plugin_cls, seed=seed, n_boot=n_boot, batch_size=batch_size,
                            on_progress=on_progress, slice_by=slice_by, min_slice_size=min_slice_size,
                            slicing=slicing, chunk_rows=chunk_rows)


def _concurrent_run(reg: RegistryContext, ev, version, *, seed: int, n_boot: int,
                    slicing: dict[str, Any]) -> EvaluationRun | None:
    """The newest succeeded run of the pair with these parameters that another process finished
    since this one started (see :func:`run_evaluation`), if any."""
    since, me = process_started(), _this_process()
    for run in reg.store.list_runs(dataset=version.ref, evaluator=ev.name, status="succeeded", limit=20):
        prov = run.provenance or {}
        if (run.finished_at is not None and run.finished_at >= since and run.seed == seed
                and prov.get("n_boot") == n_boot and prov.get("slicing") == slicing
                and prov.get("evaluator_sha256") == ev.sha256 and prov.get("dataset_sha256") == version.content_hash
                and prov.get("process") != me):
            return run
    return None


def _run_claimed(reg: RegistryContext, ev, version, plugin_cls, *, seed: int, n_boot: int, batch_size: int,
                 on_progress: Progress | None, slice_by: Sequence[str] | None, min_slice_size: int,
                 slicing: dict[str, Any], chunk_rows: int | None = None) -> EvaluationRun:
    """The run itself (:func:`run_evaluation`, under the pair's claim)."""
    from registry.services.datasets import load_table
    from registry.services.scoring import compute_metrics
    from registry.services.streaming import stream_run

    store = reg.store
    with store.unit_of_work() as uow:
        protocol_config = dict(uow.get_protocol(ev.protocol).config or {})
        ckpt = uow.get_checkpoint(ev.checkpoint) if ev.checkpoint else None
        run_id = uow.start_run(ev.name, version.ref, seed=seed).id
    t0 = time.perf_counter()
    try:
        plan = plan_for(version.task_type, protocol_config, plugin_cls, ev.config)
        config = dict(ev.config)
        if ckpt is not None and ckpt.format == "safetensors":
            config["checkpoint"] = str(checkpoint_folder(reg, ckpt))
        config.setdefault("batch_size", batch_size)
        # the run's seed drives the bootstrap and coin flips only; an evaluator's own seed (random
        # baseline, sampling) is part of its config and so of its hash and cache key
        config["protocol"] = protocol_config
        ctx = task_context(version)
        scoring = scoring_key(ev, n_boot=n_boot, slicing=slicing)
        extra_provenance: dict[str, Any] = {"scoring": scoring}
        if protocol_config.get("vote"):  # the members' majorities: the whole table at once
            table = load_table(reg, version.ref)
            cols = {name: table.column(name).to_pylist() for name in table.column_names}
            keys = example_input_hashes(cols, version.task_type, plugin_cls.input_fields.get(version.task_type))
            judgments, executed, cached = _judge_vote(reg, ev, ckpt, plugin_cls, config, ctx, cols, keys, plan,
                                                      batch_size, on_progress, extra_provenance)
            predictions = _prediction_table(cols["example_id"], keys, judgments, plan)
            uri, digest = _store_predictions(reg, predictions)
            metrics = compute_metrics(version.task_type, table, predictions, ctx=ctx, seed=seed, n_boot=n_boot,
                                      price_per_1k_tokens=ev.price_per_1k_tokens, slice_by=slice_by,
                                      min_slice_size=min_slice_size)
            n_examples, n_judgments = len(keys), predictions.num_rows
            prompt_tokens = int(sum(j.verdict.prompt_tokens for j in judgments.values()))
            completion_tokens = int(sum(j.verdict.completion_tokens for j in judgments.values()))
        else:
            def reuse(digest: str):
                found = reusable_scores(reg, ev, version, digest, seed=seed, key=scoring)
                if found is None:
                    return None
                extra_provenance["scores_reused_from"] = found[1]
                return found[0]

            got = stream_run(reg, ev.sha256, version, plugin_cls, config, ctx, plan, batch_size=batch_size,
                             on_progress=on_progress, seed=seed, n_boot=n_boot,
                             price_per_1k_tokens=ev.price_per_1k_tokens, slice_by=slice_by,
                             min_slice_size=min_slice_size, rows_per_chunk=chunk_rows,
                             stage_store_factory=lambda: JudgmentStageStore(store), reuse_scores=reuse)
            if protocol_config.get("stages"):
                extra_provenance["stages"] = {"generated": 0, "reused": 0, **got.stage_stats}
            extra_provenance["streaming"] = got.profile
            uri, digest, metrics = got.predictions_uri, got.predictions_sha256, got.metrics
            executed, cached, n_examples, n_judgments = got.executed, got.cached, got.n_examples, got.n_judgments
            prompt_tokens, completion_tokens = got.prompt_tokens, got.completion_tokens
        elapsed = time.perf_counter() - t0
        cost = (None if ev.price_per_1k_tokens is None
                else (prompt_tokens + completion_tokens) / 1000 * ev.price_per_1k_tokens)
        provenance = {"evaluator_sha256": ev.sha256, "dataset_sha256": version.content_hash,
                      "protocol": ev.protocol, "checkpoint": ev.checkpoint, "orders": list(plan.orders),
                      "samples": plan.samples, "n_boot": n_boot, "code_version": __version__,
                      "code_revision": code_revision(), "libraries": _library_versions(), "slicing": slicing,
                      "process": _this_process(), **extra_provenance}
        with store.unit_of_work() as uow:  # the run and its metrics, together
            uow.finish_run(run_id, seconds=elapsed, n_examples=n_examples, n_judgments=n_judgments,
                           n_executed=executed, n_cached=cached, prompt_tokens=prompt_tokens,
                           completion_tokens=completion_tokens, cost_usd=cost, predictions_uri=uri,
                           predictions_sha256=digest, provenance=provenance)
            uow.record_metrics(run_id, metrics)
        return store.get_run(run_id)
    except BaseException as exc:
        store.fail_run(run_id, error=f"{type(exc).__name__}: {exc}"[:4000], seconds=time.perf_counter() - t0)
        raise


def _judge_all(reg, ev_sha, plugin_cls, config, ctx, cols, keys, plan, batch_size, on_progress,
               stage_stats: dict[str, int] | None = None):
    """All judgments of the plan, from the cache or computed (committed per batch). A plugin with
    a ``stage_store`` (multi-stage protocols) gets the durable :class:`JudgmentStageStore`; its
    ``stage_stats`` (stage outputs generated / reused) are added to ``stage_stats``."""
    store = reg.store
    unique_keys = list(dict.fromkeys(keys))
    first_index = {k: i for i, k in reversed(list(enumerate(keys)))}
    judgments: dict[tuple[str, int, int], JudgmentRecord] = {}
    executed = cached = 0
    total = len(unique_keys) * len(plan.orders) * plan.samples
    plugin = None
    done = 0
    try:
        for order in plan.orders:
            for sample in range(plan.samples):
                found = store.cached_judgments(ev_sha, unique_keys, order, sample)
                for k, j in found.items():
                    judgments[(k, order, sample)] = j
                cached += len(found)
                done += len(found)
                if on_progress:
                    on_progress(done, total)
                missing = [k for k in unique_keys if k not in found]
                for start in range(0, len(missing), batch_size):
                    chunk = missing[start:start + batch_size]
                    if plugin is None:
                        plugin = plugin_cls(config)
                        if hasattr(plugin, "stage_store"):
                            plugin.stage_store = JudgmentStageStore(store)
                    examples = [_shown({f: cols[f][first_index[k]] for f in cols}, order) for k in chunk]
                    verdicts = plugin.judge(ctx, examples, sample=sample)
                    if len(verdicts) != len(chunk):
                        raise RegistryError(f"evaluator returned {len(verdicts)} verdicts for {len(chunk)} examples")
                    rows = [_to_cache(ev_sha, k, order, sample, v) for k, v in zip(chunk, verdicts)]
                    store.save_judgments(rows)  # committed per batch: an interrupted run resumes here
                    for k, row in zip(chunk, rows):
                        judgments[(k, order, sample)] = row
                    executed += len(chunk)
                    done += len(chunk)
                    if on_progress:
                        on_progress(done, total)
    finally:
        if plugin is not None:
            if stage_stats is not None:
                for k, v in getattr(plugin, "stage_stats", {}).items():
                    stage_stats[k] = stage_stats.get(k, 0) + v
            plugin.close()
    return judgments, executed, cached


def plurality(verdicts) -> str | None:
    """The verdict with a strict plurality among the non-missing ones, else None."""
    counts: dict[str, int] = {}
    for v in verdicts:
        if v is not None:
            counts[v] = counts.get(v, 0) + 1
    if not counts:
        return None
    top = max(counts.values())
    winners = [v for v, c in counts.items() if c == top]
    return winners[0] if len(winners) == 1 else None


def _judge_vote(reg, ev, ckpt, plugin_cls, config, ctx, cols, keys, plan, batch_size, on_progress, provenance):
    """A protocol vote (module docstring): the members' judgments (cached or computed), then the
    majority per example and order, cached under the vote evaluator's hash."""
    import json

    store = reg.store
    unique_keys = list(dict.fromkeys(keys))
    judgments: dict[tuple[str, int, int], JudgmentRecord] = {}
    missing: dict[int, list[str]] = {}
    for order in plan.orders:
        found = store.cached_judgments(ev.sha256, unique_keys, order, 0)
        judgments.update({(k, order, 0): j for k, j in found.items()})
        missing[order] = [k for k in unique_keys if k not in found]
    cached = sum(len(unique_keys) - len(m) for m in missing.values())
    total = len(unique_keys) * len(plan.orders)
    if on_progress:
        on_progress(cached, total)
    members_info: dict[str, dict[str, Any]] = {}
    if any(missing.values()):
        member_judgments = {}
        for m_ref, m_sha, m_config in vote_members(reg, ev, config["protocol"]):
            m_plan = plan_for(ctx.task_type, m_config, plugin_cls, ev.config)
            m_plan = RunPlan(orders=tuple(o for o in m_plan.orders if o in plan.orders) or plan.orders,
                             samples=m_plan.samples)
            if set(m_plan.orders) != set(plan.orders):
                raise InvalidInput(f"vote member {m_ref} judges orders {list(m_plan.orders)}, the vote needs "
                                   f"{list(plan.orders)}", field="vote")
            stats = {"generated": 0, "reused": 0}
            got, executed, hit = _judge_all(reg, m_sha, plugin_cls, {**config, "protocol": m_config}, ctx, cols,
                                            keys, m_plan, batch_size, None, stats)
            member_judgments[m_ref] = (got, m_plan)
            members_info[m_ref] = {"evaluator_sha256": m_sha, "executed": executed, "cached": hit, "stages": stats}
        rows = []
        for order, todo in missing.items():
            for k in todo:
                votes, cost = {}, [0, 0, 0.0]
                for m_ref, (got, m_plan) in member_judgments.items():
                    samples = [got[(k, order, smp)] for smp in range(m_plan.samples)]
                    votes[m_ref] = plurality(j.verdict.label for j in samples)
                    for j in samples:
                        cost[0] += int(j.verdict.prompt_tokens or 0)
                        cost[1] += int(j.verdict.completion_tokens or 0)
                        cost[2] += float(j.verdict.seconds or 0.0)
                cast = [v for v in votes.values() if v is not None]
                verdict = plurality(cast) or ("tie" if cast else None)
                rows.append(JudgmentRecord(key=ev.sha256, example_hash=k, order=order, sample=0, verdict=Verdict(
                    label=verdict, parsed=verdict is not None, raw=json.dumps({"votes": votes}, sort_keys=True),
                    prompt_tokens=cost[0], completion_tokens=cost[1], seconds=cost[2])))
        store.save_judgments(rows)
        judgments.update({(r.example_hash, r.order, 0): r for r in rows})
    provenance["vote_members"] = members_info
    if on_progress:
        on_progress(total, total)
    return judgments, total - cached, cached


def vote_members(reg: RegistryContext, ev, protocol_config: dict) -> list[tuple[str, str, dict]]:
    """(``name@version``, evaluator hash, protocol config) of each member of a vote evaluator: the
    evaluator's checkpoint and config under the member protocol — the hash an evaluator created for
    that pair has, so the member's cached judgments are shared with it."""
    members = protocol_config.get("vote")
    if not isinstance(members, list) or len(members) < 2:
        raise InvalidInput("'vote' must list at least two protocols (name@version)", field="vote")
    out = []
    with reg.store.unit_of_work() as uow:
        ckpt_sha = uow.get_checkpoint(ev.checkpoint).sha256 if ev.checkpoint else None
        for ref in members:
            proto = uow.get_protocol(str(ref))
            if (proto.config or {}).get("vote"):
                raise InvalidInput(f"vote member {ref} is itself a vote", field="vote")
            out.append((proto.ref, evaluator_sha256(ev.kind, ckpt_sha, proto.sha256, dict(ev.config)),
                        dict(proto.config or {})))
    return out


def _prediction_table(ids: list[str], keys: list[str], judgments: dict, plan: RunPlan) -> pa.Table:
    rows: dict[str, list] = {c: [] for c in PREDICTION_COLUMNS}
    for order in plan.orders:
        for sample in range(plan.samples):
            for example_id, key in zip(ids, keys):
                j = judgments[(key, order, sample)].verdict
                rows["example_id"].append(example_id)
                rows["order"].append(order)
                rows["sample"].append(sample)
                rows["verdict"].append(j.label)
                rows["score"].append(j.score)
                rows["prob_a"].append(j.prob_a)
                rows["parsed"].append(bool(j.parsed))
                rows["raw"].append(j.raw)
                rows["prompt_tokens"].append(int(j.prompt_tokens or 0))
                rows["completion_tokens"].append(int(j.completion_tokens or 0))
                rows["seconds"].append(float(j.seconds or 0.0))
    return pa.Table.from_pydict(rows, schema=PREDICTION_SCHEMA)


def _store_predictions(reg: RegistryContext, table: pa.Table) -> tuple[str, str]:
    """Write predictions as content-addressed Parquet in the DVC store."""
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table.replace_schema_metadata(None), sink, compression="zstd")
    blob = sink.getvalue().to_pybytes()
    digest = sha256_bytes(blob)
    relpath = reg.artifacts.relpath_for("predictions", digest, ".parquet")
    if not reg.artifacts.exists(relpath):
        tmp = reg.artifacts.root / "tmp" / f"{digest}.{uuid.uuid4().hex}.parquet"  # own file: writers race
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(blob)
        with reg.artifacts.placing(tmp, relpath):
            pass
    else:
        reg.artifacts.touch(relpath)  # reused (e.g. left by a killed run): young again for `store gc`
    return relpath, digest


def load_predictions(reg: RegistryContext, run: EvaluationRun) -> pa.Table:
    """The per-example predictions of a run."""
    if not run.predictions_uri:
        raise InvalidInput(f"run {run.id} has no predictions (status {run.status})")
    from registry.services.store_maintenance import check_predictions_file

    table = reg.artifacts.read_parquet(run.predictions_uri)  # pulls a file that is only on the remote
    check_predictions_file(reg, run)
    return table
