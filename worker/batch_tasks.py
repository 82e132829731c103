"""Batch mode's poller: a Celery beat schedule, run in every classify worker.

Each classify worker runs beat in a thread (Celery's own EmbeddedService with the
in-memory scheduler), which sends `tierroute.batch_api.poll` to the classify queue
every TIERROUTE_BATCH_API_POLL_S seconds. A beat schedule rather than a task that
re-schedules itself: a lost message (a Redis restart) cannot end the chain, and
worker restarts cannot multiply chains. A thread rather than `celery worker -B`:
no forked process that outlives a killed worker, no schedule file to keep. Several
classify workers mean several beats; the poll is idempotent and takes its rows with
FOR UPDATE SKIP LOCKED, so duplicate ticks only cost a few queries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Task
from celery.beat import EmbeddedService
from celery.signals import worker_ready, worker_shutdown
from sqlalchemy.orm import Session

from tierroute.config import get_settings
from tierroute.messages import BATCH_API_POLL as POLL
from tierroute.messages import CLASSIFY_QUEUE as QUEUE
from tierroute.messages import PARTITIONS_ENSURE
from tierroute.messages import RETENTION_PRUNE as PRUNE
from tierroute.messages import ROLLUP_COMPACT as COMPACT
from tierroute.messages import ROLLUP_FOLD as FOLD
from tierroute.pipeline.message_batches import poll_once
from tierroute.runtime import get_runtime
from tierroute.store.retry import DATABASE_ERRORS
from tierroute.store.rollups import FOLD_EVERY_S
from worker.celery_app import app

log = logging.getLogger(__name__)
_beat: Any = None
# Prunes and compactions are idempotent; a prune takes its rows with SKIP LOCKED.
RETENTION_EVERY_S = 3600.0


@app.task(name=POLL, bind=True, ignore_result=True)
def poll(self: Task) -> None:
    """Submit ready batches, poll Message Batches, map ended ones' results back."""
    try:
        poll_once(get_runtime())
    except DATABASE_ERRORS as exc:
        log.warning("batch poll: database unavailable (%s); the next tick tries again", exc)


@app.task(name=PRUNE, bind=True, ignore_result=True)
def prune(self: Task) -> None:
    """Archive and delete finished jobs older than TIERROUTE_RETENTION_DAYS (if set)."""
    from tierroute.store.engine import session_scope
    from tierroute.store.retention import prune as prune_rows

    settings = get_runtime().settings
    if settings.retention_days is None:
        return
    cutoff = datetime.now(UTC) - timedelta(days=settings.retention_days)
    try:
        done = prune_rows(session_scope, cutoff, archive_dir=settings.retention_archive_dir)
    except DATABASE_ERRORS as exc:
        log.warning("retention: database unavailable (%s); the next tick tries again", exc)
        return
    log.info("retention: pruned %d jobs and %d calls older than %s", done.jobs, done.calls, cutoff)


def _upkeep(what: str, action: Callable[[Session], object]) -> None:
    """Run one upkeep statement (rollups, partitions); a database outage waits for the next tick."""
    from tierroute.store.engine import session_scope

    get_runtime()
    try:
        with session_scope() as session:
            action(session)
    except DATABASE_ERRORS as exc:
        log.warning("%s: database unavailable (%s); next tick", what, exc)


@app.task(name=COMPACT, bind=True, ignore_result=True)
def compact(self: Task) -> None:
    """Fold rollup hours older than two days into one row per day (migration 0013)."""
    from tierroute.store import rollups

    _upkeep("rollup compaction", rollups.compact)


@app.task(name=FOLD, bind=True, ignore_result=True)
def fold(self: Task) -> None:
    """Add what writers listed in rollup_pending to the rollups (migration 0016)."""
    from tierroute.store import rollups

    _upkeep("rollup fold", rollups.fold)


@app.task(name=PARTITIONS_ENSURE, bind=True, ignore_result=True)
def ensure_partitions(self: Task) -> None:
    """Create the coming months' partitions of the call and decision tables (0017)."""
    from tierroute.store import partitions

    _upkeep("partitions", partitions.ensure)


def beat_schedule(poll_s: float, retention_days: float | None = None) -> dict[str, Any]:
    """The schedule, on the classify queue: one poll every `poll_s` seconds, a rollup
    fold every few seconds, one rollup compaction and one partition check an hour,
    and with retention on, one prune an hour."""

    schedule: dict[str, Any] = {
        "tierroute-batch-api-poll": {
            "task": POLL,
            "schedule": poll_s,
            # A tick queued behind a long classify backlog is dropped once a newer one
            # is due anyway; never sooner than a minute, so ticks are not all lost.
            "options": {"queue": QUEUE, "expires": max(60.0, 10 * poll_s)},
        },
        "tierroute-rollup-fold": {
            "task": FOLD,
            "schedule": FOLD_EVERY_S,
            # Readers fold for themselves: a tick stuck behind a backlog can go.
            "options": {"queue": QUEUE, "expires": 2 * FOLD_EVERY_S},
        },
        "tierroute-rollup-compact": {
            "task": COMPACT,
            "schedule": RETENTION_EVERY_S,
            "options": {"queue": QUEUE, "expires": RETENTION_EVERY_S},
        },
        "tierroute-partitions-ensure": {
            "task": PARTITIONS_ENSURE,
            "schedule": RETENTION_EVERY_S,
            "options": {"queue": QUEUE, "expires": RETENTION_EVERY_S},
        },
    }
    if retention_days is not None:
        schedule["tierroute-retention-prune"] = {
            "task": PRUNE,
            "schedule": RETENTION_EVERY_S,
            "options": {"queue": QUEUE, "expires": RETENTION_EVERY_S},
        }
    return schedule


def _consumes_classify(consumer: Any) -> bool:
    task_consumer = getattr(consumer, "task_consumer", None)
    return QUEUE in {queue.name for queue in getattr(task_consumer, "queues", [])}


@worker_ready.connect
def _start_beat(sender: Any = None, **_: Any) -> None:
    global _beat
    if not _consumes_classify(sender) or _beat is not None:
        return
    settings = get_settings()
    app.conf.beat_schedule = beat_schedule(settings.batch_api_poll_s, settings.retention_days)
    _beat = EmbeddedService(app, thread=True, scheduler_cls="celery.beat:Scheduler")
    _beat.start()
    log.info("batch poll beat running in this classify worker")


@worker_shutdown.connect
def _stop_beat(**_: Any) -> None:
    global _beat
    if _beat is not None:
        _beat.stop()
        _beat = None
