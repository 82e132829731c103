"""Riding out a Postgres restart: which errors mean "try again", and commits that must land.

A restart, failover or dropped connection raises OperationalError (or InterfaceError
on a connection already closed). None of them says the work was wrong, so tasks
retry them. The pool's pre-ping replaces dead connections on the next checkout.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
from sqlalchemy import exc as sa_exc

from tierroute.config import LEASE_MARGIN_S
from tierroute.store.engine import Cursor, raw_autocommit, raw_transaction

log = logging.getLogger(__name__)

T = TypeVar("T")

# psycopg's own from the hot path's raw cursors; SQLAlchemy's from pool checkouts,
# including a pool that stayed exhausted for its whole timeout (sa_exc.TimeoutError):
# a step that meets it waits and tries again, rather than leave its job half done.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
)
# While Postgres is unreachable (restart, failover) a task waits this long, ±50 %,
# and tries again; it is not an attempt, since nothing was wrong with the job.
DATABASE_RETRY_S = 2.0
# How long a step keeps retrying the commit of a call it has made. The call ended
# within the SDK timeout, so the job's lease has at least LEASE_MARGIN_S left: nobody
# else can claim the job while we retry.
WITHIN_LEASE_S = LEASE_MARGIN_S - 5
_FIRST_WAIT_S = 0.25
_MAX_WAIT_S = 4.0


def database_wait_s() -> float:
    """How long a step waits for an unreachable Postgres: DATABASE_RETRY_S, ±50 %."""
    return DATABASE_RETRY_S * random.uniform(0.5, 1.5)


def retrying_transaction(
    work: Callable[[Cursor, bool], T], *, within_s: float = WITHIN_LEASE_S, autocommit: bool = False
) -> T:
    """Run `work(cursor, retried)` in a durable transaction until it commits or time runs out.

    `retried` is True after a failed try: that try may have committed just before its
    connection broke, so `work` must check before writing anything twice. With
    `autocommit`, each statement of `work` commits on its own (`engine.raw_autocommit`):
    for work that writes with a single statement.
    """
    deadline = time.monotonic() + within_s
    wait = _FIRST_WAIT_S
    retried = False
    while True:
        try:
            with raw_autocommit() if autocommit else raw_transaction() as cur:
                return work(cur, retried)
        except DATABASE_ERRORS as exc:
            if time.monotonic() + wait > deadline:
                raise
            log.warning("database unavailable (%s); retrying in %.2fs", exc, wait)
            time.sleep(wait)
            wait = min(wait * 2, _MAX_WAIT_S)
            retried = True
