"""Registry events: on when a Prefect API is configured (or AUTORATER_EVENTS says so), sent after
the commit and only for something new, never fatal."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from registry import events
from registry.services import datasets as svc
from registry.services.evaluators import create_evaluator, register_checkpoint
from tests.flows.helpers import DATA


def test_switch(monkeypatch):
    monkeypatch.setenv("AUTORATER_EVENTS", "0")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert not events.enabled() and events.emit("autorater.test", "autorater.test.x", {}) is False
    monkeypatch.setenv("AUTORATER_EVENTS", "1")
    assert events.enabled()
    monkeypatch.delenv("AUTORATER_EVENTS")
    assert events.enabled()  # a configured API turns them on


def _received(names: set[str], expected: int, timeout: float = 60) -> list:
    from prefect import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()
    flt = EventFilter(event=EventNameFilter(name=sorted(names)),
                      occurred=EventOccurredFilter(since=datetime.now(UTC) - timedelta(hours=1)))
    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            found = client.read_events(filter=flt, limit=50).events
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


@pytest.mark.slow
def test_new_versions_and_checkpoints_emit_one_event_each(flow_sqlite_registry, data_root):
    reg = flow_sqlite_registry
    source, path = DATA["llmbar-adversarial-manual"]
    first = svc.register_dataset_version(reg, name="ev-manual", source=source, path=data_root / path)
    again = svc.register_dataset_version(reg, name="ev-manual", source=source, path=data_root / path)
    assert first.created and not again.created
    ckpt, created = register_checkpoint(reg, "ev-longer", kind="longer")
    register_checkpoint(reg, "ev-longer", kind="longer")  # the same content: no new checkpoint, no event
    create_evaluator(reg, checkpoint=ckpt.ref, protocol="score-both-orders", name="ev-longer")
    names = {events.DATASET_VERSION_REGISTERED, events.CHECKPOINT_REGISTERED, events.EVALUATOR_CREATED}
    got = [e for e in _received(names, 3) if e.resource.id.startswith(
        ("autorater.dataset-version.ev-", "autorater.checkpoint.ev-", "autorater.evaluator.ev-"))]
    by_name = {e.event: e for e in got}
    assert sorted(e.event for e in got) == sorted(names)  # exactly one each
    version = by_name[events.DATASET_VERSION_REGISTERED]
    assert version.resource.id == "autorater.dataset-version.ev-manual@1"
    assert version.payload == {"dataset": "ev-manual", "version": 1, "ref": "ev-manual@1",
                               "version_id": version.payload["version_id"], "task_type": "pairwise",
                               "content_hash": first.version.content_hash}
    assert by_name[events.CHECKPOINT_REGISTERED].payload["ref"] == "ev-longer@1"
    assert by_name[events.EVALUATOR_CREATED].payload["evaluator"] == "ev-longer"
