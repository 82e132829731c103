"""The shared rate limiter's Lua buckets on real Redis (fakeredis has no Lua here)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis

from tests.conftest import Services, clear_rate_limits
from tierroute.llm.ratelimit import LIMITER_POOL_SIZE, ModelLimits, RateLimiter, limiter_pool

pytestmark = pytest.mark.integration

MODEL = "claude-test"


@pytest.fixture
def conn(services: Services) -> Iterator[redis.Redis]:
    clear_rate_limits(services.broker_url)
    client = redis.Redis.from_url(services.broker_url)
    yield client
    client.close()
    clear_rate_limits(services.broker_url)


def limiter(conn: redis.Redis, burst_s: float = 60.0, **limits: int) -> RateLimiter:
    return RateLimiter(conn, {MODEL: ModelLimits(**limits)}, burst_s=burst_s)


def test_rpm_admits_a_minutes_worth_then_waits_one_interval(conn: redis.Redis) -> None:
    rl = limiter(conn, rpm=6)
    assert [rl.acquire(MODEL, 10, 10).wait_s for _ in range(6)] == [0.0] * 6
    refused = rl.acquire(MODEL, 10, 10)
    assert 9.0 < refused.wait_s <= 10.2  # 61 s / 6 requests (PACING_PERIOD_S)
    assert "requests" in refused.reason


def test_default_burst_paces_requests_evenly(conn: redis.Redis) -> None:
    rl = RateLimiter(conn, {MODEL: ModelLimits(rpm=60)})
    assert rl.acquire(MODEL, 1, 1).wait_s == 0
    assert 0.5 < rl.acquire(MODEL, 1, 1).wait_s <= 1.02  # 61 s / 60 (PACING_PERIOD_S)


def test_input_tokens_per_minute(conn: redis.Redis) -> None:
    rl = limiter(conn, itpm=1200)
    assert rl.acquire(MODEL, 800, 0).wait_s == 0
    assert rl.acquire(MODEL, 400, 0).wait_s == 0
    refused = rl.acquire(MODEL, 200, 0)
    assert 9.0 < refused.wait_s <= 10.2 and "input tokens" in refused.reason


def test_max_tokens_is_charged_then_the_unused_part_refunded(conn: redis.Redis) -> None:
    rl = limiter(conn, otpm=1000)
    assert rl.acquire(MODEL, 10, 800).wait_s == 0
    refused = rl.acquire(MODEL, 10, 300)
    assert refused.wait_s > 0 and "output tokens" in refused.reason
    rl.refund(MODEL, 700)  # the call used 100 of its 800
    assert rl.acquire(MODEL, 10, 300).wait_s == 0


def test_an_input_underestimate_is_charged_afterwards(conn: redis.Redis) -> None:
    rl = limiter(conn, itpm=1000)
    assert rl.acquire(MODEL, 100, 0).wait_s == 0
    rl.adjust(MODEL, input_tokens=-800)  # the prompt was 900 tokens, not 100
    assert rl.acquire(MODEL, 200, 0).wait_s > 0


def test_a_request_larger_than_the_bucket_waits_for_a_full_one(conn: redis.Redis) -> None:
    rl = limiter(conn, burst_s=1.0, otpm=600)  # saves up 10 tokens at most
    assert rl.acquire(MODEL, 1, 100).wait_s == 0  # admitted when full, leaves debt
    assert rl.acquire(MODEL, 1, 100).wait_s >= 9.0  # the debt and a full bucket again


def test_a_refused_request_is_not_charged(conn: redis.Redis) -> None:
    rl = limiter(conn, rpm=100, otpm=1000)
    assert rl.acquire(MODEL, 1, 1000).wait_s == 0
    for _ in range(5):
        assert rl.acquire(MODEL, 1, 1000).wait_s > 0
    rl.refund(MODEL, 1000)
    assert rl.acquire(MODEL, 1, 1000).wait_s == 0


def test_unknown_models_and_zero_limits_are_unlimited(conn: redis.Redis) -> None:
    rl = limiter(conn)
    assert all(rl.acquire("other-model", 10**6, 10**6).wait_s == 0 for _ in range(50))
    assert all(rl.acquire(MODEL, 10**6, 10**6).wait_s == 0 for _ in range(50))


def test_a_cooldown_pauses_the_model_for_every_process(services: Services) -> None:
    clear_rate_limits(services.broker_url)
    first, second = (redis.Redis.from_url(services.broker_url) for _ in range(2))
    a, b = limiter(first, rpm=1000), limiter(second, rpm=1000)
    a.cooldown(MODEL, 5)
    seen = b.acquire(MODEL, 1, 1)
    assert 4.0 < seen.wait_s <= 5.0 and "cooldown" in seen.reason
    b.cooldown(MODEL, 1)  # a shorter cooldown never cuts a longer one short
    assert a.acquire(MODEL, 1, 1).wait_s > 4.0
    assert a.acquire("claude-other", 1, 1).wait_s == 0  # other models keep going
    clear_rate_limits(services.broker_url)
    assert b.acquire(MODEL, 1, 1).wait_s == 0
    first.close()
    second.close()


def test_concurrent_acquires_admit_exactly_the_limit(services: Services) -> None:
    clear_rate_limits(services.broker_url)
    admitted: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def worker() -> None:
        client = redis.Redis.from_url(services.broker_url)
        rl = limiter(client, rpm=50)
        start.wait()
        ok = sum(rl.acquire(MODEL, 1, 1).wait_s == 0 for _ in range(10))
        with lock:
            admitted.append(ok)
        client.close()

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 200 tries against 50 a minute; the test is far shorter than the 1.2 s a refill takes.
    assert sum(admitted) == 50
    clear_rate_limits(services.broker_url)


def test_more_threads_than_pooled_connections_wait_for_one(services: Services) -> None:
    # 150 threads at once against a pool of LIMITER_POOL_SIZE: redis-py's default pool
    # would refuse callers past 100 ("Too many connections"); this one queues them.
    clear_rate_limits(services.broker_url)
    pool = limiter_pool(services.broker_url)
    client = redis.Redis(connection_pool=pool)
    rl = limiter(client)  # unlimited: every acquire is admitted
    start = threading.Barrier(150)
    outcomes: list[object] = []

    def worker() -> None:
        start.wait()
        try:
            outcomes.append(rl.acquire(MODEL, 1, 1).wait_s)
        except redis.RedisError as exc:  # what the default pool raised
            outcomes.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(150)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == [0.0] * 150
    assert len(pool._connections) <= LIMITER_POOL_SIZE  # bounded, however many threads
    pool.disconnect()
    clear_rate_limits(services.broker_url)
