"""The consumer watch on a real Celery worker and Redis: a consumer that stopped reading
its queue (as kombu's reconnect races leave one) is reconnected and reads again."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from celery import Celery
from celery.contrib.testing.worker import start_worker
from kombu.asynchronous import set_event_loop

from tests.conftest import Services
from worker.consumer_watch import ConsumerWatch, StallDetector, start_consumer_watch
from worker.redis_transport import TRANSPORT

pytestmark = pytest.mark.integration


@pytest.fixture
def worker_app(env: Services) -> Iterator[tuple[Celery, str, list[int]]]:
    """An app of its own on the test Redis: one task, on a queue of its own."""
    queue = f"tierroute-test-watch-{uuid.uuid4().hex[:8]}"
    app = Celery("consumer-watch-test", broker=env.broker_url, set_as_current=False)
    app.conf.update(
        broker_transport=TRANSPORT,
        task_default_queue=queue,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
    )
    done: list[int] = []

    @app.task(name=queue)  # a name of its own, too: Celery's task registry is shared
    def record(n: int) -> None:
        done.append(n)

    yield app, queue, done
    redis.Redis.from_url(env.broker_url).delete(queue)
    set_event_loop(None)  # the worker's hub is process-wide; leave none behind


def wait_until(condition: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def threads_worker(app: Celery) -> Any:
    """A real Celery worker in this process: four threads, Redis, Celery's event loop."""
    return start_worker(
        app, pool="threads", concurrency=4, perform_ping_check=False, shutdown_timeout=10
    )


@contextmanager
def watching(
    consumer: Any, client: redis.Redis, queue: str, interval_s: float
) -> Iterator[ConsumerWatch]:
    """The consumer watch on `consumer`, with a 1 s stall window, while the block runs."""
    watch = ConsumerWatch(
        consumer=consumer,
        client=client,
        queues=frozenset({queue}),
        concurrency=4,
        detector=StallDetector(stall_s=1.0),
        interval_s=interval_s,
    )
    stop = start_consumer_watch(watch)
    try:
        yield watch
    finally:
        stop.set()


def test_a_consumer_that_stopped_reading_is_reconnected_and_reads_again(
    env: Services, worker_app: tuple[Celery, str, list[int]]
) -> None:
    app, queue, done = worker_app
    client = redis.Redis.from_url(env.broker_url)
    with threads_worker(app) as worker:
        consumer = worker.consumer
        assert consumer.hub is not None  # the Redis transport runs on Celery's event loop
        app.send_task(queue, args=[0], queue=queue)
        assert wait_until(lambda: done == [0], 10), "the worker never consumed"

        # Wedge it as kombu#2492 did: the event loop no longer re-arms the queue read.
        consumer.hub.on_tick.clear()
        for n in range(1, 4):
            app.send_task(queue, args=[n], queue=queue)
        time.sleep(3.0)
        assert client.llen(queue) >= 2, f"the wedge did not hold: {done}"

        with watching(consumer, client, queue, interval_s=0.25) as watch:
            assert wait_until(lambda: sorted(set(done)) == [0, 1, 2, 3], 30), (
                f"still stuck: done {done}, waiting {client.llen(queue)}, restarts {watch.restarts}"
            )
        assert watch.restarts >= 1


def test_a_healthy_busy_consumer_is_left_alone(
    env: Services, worker_app: tuple[Celery, str, list[int]]
) -> None:
    app, queue, done = worker_app
    client = redis.Redis.from_url(env.broker_url)
    with (
        threads_worker(app) as worker,
        watching(worker.consumer, client, queue, interval_s=0.1) as watch,
    ):
        for n in range(400):  # about 2 s of steady work, with the watch looking every 0.1 s
            app.send_task(queue, args=[n], queue=queue)
            time.sleep(0.005)
        assert wait_until(lambda: len(set(done)) == 400, 30), len(set(done))
    assert watch.restarts == 0
