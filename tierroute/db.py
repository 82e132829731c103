"""Engine and session scope: one engine per process, commit at the edge."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from tierroute.config import Settings
from tierroute.errors import ConfigurationError

_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None


def make_engine(url: str, pool_size: int = 10) -> Engine:
    """An engine with pre-ping, so a restarted Postgres costs one retry, not a crash."""
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def init_engine(settings: Settings) -> Engine:
    """Create this process's engine; call from a lifecycle hook, not at import."""
    global _engine, _session_factory
    if settings.database_url is None:
        raise ConfigurationError(
            "TIERROUTE_DATABASE_URL is not set; `tierroute up` or `tierroute demo` "
            "start an embedded Postgres and set it for their children"
        )
    if _engine is not None:
        _engine.dispose()
    _engine = make_engine(settings.database_url, settings.db_pool_size)
    _session_factory = sessionmaker(_engine, expire_on_commit=False)
    return _engine


def get_engine() -> Engine:
    if _engine is None:
        raise ConfigurationError("database engine not initialised in this process")
    return _engine


def dispose_engine() -> None:
    """Drop pooled connections, e.g. in a forked child that must not share sockets."""
    global _engine, _session_factory
    if _engine is not None:
        _engine.dispose()
    _engine = None
    _session_factory = None


@contextmanager
def session_scope() -> Iterator[Session]:
    """A unit of work: commit on success, roll back on error. Services only flush."""
    if _session_factory is None:
        raise ConfigurationError("database engine not initialised in this process")
    session = _session_factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def raw_transaction(*, flush_wal: bool = True) -> Iterator[Any]:
    """A psycopg cursor in one transaction on a pooled connection, for the hot path.

    The per-job statements of the pipeline run through here: plain SQL that psycopg
    prepares once per connection, without the ORM's per-statement work.

    `flush_wal=False` commits without waiting for the WAL to reach disk. Use it only
    for a step whose loss in a Postgres crash is harmless and that a later durable
    commit follows: that commit flushes the WAL up to itself, earlier ones included.
    """
    connection = get_engine().raw_connection()
    cursor = connection.cursor()
    try:
        if not flush_wal:
            cursor.execute("SET LOCAL synchronous_commit = off")
        yield cursor
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        cursor.close()
        connection.close()
