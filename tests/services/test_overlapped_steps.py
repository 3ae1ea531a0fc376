"""Work a streamed run does on other threads while it goes on (issue 12, item 2), each compared with
doing it in place: bootstrap class counts drawn ahead of the metrics (``CountsAhead``), the judgment
cache written on a saving thread (``JudgmentLookup.save_later``). The same numbers and the same
stored judgments; what a failure on the other thread raised reaches the caller."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pytest

import registry.domain.metrics.bootstrap as B
from registry.domain.metrics import Bootstrap, CountsAhead
from registry.services import scoring as S
from tests.services.test_judge_step import _hashes, _judgments, _Memory
from tests.services.test_scoring_arrow import _predictions, _records


@pytest.fixture
def drawn_by(monkeypatch):
    """The names of the threads that drew counts-mode class counts, in order."""
    names: list[str] = []
    real = B._Joint._draw_counts

    def record(self, b):
        if self.__dict__.get("_counts") is None:
            names.append(threading.current_thread().name)
        return real(self, b)

    monkeypatch.setattr(B._Joint, "_draw_counts", record)
    return names


def test_counts_drawn_ahead_give_the_same_records(monkeypatch, drawn_by):
    """A run whose bootstrap and slices are in counts mode: its records (values, CIs, slices) and
    per-example judgments are the same, bit for bit, whether the class counts are drawn ahead on the
    worker threads or by the metrics when they need them."""
    monkeypatch.setattr(B, "LARGE_N", 1000)
    added: list[Bootstrap] = []
    real_init, real_add = CountsAhead.__init__, CountsAhead.add

    def init(self, *args, **kwargs):   # each draw finished on its worker before the caller goes on
        real_init(self, *args, **kwargs)
        submit = self.pool.submit
        self.pool.submit = lambda fn, *a: (f := submit(fn, *a), f.result())[0]

    def add(self, boot):
        added.append(boot)
        real_add(self, boot)

    monkeypatch.setattr(CountsAhead, "__init__", init)
    monkeypatch.setattr(CountsAhead, "add", add)
    rng = np.random.default_rng(5)
    table, predictions = _predictions(rng, 40000, simple=True)
    ahead = S.compute_metrics("pairwise", table, predictions, seed=2, n_boot=60)
    assert any(r.slice == "category=c1" for r in ahead)
    counted = [b for b in added if b.counts_bytes]
    assert len(counted) >= 2                       # the run's and at least one slice's
    assert len(drawn_by) == len(counted) and all(n.startswith("bootstrap-counts") for n in drawn_by)
    drawn_by.clear()
    monkeypatch.setattr(CountsAhead, "add", lambda self, boot: None)   # nothing drawn ahead
    in_place = S.compute_metrics("pairwise", table, predictions, seed=2, n_boot=60)
    assert drawn_by and not any(n.startswith("bootstrap-counts") for n in drawn_by)
    assert _records(ahead) == _records(in_place)
    assert ahead.examples == in_place.examples


def _counts_mode(n: int, seed: int) -> Bootstrap:
    rng = np.random.default_rng(seed)
    boot = Bootstrap.draw(n, 50, seed).with_classes([rng.integers(0, 6, n), rng.integers(0, 3, n)])
    assert boot.joint is not None
    return boot


def test_counts_ahead_keeps_to_its_budget(monkeypatch):
    monkeypatch.setattr(B, "LARGE_N", 1000)
    boots = [_counts_mode(4000, s) for s in range(3)]
    size = boots[0].counts_bytes
    assert size == 4 * 50 * len(boots[0].joint.sizes)
    with CountsAhead(budget=int(1.5 * size)) as ahead:
        for boot in boots:
            ahead.add(boot)
        assert ahead.started == boots[:1] and ahead.waiting == boots[1:]   # one fits; the second would not
        ahead.release(boots[0])
        assert ahead.started == boots[1:2] and ahead.waiting == boots[2:]
        ahead.release(boots[2])                                            # not started: just dropped
        assert ahead.waiting == [] and ahead.held == size
    for boot, seed in zip(boots[:2], range(2)):                           # the numbers of a fresh draw
        assert np.array_equal(boot.joint.counts(50), _counts_mode(4000, seed).joint.counts(50))
    index_mode = Bootstrap.draw(500, 50, 0)
    assert index_mode.counts_bytes == 0
    with CountsAhead(budget=1) as ahead:
        ahead.add(index_mode)                                              # nothing to draw
        assert ahead.started == [] and ahead.waiting == []


def test_a_draw_waits_for_the_one_in_progress(monkeypatch):
    """Two threads asking for the same counts at once draw them once, and both get that draw."""
    monkeypatch.setattr(B, "LARGE_N", 1000)
    boot = _counts_mode(4000, 9)
    calls = []
    real = B._Joint._draw_counts

    def slow(self, b):
        calls.append(1)
        return real(self, b)

    monkeypatch.setattr(B._Joint, "_draw_counts", slow)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: boot.joint.counts(50), range(8)))
    assert all(g is got[0] for g in got)
    assert np.array_equal(got[0], _counts_mode(4000, 9).joint.counts(50))
    assert len(calls) <= 8 and boot.joint.__dict__["_counts"] is got[0]


# ------------------------------------------------------------------ the judgment cache written later
def test_saves_on_a_saving_thread_store_what_saves_in_place_store():
    from registry.adapters.store.judgment_segments import FANOUT, JudgmentLookup

    rng = np.random.default_rng(3)
    pool = _hashes(rng, 900, shared=5)
    tables = [_judgments([pool[i] for i in rng.integers(0, 900, 60)], f"L{k}") for k in range(2 * FANOUT + 3)]
    now, later = _Memory(), _Memory()
    in_place, deferred = JudgmentLookup(now.backend), JudgmentLookup(later.backend)
    query = pa.array(pool, pa.binary(16))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="judgment-save") as saver:
        for k, table in enumerate(tables):
            in_place.save(table)
            deferred.save_later(table, saver)
            if k % 5 == 4:   # a lookup between saves sees every judgment saved before it
                assert _found(deferred, query) == _found(in_place, query)
        deferred.wait()
    assert later.writes == now.writes          # the same segments written and merged (their ids are new ones)
    assert sorted(later.db.values()) == sorted(now.db.values())
    assert _found(JudgmentLookup(later.backend), query) == _found(in_place, query)


def _found(lookup, query) -> list:
    found, got = lookup.find(query)
    return [v if f else None for v, f in zip(got.column("verdict").to_pylist(), found)]


def test_a_failed_save_later_is_raised_to_the_caller():
    from registry.adapters.store.judgment_segments import JudgmentLookup

    mem = _Memory()

    def broken(add, delete):
        raise OSError("disk full")

    mem.backend.write = broken
    lookup = JudgmentLookup(mem.backend)
    rng = np.random.default_rng(1)
    with ThreadPoolExecutor(max_workers=1) as saver:
        lookup.save_later(_judgments(_hashes(rng, 10), "A"), saver)
        with pytest.raises(OSError, match="disk full"):
            lookup.find(pa.array(_hashes(rng, 3), pa.binary(16)))
        lookup.save_later(_judgments(_hashes(rng, 10), "A"), saver)
        with pytest.raises(OSError, match="disk full"):
            lookup.wait()
    lookup.wait()   # nothing pending any more


def test_a_store_tells_whether_a_unit_of_work_is_open(registry):
    store = registry.store
    assert not store.in_unit_of_work()
    with store.unit_of_work():
        assert store.in_unit_of_work()
        seen = []
        t = threading.Thread(target=lambda: seen.append(store.in_unit_of_work()))
        t.start()
        t.join()
        assert seen == [False]   # per thread
    assert not store.in_unit_of_work()
