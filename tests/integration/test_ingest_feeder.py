"""COPY ingestion, the feeder and cancel on real Postgres and Redis."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

import pytest
from celery import Celery
from sqlalchemy import func, select

from tests.conftest import Services
from tierroute.domain.errors import InvalidInput
from tierroute.domain.status import JobStatus
from tierroute.pipeline.feeder import Feeder
from tierroute.runtime import get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.ingest import copy_batch, ndjson_specs
from tierroute.store.jobs import batch_view, cancel_batch, claim_for_enqueue
from tierroute.store.models import Batch, Job
from worker.feeder import CeleryOutlet

pytestmark = pytest.mark.integration


@pytest.fixture
def db(clean_db: Services) -> Services:
    get_runtime()  # initialises the engine for session_scope
    return clean_db


def ingest(lines: Sequence[bytes]) -> tuple[uuid.UUID, int]:
    with session_scope() as session:
        return copy_batch(session, ndjson_specs(lines), default_max_tokens=300)


def test_copy_keeps_every_field_exactly(db: Services) -> None:
    tricky = 'tab\there, newline\nthere, backslash \\\\ and "quotes" and ünïcode'
    second_job = {
        "prompt": "p2",
        "system": "be brief",
        "max_tokens": 77,
        "force_tier": 3,
        "metadata": {"k": [1, "\\N"]},
        "thinking": {"effort": "low"},
    }
    lines = [json.dumps({"prompt": tricky}).encode(), json.dumps(second_job).encode()]
    batch_id, count = ingest(lines)
    assert count == 2
    with session_scope() as session:
        jobs = session.scalars(
            select(Job).where(Job.batch_id == batch_id).order_by(Job.prompt)
        ).all()
        assert session.get(Batch, batch_id).job_count == 2  # type: ignore[union-attr]
    second, first = jobs  # "p2" sorts before "tab…"
    assert first.prompt == tricky and first.max_tokens == 300 and first.system is None
    assert first.metadata_ is None and first.force_tier is None
    assert (second.system, second.max_tokens, second.force_tier) == ("be brief", 77, "opus")
    assert second.metadata_ == {"k": [1, "\\N"]}
    assert second.thinking_override == {"effort": "low"}
    assert all(j.status == JobStatus.QUEUED and j.enqueued_at is None for j in jobs)


def test_a_bad_line_leaves_nothing_behind(db: Services) -> None:
    lines = [b'{"prompt": "fine %d"}' % n for n in range(500)] + [b'{"prompt": ""}']
    with pytest.raises(InvalidInput, match="line 501: prompt"):
        ingest(lines)
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
        assert session.scalar(select(func.count()).select_from(Batch)) == 0


def test_feeder_sends_each_job_once_and_respects_the_depth(db: Services) -> None:
    batch_id, _ = ingest([b'{"prompt": "p%d"}' % n for n in range(25)])
    sent: list[uuid.UUID] = []
    depth = {"now": 0}

    def send(ids: Sequence[uuid.UUID]) -> None:
        sent.extend(ids)
        depth["now"] += len(ids)

    feeder = Feeder(send_many=send, queue_depth=lambda: depth["now"], max_depth=10, chunk=4)
    assert feeder.feed_once() == 4
    assert feeder.feed_once() == 4
    assert feeder.feed_once() == 2  # only room for 10
    assert feeder.feed_once() == 0
    depth["now"] = 0  # the workers drained the queue
    while feeder.feed_once():
        depth["now"] = 0
    assert len(sent) == 25 and len(set(sent)) == 25
    with session_scope() as session:
        unsent = session.scalar(
            select(func.count()).where(Job.batch_id == batch_id, Job.enqueued_at.is_(None))
        )
    assert unsent == 0


def test_a_failed_send_leaves_the_jobs_for_the_next_round(db: Services) -> None:
    ingest([b'{"prompt": "p%d"}' % n for n in range(3)])

    def broken(ids: Sequence[uuid.UUID]) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        Feeder(send_many=broken, queue_depth=lambda: 0).feed_once()
    sent: list[uuid.UUID] = []
    assert Feeder(send_many=sent.extend, queue_depth=lambda: 0).feed_once() == 3


def test_feeder_publishes_to_the_real_classify_queue(db: Services) -> None:
    ingest([b'{"prompt": "p%d"}' % n for n in range(7)])
    app = Celery(broker=db.broker_url)
    outlet = CeleryOutlet(app)
    before = outlet.queue_depth()
    assert Feeder(send_many=outlet.send_many, queue_depth=outlet.queue_depth).feed_once() == 7
    assert outlet.queue_depth() == before + 7
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("classify")
    app.close()


def test_with_chunks_each_message_carries_up_to_n_job_ids(db: Services) -> None:
    _, count = ingest([b'{"prompt": "p%d"}' % n for n in range(12)])
    app = Celery(broker=db.broker_url)
    outlet = CeleryOutlet(app, ids_per_message=5)
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("classify")
    assert Feeder(send_many=outlet.send_many, queue_depth=outlet.queue_depth).feed_once() == 12
    bodies = []
    with app.connection_for_read() as conn:
        queue = conn.SimpleQueue("classify", no_ack=True)
        for _ in range(3):
            message = queue.get(timeout=5)
            bodies.append((message.headers["task"], message.payload[0][0]))
        queue.close()
    assert [task for task, _ in bodies] == ["tierroute.classify_many"] * 3
    ids = [job_id for _, chunk in bodies for job_id in chunk]
    assert sorted(len(chunk) for _, chunk in bodies) == [2, 5, 5]
    with session_scope() as session:
        stored = {str(i) for i in session.scalars(select(Job.id))}
    assert len(ids) == count == 12 and set(ids) == stored
    app.close()


def test_the_api_and_the_feeder_never_both_send_a_job(db: Services) -> None:
    batch_id, _ = ingest([b'{"prompt": "only one sender"}'])
    with session_scope() as session:
        job_id = session.scalars(select(Job.id).where(Job.batch_id == batch_id)).one()
        assert claim_for_enqueue(session, job_id) is True
    with session_scope() as session:
        assert claim_for_enqueue(session, job_id) is False
    sent: list[uuid.UUID] = []
    assert Feeder(send_many=sent.extend, queue_depth=lambda: 0).feed_once() == 0


def test_cancel_stops_jobs_that_have_not_started(db: Services) -> None:
    batch_id, _ = ingest([b'{"prompt": "p%d"}' % n for n in range(4)])
    with session_scope() as session:
        jobs = session.scalars(select(Job).where(Job.batch_id == batch_id).order_by(Job.id)).all()
        jobs[0].status = JobStatus.RUNNING  # already calling the model: left alone
        jobs[0].tier = "haiku"
        jobs[1].status, jobs[1].tier = JobStatus.ROUTED, "opus"  # waiting for its tier worker
    with session_scope() as session:
        assert cancel_batch(session, batch_id) == 3
    with session_scope() as session:
        view = batch_view(session, batch_id)
    assert view["counts"]["cancelled"] == 3 and view["counts"]["running"] == 1
    rt = get_runtime()
    from tests.steps import complete_job
    from tierroute.pipeline.steps import classify_job

    assert classify_job(rt, jobs[2].id) is None  # a cancelled job is never classified
    assert complete_job(rt, jobs[1].id) is None  # nor called
