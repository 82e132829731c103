"""Jobs not yet routed whose classify message is gone get it again, once per stale time."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.conftest import Services
from tierroute.config import Settings
from tierroute.domain.specs import JobSpec
from tierroute.pipeline.recovery import StrandedJobWatch
from tierroute.runtime import get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.jobs import create_job

pytestmark = pytest.mark.integration


def job_in_state(services: Services, assignments: str) -> uuid.UUID:
    """A job, then `UPDATE jobs SET <assignments>` on it."""
    get_runtime()
    with session_scope() as session:
        job, _ = create_job(session, JobSpec(prompt="hi"), default_max_tokens=64)
        job_id = job.id
    url = services.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        conn.execute(f"UPDATE jobs SET {assignments} WHERE id = %s", (job_id,))
    return job_id


def enqueued_at_is_set(services: Services, job_id: uuid.UUID) -> bool:
    url = services.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT enqueued_at FROM jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    return row[0] is not None


def test_queued_jobs_sent_long_ago_go_back_to_the_feeder(clean_db: Services) -> None:
    lost = job_in_state(clean_db, "enqueued_at = now() - interval '2 minutes'")
    lately = job_in_state(clean_db, "enqueued_at = now() - interval '10 seconds'")
    sent: list[uuid.UUID] = []
    stranded = StrandedJobWatch(sent.extend, after_s=60, interval_s=0).check()
    assert stranded is not None and stranded.queued == 1
    assert not enqueued_at_is_set(clean_db, lost)  # the feeder sends it again
    assert enqueued_at_is_set(clean_db, lately)
    assert sent == []


def test_classifying_jobs_without_a_live_lease_are_sent_again_once(
    clean_db: Services,
) -> None:
    stale = "status = 'classifying', updated_at = now() - interval '2 minutes'"
    died = job_in_state(clean_db, f"{stale}, lease_expires_at = now() - interval '1 minute'")
    released = job_in_state(clean_db, f"{stale}, lease_expires_at = NULL")
    leased = job_in_state(clean_db, f"{stale}, lease_expires_at = now() + interval '1 minute'")
    # A re-driven job keeps its tier while it is classified again; its classifier died too.
    redriven = job_in_state(clean_db, f"{stale}, tier = 'haiku', lease_expires_at = NULL")
    routed = job_in_state(
        clean_db,
        "status = 'routed', tier = 'haiku', classified_at = now(), "
        "updated_at = now() - interval '2 minutes'",
    )
    lately = job_in_state(clean_db, "status = 'classifying', updated_at = now()")
    sent: list[uuid.UUID] = []
    watch = StrandedJobWatch(sent.extend, after_s=60, interval_s=0)
    stranded = watch.check()
    assert stranded is not None and stranded.classify == 3
    assert set(sent) == {died, released, redriven}
    assert {leased, routed, lately}.isdisjoint(sent)
    again = watch.check()
    assert again is not None and again.classify == 0  # not again within after_s


def test_a_stale_time_within_a_retry_countdown_is_refused() -> None:
    with pytest.raises(ValueError, match="stale_after_s"):
        Settings(stale_after_s=10, retry_backoff_max_s=20)
    assert Settings(stale_after_s=30, retry_backoff_max_s=20).stale_s == 30
    assert Settings(visibility_timeout_s=400).stale_s == 500
