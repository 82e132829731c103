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
from typing import Any

from celery import Task
from celery.beat import EmbeddedService
from celery.signals import worker_ready, worker_shutdown

from tierroute.config import get_settings
from tierroute.messages import BATCH_API_POLL as POLL
from tierroute.messages import CLASSIFY_QUEUE as QUEUE
from tierroute.pipeline.message_batches import poll_once
from tierroute.runtime import get_runtime
from tierroute.store.retry import DATABASE_ERRORS
from worker.celery_app import app

log = logging.getLogger(__name__)
_beat: Any = None


@app.task(name=POLL, bind=True, ignore_result=True)
def poll(self: Task) -> None:
    """Submit ready batches, poll Message Batches, map ended ones' results back."""
    try:
        poll_once(get_runtime())
    except DATABASE_ERRORS as exc:
        log.warning("batch poll: database unavailable (%s); the next tick tries again", exc)


def beat_schedule(poll_s: float) -> dict[str, Any]:
    """The schedule: one poll every `poll_s` seconds on the classify queue."""
    return {
        "tierroute-batch-api-poll": {
            "task": POLL,
            "schedule": poll_s,
            # A tick queued behind a long classify backlog is dropped once a newer one
            # is due anyway; never sooner than a minute, so ticks are not all lost.
            "options": {"queue": QUEUE, "expires": max(60.0, 10 * poll_s)},
        }
    }


def _consumes_classify(consumer: Any) -> bool:
    task_consumer = getattr(consumer, "task_consumer", None)
    return QUEUE in {queue.name for queue in getattr(task_consumer, "queues", [])}


@worker_ready.connect
def _start_beat(sender: Any = None, **_: Any) -> None:
    global _beat
    if not _consumes_classify(sender) or _beat is not None:
        return
    app.conf.beat_schedule = beat_schedule(get_settings().batch_api_poll_s)
    _beat = EmbeddedService(app, thread=True, scheduler_cls="celery.beat:Scheduler")
    _beat.start()
    log.info("batch poll beat running in this classify worker")


@worker_shutdown.connect
def _stop_beat(**_: Any) -> None:
    global _beat
    if _beat is not None:
        _beat.stop()
        _beat = None
