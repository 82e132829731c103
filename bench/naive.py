"""The naive submit path the issue compares against: one ORM insert, commit, send per row."""

from __future__ import annotations

import time
import uuid

from celery import Celery
from sqlalchemy.orm import Session

from bench.workload import prompt
from tierroute.domain.status import JobStatus
from tierroute.store.engine import make_engine
from tierroute.store.models import Job

CLASSIFY_TASK = "tierroute.classify"
CLASSIFY_QUEUE = "classify"


def run_naive(database_url: str, broker_url: str, count: int) -> float:
    """Insert and enqueue `count` jobs the naive way; returns the seconds it took."""
    engine = make_engine(database_url, pool_size=1)
    celery = Celery("bench-naive", broker=broker_url)
    try:
        with Session(engine) as session:
            # Connect to Postgres before the clock starts, as a running service would be.
            session.connection()
            started = time.perf_counter()
            for i in range(count):
                # The id is chosen here, so reading it after commit costs no extra SELECT.
                job_id = uuid.uuid4()
                session.add(
                    Job(
                        id=job_id,
                        status=JobStatus.QUEUED,
                        prompt=prompt(i, "naive"),
                        max_tokens=512,
                    )
                )
                session.commit()
                celery.send_task(CLASSIFY_TASK, args=[str(job_id)], queue=CLASSIFY_QUEUE)
            return time.perf_counter() - started
    finally:
        celery.close()
        engine.dispose()
