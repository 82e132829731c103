"""Routed jobs that lost their message get it again once, after the visibility timeout."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.conftest import Services
from tierroute.domain.specs import JobSpec
from tierroute.pipeline.recovery import StaleRouteWatch
from tierroute.runtime import get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.jobs import create_job

pytestmark = pytest.mark.integration


def routed_job(services: Services, routed_s_ago: float, extra: str = "") -> uuid.UUID:
    get_runtime()
    with session_scope() as session:
        job, _ = create_job(session, JobSpec(prompt="hi"), default_max_tokens=64)
        job_id = job.id
    url = services.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE jobs SET status = 'routed', tier = 'haiku', classified_at = now() "
            f"- make_interval(secs => %s){extra} WHERE id = %s",
            (routed_s_ago, job_id),
        )
    return job_id


def test_only_old_unleased_routed_jobs_are_sent_again_and_once(clean_db: Services) -> None:
    lost = routed_job(clean_db, 120)
    fresh = routed_job(clean_db, 1)
    leased = routed_job(clean_db, 120, ", lease_expires_at = now() + interval '1 hour'")
    batch_mode = routed_job(clean_db, 120, ", batch_api = true")
    sent: list[tuple[uuid.UUID, str]] = []
    watch = StaleRouteWatch(sent.extend, after_s=60, interval_s=0)
    assert watch.check() == 1
    assert sent == [(lost, "haiku")]
    assert watch.check() == 0  # not again within after_s
    assert {fresh, leased, batch_mode}.isdisjoint(job_id for job_id, _ in sent)


def running_job(services: Services, lease_left: str) -> uuid.UUID:
    """A job a tier worker claimed, its lease ending `now() + lease_left`."""
    job_id = routed_job(services, 600)
    url = services.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE jobs SET status = 'running', "
            f"lease_expires_at = now() + interval '{lease_left}' WHERE id = %s",
            (job_id,),
        )
    return job_id


def test_a_running_job_whose_lease_ran_out_long_ago_is_sent_again(clean_db: Services) -> None:
    # Its task ended without finishing it, and no message is left to retry it.
    abandoned = running_job(clean_db, "-2 minutes")
    lately = running_job(clean_db, "-10 seconds")
    working = running_job(clean_db, "1 minute")
    sent: list[tuple[uuid.UUID, str]] = []
    assert StaleRouteWatch(sent.extend, after_s=60, interval_s=0).check() == 1
    assert sent == [(abandoned, "haiku")]
    assert {lately, working}.isdisjoint(job_id for job_id, _ in sent)


def test_a_job_released_for_a_retry_whose_message_never_went_is_sent_again(
    clean_db: Services,
) -> None:
    # A task releases the job (no lease) and publishes its retry; with the broker
    # down that publish fails, and nothing else would ever send the job again.
    url = clean_db.database_url.replace("postgresql+psycopg://", "postgresql://")
    stranded, retrying = running_job(clean_db, "1 minute"), running_job(clean_db, "1 minute")
    with psycopg.connect(url) as conn:
        for job_id, ago in ((stranded, "2 minutes"), (retrying, "10 seconds")):
            conn.execute(
                "UPDATE jobs SET lease_expires_at = NULL, "
                f"updated_at = now() - interval '{ago}' WHERE id = %s",
                (job_id,),
            )
    sent: list[tuple[uuid.UUID, str]] = []
    assert StaleRouteWatch(sent.extend, after_s=60, interval_s=0).check() == 1
    assert sent == [(stranded, "haiku")]
