"""Prometheus metrics for the API process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tierroute.models import Job, JobStatus

REQUESTS = Counter("tierroute_http_requests", "HTTP requests", ["method", "route", "status"])
JOBS = Gauge("tierroute_jobs", "Jobs by status", ["status"])


def refresh_job_gauges(session: Session) -> None:
    """Read job counts by status from Postgres, the source of truth."""
    counts = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
    for status in JobStatus:
        JOBS.labels(status=status.value).set(counts.get(status, 0))
