"""The Celery app: queues, delivery guarantees, and per-process lifecycle hooks."""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any

from celery import Celery
from celery.signals import (
    celeryd_init,
    worker_process_init,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)
from kombu import Queue

from tierroute.config import default_tier_table, get_settings
from tierroute.domain.errors import ConfigurationError
from tierroute.messages import CLASSIFY, CLASSIFY_MANY, CLASSIFY_QUEUE, all_queues
from tierroute.runtime import get_runtime, reset_runtime
from worker.redis_transport import TRANSPORT as REDIS_TRANSPORT

# Declared at import, before Settings are read: the tier table in force then
# (`TIERROUTE_TIERS_FILE` included) names the tier queues.
QUEUES = all_queues(default_tier_table())

log = logging.getLogger(__name__)


def _broker_url() -> str:
    url = get_settings().broker_url
    if not url:
        raise ConfigurationError(
            "TIERROUTE_BROKER_URL is not set; start the stack with `tierroute up`, "
            "or point it at Redis (redis://127.0.0.1:6379/0)"
        )
    return url


UNACKED_MUTEX_EXPIRE_S = 10


def broker_transport(broker_url: str) -> str | None:
    """Plain Redis: kombu's transport minus a client built per message (worker/redis_transport.py).

    Other URLs (rediss://, unix://, amqp://) keep kombu's choice by scheme.
    """
    return REDIS_TRANSPORT if broker_url.startswith("redis://") else None


def transport_options(visibility_timeout_s: float, broker_is_redis: bool) -> dict[str, Any]:
    """Broker transport options: Redis's redelivery of messages a dead worker held."""
    if not broker_is_redis:
        return {}  # RabbitMQ redelivers a dead consumer's messages at once
    return {
        # Settings checks that it outlasts every lease and retry countdown.
        "visibility_timeout": visibility_timeout_s,
        # kombu looks for messages past their visibility timeout only every interval ×
        # throttle seconds (10 × 10 by default); a scan is one cheap ZRANGE, so scan
        # every few seconds and a killed worker's messages come back soon after it.
        "unacked_restore_interval": max(1.0, min(10.0, visibility_timeout_s / 20)),
        "unacked_restore_throttle": 1,
        # A scan holds a mutex key in Redis; a worker killed mid-scan leaves it for
        # its expiry (kombu's default: 300 s), and until then no worker restores
        # anything. A scan takes milliseconds, so a short expiry is safe.
        "unacked_mutex_expire": UNACKED_MUTEX_EXPIRE_S,
    }


app = Celery("tierroute")
# Read lazily, when Celery first needs its configuration (worker start, first send),
# so importing this module needs no environment.
app.add_defaults(
    lambda: {
        "broker_url": _broker_url(),
        "broker_transport_options": transport_options(
            get_settings().visibility_timeout_s, get_settings().broker_is_redis
        ),
    }
)
app.conf.update(
    task_queues=[Queue(name) for name in QUEUES],
    task_default_queue=CLASSIFY_QUEUE,
    task_routes={CLASSIFY: {"queue": CLASSIFY_QUEUE}, CLASSIFY_MANY: {"queue": CLASSIFY_QUEUE}},
    task_ignore_result=True,  # results live in Postgres; no result backend
    task_acks_late=True,  # a worker that dies mid-task leaves the message for another
    task_reject_on_worker_lost=True,
    # A worker reserves one message per thread: enough to keep every thread busy,
    # few enough that reserved messages never wait near the visibility timeout.
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    # Task events cost several Redis publishes per task. Flower switches them on in
    # the workers when it starts (its enable_events), so they cost only while watched.
    worker_send_task_events=False,
    task_send_sent_event=False,
    worker_hijack_root_logger=False,
)


_feeder_stop: threading.Event | None = None
_watch_stop: threading.Event | None = None


@celeryd_init.connect
def _worker_transport(**_: Any) -> None:
    # Workers only, before they connect: Flower reads queue lengths by the URL's
    # scheme and knows only kombu's own transport names.
    transport = broker_transport(_broker_url())
    if transport is not None:
        app.conf.broker_transport = transport


def _consumed_queues(consumer: Any) -> set[str]:
    task_consumer = getattr(consumer, "task_consumer", None)
    return {queue.name for queue in getattr(task_consumer, "queues", [])}


@worker_ready.connect
def _build_runtime(sender: Any = None, **_: Any) -> None:
    global _feeder_stop, _watch_stop
    queues = _consumed_queues(sender)
    role = "classify" if CLASSIFY_QUEUE in queues else "tiers"
    # Fail at startup, not on the first task, when settings or the DB are wrong.
    runtime = get_runtime(role=role)
    transport = type(getattr(getattr(sender, "connection", None), "transport", None))
    log.info("broker transport: %s.%s", transport.__module__, transport.__qualname__)
    settings = runtime.settings
    if not settings.log_each_task:
        # Celery logs "received" and "succeeded" for every task: at hundreds of tasks a
        # second that is most of the log and a measurable share of a worker's CPU.
        # Failures and retries still log; Flower shows every task.
        # The SDK's HTTP client logs each request at INFO too ("HTTP Request: POST …").
        for name in ("celery.app.trace", "celery.worker.strategy", "httpx", "httpx2"):
            logging.getLogger(name).setLevel(logging.WARNING)
    _tune_gc(role)
    if settings.broker_is_redis and getattr(sender, "hub", None) is not None:
        _watch_stop = _start_consumer_watch(sender, _broker_url())
    if CLASSIFY_QUEUE in queues and settings.feeder:
        from worker import feeder

        _feeder_stop = feeder.start(
            app,
            settings.feeder_max_depth,
            settings.feeder_chunk,
            redis_broker_url=settings.broker_url if settings.broker_is_redis else None,
            # A classifier that calls a model runs one job per message, concurrently.
            ids_per_message=settings.classify_batch_size if runtime.classifier.in_process else 1,
            stale_after_s=settings.stale_s,
        )
        log.info("feeder running in this classify worker")


# Allocations of container objects between young-generation collections (CPython's
# default: 700) in tier workers. See _tune_gc.
TIER_GC_YOUNG_THRESHOLD = 20_000


def _tune_gc(role: str) -> None:
    """Keep the cyclic garbage collector from walking objects that never become garbage.

    At high latency a tier worker holds hundreds of calls' objects alive at once, and
    every collection walks them, a real share of its CPU. Freezing the startup objects
    (modules, SDK and pydantic types, the runtime) takes those out of every walk, and
    a higher young-generation threshold makes the walks rarer.
    """
    gc.collect()
    gc.freeze()
    if role == "tiers":
        gc.set_threshold(TIER_GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _start_consumer_watch(consumer: Any, broker_url: str) -> threading.Event:
    """Reconnect this worker's consumer if it stops taking messages (worker/consumer_watch.py)."""
    import redis

    from worker.consumer_watch import ConsumerWatch, start_consumer_watch

    watch = ConsumerWatch(
        consumer=consumer,
        client=redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5),
        queues=frozenset(_consumed_queues(consumer)),
        concurrency=consumer.controller.concurrency,
    )
    return start_consumer_watch(watch)


@worker_shutting_down.connect
def _stop_consumer_watch(**_: Any) -> None:
    # A warm shutdown stops consuming and lets running tasks finish: not a stall.
    if _watch_stop is not None:
        _watch_stop.set()


@worker_shutdown.connect
def _stop_feeder(**_: Any) -> None:
    for stop in (_feeder_stop, _watch_stop):
        if stop is not None:
            stop.set()


@worker_process_init.connect
def _fresh_runtime_after_fork(**_: Any) -> None:
    # A prefork child must not reuse the parent's sockets (DB pool, HTTP client).
    reset_runtime()
    from worker import call_loop

    call_loop.forget()
