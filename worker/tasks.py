"""Thin tasks: take a job id, call the core, hand the job on or retry."""

from __future__ import annotations

import uuid

from celery import Task

from tierroute.pipeline import RetryLater, classify_job, complete_job
from tierroute.runtime import get_runtime
from worker.celery_app import app

CLASSIFY = "tierroute.classify"
COMPLETE = "tierroute.complete"


@app.task(name=CLASSIFY, bind=True, max_retries=None)
def classify(self: Task, job_id: str) -> None:
    """Route a job, then enqueue its completion on its tier's queue."""
    tier = classify_job(get_runtime(), uuid.UUID(job_id))
    if isinstance(tier, RetryLater):  # the shared rate limiter held the classifier back
        raise self.retry(countdown=tier.delay_s, max_retries=None)
    if tier is not None:
        complete.apply_async(args=[job_id], queue=tier)


@app.task(name=COMPLETE, bind=True, max_retries=None)
def complete(self: Task, job_id: str) -> None:
    """Answer a job on its tier; transient API errors retry after the server's delay."""
    retry = complete_job(get_runtime(), uuid.UUID(job_id))
    if retry is not None:
        # Attempts are counted and capped in Postgres, not by Celery.
        raise self.retry(countdown=retry.delay_s, max_retries=None)
