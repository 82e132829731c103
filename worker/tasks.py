"""Thin tasks: take a job id, call the core, hand the job on or retry."""

from __future__ import annotations

import logging
import uuid

from celery import Task

from tierroute.messages import CLASSIFY, CLASSIFY_MANY, COMPLETE, COMPLETE_MANY, SHADOW
from tierroute.pipeline.classify_chunk import classify_batch
from tierroute.pipeline.shadow import chosen, shadow_job
from tierroute.pipeline.steps import RetryLater, classify_job
from tierroute.runtime import Runtime, get_runtime
from tierroute.store.retry import DATABASE_ERRORS, database_wait_s
from worker.call_loop import call_loop
from worker.celery_app import app

log = logging.getLogger(__name__)


def _database_retry(task: Task, exc: Exception) -> Exception:
    countdown = database_wait_s()
    log.warning("%s: database unavailable (%s); retrying in %.1fs", task.name, exc, countdown)
    return task.retry(countdown=countdown, max_retries=None)


@app.task(name=CLASSIFY, bind=True, max_retries=None)
def classify(self: Task, job_id: str) -> None:
    """Route a job, then enqueue its completion on its tier's queue."""
    try:
        tier = classify_job(get_runtime(), uuid.UUID(job_id))
    except DATABASE_ERRORS as exc:
        raise _database_retry(self, exc) from exc
    if isinstance(tier, RetryLater):  # rate limited, or another worker holds the job
        raise self.retry(countdown=tier.delay_s, max_retries=None)
    if tier is not None:
        complete.apply_async(args=[job_id], queue=tier)


@app.task(name=CLASSIFY_MANY, bind=True, max_retries=None)
def classify_many(self: Task, job_ids: list[str]) -> None:
    """Route a chunk of jobs (the feeder's messages), then enqueue each on its tier's queue."""
    try:
        routing = classify_batch(get_runtime(), [uuid.UUID(job_id) for job_id in job_ids])
    except DATABASE_ERRORS as exc:
        raise _database_retry(self, exc) from exc
    hand_on = tier_messages(routing.hand_on, get_runtime().settings.complete_batch_size)
    messages = len(hand_on) + len(routing.on_their_own)
    # One pipelined round trip to Redis for the chunk's messages (kombu's batch).
    with app.producer_or_acquire() as producer, producer.batch(max_size=max(messages, 1)):
        for tier, ids in hand_on:
            if len(ids) == 1:
                complete.apply_async(args=[ids[0]], queue=tier, producer=producer)
            else:
                complete_many.apply_async(args=[ids, tier], queue=tier, producer=producer)
        for job_id, delay_s in routing.on_their_own:
            classify.apply_async(args=[str(job_id)], countdown=delay_s or None, producer=producer)


@app.task(name=COMPLETE, bind=True, max_retries=None)
def complete(self: Task, job_id: str) -> None:
    """Answer a job on its tier; transient API errors retry after the server's delay."""
    runtime = get_runtime()
    [delay_s] = call_loop(runtime).run_jobs(runtime, [job_id])
    if delay_s is not None:  # held, rate limited, failed transiently, or no database
        raise self.retry(countdown=delay_s, max_retries=None)
    _judge_later(runtime, [job_id], self.request.delivery_info)


@app.task(name=COMPLETE_MANY, bind=True, max_retries=None)
def complete_many(self: Task, job_ids: list[str], queue: str) -> None:
    """Answer a chunk of one tier's jobs side by side; a job that must wait retries on its own.

    Acknowledged (acks_late) once every job of the chunk is done or handed on, so a
    worker that dies mid-chunk leaves the whole message to be redelivered; claims
    skip the jobs it finished.
    """
    runtime = get_runtime()
    delays = call_loop(runtime).run_jobs(runtime, job_ids)
    for job_id, delay_s in zip(job_ids, delays, strict=True):
        if delay_s is not None:  # held, rate limited or failed transiently: rare
            complete.apply_async(args=[job_id], queue=queue, countdown=delay_s)
    done = [j for j, d in zip(job_ids, delays, strict=True) if d is None]
    _judge_later(runtime, done, {"routing_key": queue})


@app.task(name=SHADOW, bind=True, max_retries=None)
def shadow(self: Task, job_id: str) -> None:
    """Judge a finished job against its neighbouring tier (tierroute/pipeline/shadow.py)."""
    try:
        outcome = shadow_job(get_runtime(), uuid.UUID(job_id))
    except DATABASE_ERRORS as exc:
        raise _database_retry(self, exc) from exc
    if isinstance(outcome, RetryLater):  # the rate limiter said wait; nothing was billed
        raise self.retry(countdown=outcome.delay_s, max_retries=None)


def _judge_later(runtime: Runtime, job_ids: list[str], delivery: dict[str, object] | None) -> None:
    # Chosen jobs are judged by a task of their own on the same tier queue, so the
    # learning never holds up an answer; a job that did not succeed is skipped there.
    rate = runtime.settings.shadow_rate
    queue = str((delivery or {}).get("routing_key") or "") or None
    for job_id in job_ids:
        if chosen(job_id, rate):
            shadow.apply_async(args=[job_id], queue=queue)


def tier_messages(
    hand_on: list[tuple[uuid.UUID, str]], per_message: int
) -> list[tuple[str, list[str]]]:
    """Group routed jobs into (tier queue, job ids) messages of at most `per_message` jobs."""
    by_tier: dict[str, list[str]] = {}
    for job_id, tier in hand_on:
        by_tier.setdefault(tier, []).append(str(job_id))
    return [
        (tier, ids[start : start + per_message])
        for tier, ids in by_tier.items()
        for start in range(0, len(ids), per_message)
    ]
