"""The embedded default: Postgres and Redis from pip packages, started under a data dir.

Used when TIERROUTE_DATABASE_URL / TIERROUTE_BROKER_URL are unset, so `tierroute demo`
runs on a bare machine. Servers listen on 127.0.0.1 only and never outlive the
`embedded_services` block; one a killed process left behind is stopped on the next start.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tierroute.devstack.embedded.postgres_server import EmbeddedPostgres
from tierroute.devstack.embedded.redis_server import EmbeddedRedis

__all__ = ["EmbeddedPostgres", "EmbeddedRedis", "EmbeddedUrls", "embedded_services"]


@dataclass(frozen=True)
class EmbeddedUrls:
    """URLs of the services `embedded_services` started; None for those not asked for."""

    database_url: str | None
    broker_url: str | None


@contextmanager
def embedded_services(
    data_dir: Path,
    need_postgres: bool = True,
    need_redis: bool = True,
    *,
    postgres_settings: Mapping[str, str] | None = None,
) -> Iterator[EmbeddedUrls]:
    """Start the services asked for under data_dir, yield their URLs, stop them on exit."""
    with ExitStack() as stack:
        database_url = broker_url = None
        if need_redis:
            # Redis first: it starts in milliseconds, so a broken binary fails fast.
            embedded_redis = EmbeddedRedis(data_dir)
            stack.callback(embedded_redis.stop)
            broker_url = embedded_redis.start()
        if need_postgres:
            postgres = EmbeddedPostgres(data_dir, settings=postgres_settings)
            stack.callback(postgres.stop)
            database_url = postgres.start()
        yield EmbeddedUrls(database_url=database_url, broker_url=broker_url)
