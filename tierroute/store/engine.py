"""Engine and session scope: one engine per process, commit at the edge."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeAlias, TypeVar

import psycopg
from psycopg.rows import class_row, namedtuple_row
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import PoolProxiedConnection

from tierroute.config import Settings
from tierroute.domain.errors import ConfigurationError

# What a broken connection raises on the hot path's raw psycopg cursors.
DISCONNECTS = (psycopg.OperationalError, psycopg.InterfaceError)

# The hot path's cursor: psycopg's own, with rows as tuples (the default row factory).
Cursor: TypeAlias = psycopg.Cursor[tuple[Any, ...]]
PgConnection: TypeAlias = psycopg.Connection[tuple[Any, ...]]
R = TypeVar("R")

_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None


def max_connections(pool_size: int) -> int:
    """The most Postgres connections a process with this TIERROUTE_DB_POOL_SIZE opens.

    Twice pool_size, as before, but all kept once opened: an overflow connection is
    closed when returned, and under steady load above the pool that meant a new
    Postgres backend (a fork and a login) every few jobs. Connections still open
    only on demand.
    """
    return 2 * pool_size


def make_engine(
    url: str, pool_size: int = 10, *, pre_ping: bool = True, prepared_statements: bool = True
) -> Engine:
    """A pooled engine; with pre-ping, a restarted Postgres costs no failed request.

    Pre-ping is a round trip per checkout. The workers' hot path does without it
    (`raw_transaction` drops the pool's connections on the first broken one, and the
    task retries), since it checks out a connection several times per job.

    Without prepared statements, psycopg never prepares one on the server
    (prepare_threshold None), which PgBouncer in transaction mode needs: there the
    next transaction may run on another server connection, one that lacks the
    statement or has another of the same name.
    """
    connect_args: dict[str, Any] = {} if prepared_statements else {"prepare_threshold": None}
    return create_engine(
        url,
        pool_size=max_connections(pool_size),
        max_overflow=0,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
        connect_args=connect_args,
    )


def init_engine(settings: Settings, *, pre_ping: bool = True) -> Engine:
    """Create this process's engine; call from a lifecycle hook, not at import."""
    global _engine, _session_factory
    if settings.database_url is None:
        raise ConfigurationError(
            "TIERROUTE_DATABASE_URL is not set; `tierroute up` or `tierroute demo` "
            "start an embedded Postgres and set it for their children"
        )
    if _engine is not None:
        _engine.dispose()
    _engine = make_engine(
        settings.database_url,
        settings.db_pool_size,
        pre_ping=pre_ping,
        prepared_statements=settings.db_prepared_statements,
    )
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


def one_row(cur: Cursor) -> tuple[Any, ...]:
    """The row of a statement that always returns one (an aggregate, INSERT ... RETURNING)."""
    row = cur.fetchone()
    if row is None:
        raise psycopg.ProgrammingError("the statement returned no row")
    return row


def fetch_one_as(cur: Cursor, row: type[R], query: str, params: Mapping[str, Any]) -> R | None:
    """Run `query` on `cur`'s connection and read its one row, if any, as a `row`.

    `row` is a dataclass whose fields are the query's column names (psycopg's
    class_row), so a row is read by name, never by position.
    """
    with cur.connection.cursor(row_factory=class_row(row)) as typed:
        typed.execute(query, params)
        return typed.fetchone()


def fetch_all_as(cur: Cursor, row: type[R], query: str, params: Mapping[str, Any]) -> list[R]:
    """Run `query` on `cur`'s connection and read every row as a `row` (see fetch_one_as)."""
    with cur.connection.cursor(row_factory=class_row(row)) as typed:
        typed.execute(query, params)
        return typed.fetchall()


def named_cursor(cur: Cursor) -> psycopg.Cursor[Any]:
    """A cursor on `cur`'s connection whose rows are named tuples, for wide reads
    whose columns are known by name only at run time (e.g. `jobs.view_of`'s)."""
    return cur.connection.cursor(row_factory=namedtuple_row)


def _psycopg(connection: PoolProxiedConnection) -> PgConnection:
    """The psycopg connection under a pooled one (the engine's URL names psycopg)."""
    dbapi = connection.dbapi_connection
    if not isinstance(dbapi, psycopg.Connection):
        raise ConfigurationError(f"expected a psycopg connection, got {type(dbapi).__name__}")
    return dbapi


@contextmanager
def raw_transaction(*, flush_wal: bool = True) -> Iterator[Cursor]:
    """A psycopg cursor in one transaction on a pooled connection, for the hot path.

    The per-job statements of the pipeline run through here: plain SQL that psycopg
    prepares once per connection (unless TIERROUTE_DB_PREPARED_STATEMENTS is off),
    without the ORM's per-statement work.

    `flush_wal=False` commits without waiting for the WAL to reach disk. Use it only
    for a step whose loss in a Postgres crash is harmless and that a later durable
    commit follows: that commit flushes the WAL up to itself, earlier ones included.
    """
    engine = get_engine()
    connection = engine.raw_connection()
    cursor = _psycopg(connection).cursor()
    try:
        if not flush_wal:
            cursor.execute("SET LOCAL synchronous_commit = off")
        yield cursor
        connection.commit()
    except BaseException as exc:
        broken = isinstance(exc, DISCONNECTS) and getattr(
            connection.dbapi_connection, "broken", False
        )
        with contextlib.suppress(*DISCONNECTS):
            connection.rollback()
        if broken:
            # The server went away (a restart, a failover): its other connections in
            # the pool are gone too, so all of them are replaced on their next
            # checkout, as SQLAlchemy does when its own statements meet a disconnect.
            engine.pool._invalidate(connection, exc)
        raise
    finally:
        with contextlib.suppress(*DISCONNECTS):
            cursor.close()
        connection.close()


@contextmanager
def raw_autocommit() -> Iterator[Cursor]:
    """A psycopg cursor whose every statement commits on its own, for one-statement steps.

    A transaction costs BEGIN and COMMIT round trips around its statements; a step
    that is a single statement (a claim, a data-modifying CTE) needs neither, and for
    such a step they are a large share of the client CPU. Postgres runs each statement
    atomically, so such a step is as safe as a transaction.
    """
    engine = get_engine()
    connection = engine.raw_connection()
    dbapi = _psycopg(connection)
    cursor = dbapi.cursor()
    try:
        dbapi.autocommit = True
        yield cursor
    except BaseException as exc:
        if isinstance(exc, DISCONNECTS) and dbapi.broken:
            engine.pool._invalidate(connection, exc)  # as in raw_transaction
        raise
    finally:
        with contextlib.suppress(*DISCONNECTS):
            cursor.close()
            # Pooled connections are transactional for everyone else.
            dbapi.autocommit = False
        connection.close()
