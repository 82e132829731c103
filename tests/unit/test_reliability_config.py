"""Settings and small parts the reliability tests rely on, without services."""

from __future__ import annotations

import time

import anthropic
import httpx
import pytest
from pydantic import ValidationError

from tierroute.config import Settings
from tierroute.devstack.simulator import SimulatorConfig, serve_in_thread
from tierroute.domain.errors import InvalidInput
from tierroute.domain.specs import JobSpec, parse_spec
from worker.celery_app import transport_options


def test_redis_transport_scans_for_a_dead_workers_messages_often() -> None:
    options = transport_options(3600, broker_is_redis=True)
    assert options["visibility_timeout"] == 3600
    # kombu's default sweep is every 100 s; ours every 10 s at most.
    assert options["unacked_restore_interval"] == 10 and options["unacked_restore_throttle"] == 1
    assert transport_options(40, broker_is_redis=True)["unacked_restore_interval"] == 2
    # A worker killed mid-scan must not stop every restore for kombu's 300 s.
    assert options["unacked_mutex_expire"] <= 10
    assert transport_options(3600, broker_is_redis=False) == {}  # RabbitMQ redelivers itself


def test_the_limiter_uses_redis_url_with_another_broker() -> None:
    amqp = "amqp://guest:guest@127.0.0.1:5672//"
    assert not Settings(broker_url=amqp).rate_limits_enabled
    with_redis = Settings(broker_url=amqp, redis_url="redis://127.0.0.1:6379/3")
    assert with_redis.rate_limits_enabled
    assert with_redis.limiter_redis_url == "redis://127.0.0.1:6379/3"
    assert Settings(broker_url="redis://h:6379/0").limiter_redis_url == "redis://h:6379/0"
    assert Settings(broker_url=amqp).broker_is_redis is False


def test_rate_limits_on_without_any_redis_stop_the_process() -> None:
    with pytest.raises(ValidationError, match="TIERROUTE_REDIS_URL"):
        Settings(broker_url="amqp://guest@127.0.0.1//", rate_limits=True)


@pytest.mark.parametrize(
    "fields",
    [
        {"prompt": "a\x00b"},
        {"prompt": "ok", "system": "\x00"},
        {"prompt": "ok", "metadata": {"k": ["\x00"]}},
    ],
)
def test_nul_characters_are_refused_before_postgres_sees_them(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="NUL"):
        JobSpec.model_validate(fields)
    with pytest.raises(InvalidInput, match=r"line 1: \w+: must not contain NUL"):
        parse_spec(fields, "line 1")


def test_the_simulator_logs_each_requests_arrival() -> None:
    with serve_in_thread(SimulatorConfig()) as sim:
        client = anthropic.Anthropic(api_key="x", base_url=sim.base_url, max_retries=0)
        before = time.time()
        for model in ("claude-haiku-4-5", "claude-haiku-4-5", "claude-opus-4-6"):
            client.messages.create(
                model=model, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
            )
        log = httpx.get(f"{sim.base_url}/_sim/requests", params={"model": "claude-haiku-4-5"})
        times = [r["t"] for r in log.json()["requests"]]
        assert len(times) == 2 and before <= times[0] <= times[1] <= time.time()
        assert len(httpx.get(f"{sim.base_url}/_sim/requests").json()["requests"]) == 3
        sim.reset()
        assert httpx.get(f"{sim.base_url}/_sim/requests").json() == {"requests": []}
