"""The Postgres database and Redis database a benchmark run uses, made fresh and reset."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import redis

from tierroute.config import Settings
from tierroute.store.migrate import upgrade

PG_ADMIN_URL = os.environ.get(
    "TIERROUTE_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_HOST_URL = os.environ.get("TIERROUTE_BENCH_REDIS_URL", "redis://127.0.0.1:6379")


@dataclass(frozen=True)
class Backing:
    """URLs of one migrated Postgres database and one Redis database number."""

    database_url: str
    broker_url: str

    @property
    def psycopg_url(self) -> str:
        """The database URL in libpq form, for direct psycopg connections."""
        return self.database_url.replace("postgresql+psycopg://", "postgresql://", 1)

    def settings(self) -> Settings:
        """Settings for a stack on this backing, with every model call simulated."""
        return Settings().model_copy(
            update={
                "database_url": self.database_url,
                "broker_url": self.broker_url,
                "anthropic_api_key": None,
                "anthropic_base_url": None,
            }
        )

    def reset(self) -> None:
        """Empty every table and the Redis database, so each benchmark starts clean.

        Seed rows the migrations insert (rollup_state's) are put back.
        """
        with psycopg.connect(self.psycopg_url, autocommit=True) as conn:
            # Every table but Alembic's, so tables added by later migrations go too.
            rows = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            ).fetchall()
            if rows:
                names = ", ".join(f'"{name}"' for (name,) in rows)
                conn.execute(f"TRUNCATE {names} CASCADE")
            # Migration 0009's one row, which the prune and rebuilds read and update.
            conn.execute("INSERT INTO rollup_state (id) VALUES (1) ON CONFLICT DO NOTHING")
        client = redis.Redis.from_url(self.broker_url)
        try:
            client.flushdb()
        finally:
            client.close()


def _empty_redis_db(host_url: str) -> int:
    """A Redis database number with no keys, highest first (tests pick at random)."""
    client = redis.Redis.from_url(f"{host_url}/0")
    try:
        used = {int(name[2:]) for name in client.info("keyspace") if name.startswith("db")}
        databases = int(client.config_get("databases").get("databases") or 16)
    finally:
        client.close()
    for number in range(databases - 1, 0, -1):
        if number not in used:
            return number
    raise RuntimeError(f"no empty Redis database on {host_url}; pass --redis-url")


@contextlib.contextmanager
def fresh_backing(
    pg_admin_url: str = PG_ADMIN_URL, redis_url: str | None = None
) -> Iterator[Backing]:
    """A new migrated database (dropped on exit) and an empty Redis database."""
    name = f"tierroute_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    backing: Backing | None = None
    try:
        base, _, _ = pg_admin_url.rpartition("/")
        database_url = f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
        upgrade(database_url)
        broker_url = redis_url or f"{REDIS_HOST_URL}/{_empty_redis_db(REDIS_HOST_URL)}"
        backing = Backing(database_url=database_url, broker_url=broker_url)
        backing.reset()
        yield backing
    finally:
        if backing is not None:
            # Leave no queued messages behind in a Redis database others may pick next.
            with contextlib.suppress(redis.RedisError):
                redis.Redis.from_url(backing.broker_url).flushdb()
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
