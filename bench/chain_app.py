"""The floor's Celery app: two trivial tasks chained, no database.

Started like the real workers, `celery -A bench.chain_app worker -Q bench.first ...`.
Its delivery settings are the pipeline's own (late acks, prefetch, no result
backend, events), read from worker/celery_app.py by the benchmark and passed in
BENCH_CHAIN_CONF, so the floor differs from the pipeline only by the tasks' work.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import redis
from celery import Celery
from kombu import Queue

BROKER_ENV = "BENCH_CHAIN_BROKER_URL"
CONF_ENV = "BENCH_CHAIN_CONF"
FIRST_QUEUE = "bench.first"
SECOND_QUEUE = "bench.second"
DONE_KEY = "bench:chain:done"
LAST_KEY = "bench:chain:last"


# Used only when BENCH_CHAIN_CONF is absent: the pipeline's settings when this was written.
DEFAULT_CONF: dict[str, Any] = {
    "task_ignore_result": True,
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "broker_transport_options": {"visibility_timeout": 3600},
    "worker_send_task_events": True,
    "task_send_sent_event": True,
    # The pipeline's Redis transport class (worker/redis_transport.py), when it has one.
    "broker_transport": None,
}


def make_app(broker_url: str, conf: dict[str, Any] | None = None) -> Celery:
    """A Celery app with the floor's settings; the benchmark uses one to send chains."""
    celery = Celery("bench-chain", broker=broker_url)
    celery.conf.update(
        task_queues=[Queue(FIRST_QUEUE), Queue(SECOND_QUEUE)],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        **(DEFAULT_CONF if conf is None else conf),
    )
    return celery


_conf_json = os.environ.get(CONF_ENV)
app = make_app(
    os.environ.get(BROKER_ENV, "redis://127.0.0.1:6379/0"),
    json.loads(_conf_json) if _conf_json else None,
)

_lock = threading.Lock()
_redis: redis.Redis | None = None


def _client() -> redis.Redis:
    # One pooled client per worker process, made on first use, not at import.
    global _redis
    with _lock:
        if _redis is None:
            _redis = redis.Redis.from_url(app.conf.broker_url)
        return _redis


@app.task(name="bench.first")
def first(i: int) -> int:
    """The first link: hands its argument on, as classify hands on a job id."""
    return i


@app.task(name="bench.second")
def second(i: int) -> None:
    """The last link: counts itself done and stamps the time (the floor's 'finished_at')."""
    client = _client()
    pipe = client.pipeline(transaction=False)
    pipe.incr(DONE_KEY)
    pipe.set(LAST_KEY, repr(time.time()))
    pipe.execute()
