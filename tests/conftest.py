"""Shared fixtures: real Postgres and Redis, a migrated test database, the simulator.

CI uses the machine's services (127.0.0.1:5432 and :6379) and fails if they are
missing; a developer without them gets the embedded ones from pip packages.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy import text

from tierroute.config import default_tier_table, get_settings
from tierroute.devstack.simulator import RunningSimulator, SimulatorConfig, serve_in_thread
from tierroute.runtime import reset_runtime
from tierroute.store import engine as db
from tierroute.store.migrate import upgrade

PG_ADMIN_URL = os.environ.get(
    "TIERROUTE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_HOST_URL = os.environ.get("TIERROUTE_TEST_REDIS_URL", "redis://127.0.0.1:6379")
AMQP_HOST_URL = os.environ.get("TIERROUTE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TABLES = (
    "ratings",
    "model_calls",
    "routing_decisions",
    "jobs",
    "batches",
    "api_keys",
    # The rollups keep history when raw rows go (migration 0009), so they are emptied too.
    "rollup_calls_hourly",
    "rollup_jobs_hourly",
    "rollup_decisions_hourly",
    "rollup_batches",
    # What writers listed for the next fold, and each finished job's part (migration 0016).
    "rollup_pending",
    "rollup_job_contrib",
)


@dataclass(frozen=True)
class Services:
    """URLs of the test database (SQLAlchemy form) and of a private Redis database."""

    database_url: str
    broker_url: str


def _postgres_up(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _redis_up(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=3).ping())
    except redis.RedisError:
        return False


def clear_rate_limits(broker_url: str) -> None:
    """Forget the shared rate limiter's buckets and cooldowns, as if time had passed."""
    client = redis.Redis.from_url(broker_url)
    keys = list(client.scan_iter(match="tierroute:rl:*"))
    if keys:
        client.delete(*keys)
    client.close()


def clear_settings_caches() -> None:
    get_settings.cache_clear()
    default_tier_table.cache_clear()
    reset_runtime()


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    """A fresh, migrated Postgres database and an empty Redis database for this session."""
    with ExitStack() as stack:
        admin_url, redis_url = PG_ADMIN_URL, REDIS_HOST_URL
        pg_up, redis_up = _postgres_up(admin_url), _redis_up(redis_url)
        if not (pg_up and redis_up):
            if IN_CI:
                pytest.fail(
                    f"CI needs Postgres at {admin_url} and Redis at {redis_url} "
                    f"(postgres up: {pg_up}, redis up: {redis_up}); .ci/run starts them"
                )
            from tierroute.devstack.embedded import embedded_services

            # Not under pytest's tmp dir: pytest resets it to 0700 at each start,
            # which locks the unprivileged postgres user out of a running cluster.
            data_dir = Path(tempfile.mkdtemp(prefix="tierroute-test-"))
            stack.callback(shutil.rmtree, data_dir, True)
            emb = stack.enter_context(
                embedded_services(
                    data_dir,
                    need_postgres=not pg_up,
                    need_redis=not redis_up,
                )
            )
            if not pg_up:
                admin_url = str(emb.database_url).replace("+psycopg", "")
            if not redis_up:
                redis_url = str(emb.broker_url).rsplit("/", 1)[0]
        name = f"tierroute_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        stack.callback(_drop_database, admin_url, name)
        base, _, _ = admin_url.rpartition("/")
        database_url = f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
        upgrade(database_url)
        # A random Redis database keeps concurrent test sessions on one server apart.
        broker_url = f"{redis_url}/{random.randint(1, 15)}"
        redis.Redis.from_url(broker_url).flushdb()
        yield Services(database_url=database_url, broker_url=broker_url)


def _amqp_up(url: str) -> bool:
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
            return True
    except Exception:  # refused, timed out, bad credentials: all mean "not usable"
        return False


def _rabbitmqctl(*args: str) -> bool:
    try:
        done = subprocess.run(
            ["rabbitmqctl", "-q", *args], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.fixture(scope="session")
def amqp_broker() -> Iterator[str]:
    """A RabbitMQ broker URL on a private vhost for this session (fails in CI when absent)."""
    base = AMQP_HOST_URL.rstrip("/")
    if not _amqp_up(f"{base}//"):
        message = f"RabbitMQ is not reachable at {base}; .ci/run starts it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)  # no embedded RabbitMQ for a developer without one
    vhost = f"tierroute_test_{uuid.uuid4().hex[:10]}"
    # A private vhost keeps concurrent sessions' queues apart, as the Redis db number does.
    if _rabbitmqctl("add_vhost", vhost) and _rabbitmqctl(
        "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"
    ):
        yield f"{base}/{vhost}"
        _rabbitmqctl("delete_vhost", vhost)
    else:  # a remote broker we cannot administer: its default vhost
        yield f"{base}//"


def _drop_database(admin_url: str, name: str) -> None:
    db.dispose_engine()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def simulator() -> Iterator[RunningSimulator]:
    """The Messages API simulator in this process, on a free port."""
    with serve_in_thread(SimulatorConfig()) as running:
        yield running


@pytest.fixture
def sim(simulator: RunningSimulator) -> Iterator[RunningSimulator]:
    """The simulator with faults and stats cleared before and after the test."""
    simulator.reset()
    yield simulator
    simulator.reset()


@pytest.fixture
def env(
    services: Services, simulator: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    """Settings pointing at the test services and the simulator, read afresh."""
    monkeypatch.setenv("TIERROUTE_DATABASE_URL", services.database_url)
    monkeypatch.setenv("TIERROUTE_BROKER_URL", services.broker_url)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", simulator.base_url)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    clear_settings_caches()
    clear_rate_limits(services.broker_url)
    yield services
    clear_settings_caches()
    clear_rate_limits(services.broker_url)


def truncate_all(database_url: str) -> None:
    engine = db.make_engine(database_url, pool_size=1)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
        conn.execute(text("UPDATE rollup_state SET pruned_before = NULL"))
    engine.dispose()


@pytest.fixture
def clean_db(env: Services) -> Iterator[Services]:
    """Empty tables before and after the test."""
    truncate_all(env.database_url)
    yield env
    truncate_all(env.database_url)


REPO_ROOT = Path(__file__).resolve().parents[1]
