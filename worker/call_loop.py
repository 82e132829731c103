"""The tier worker's event loop: every model call of the process waits on it, side by side.

A thread per call (the design before this one) made the calls dearer the more
of them ran at once: a thread that wakes with an answer queues for the GIL behind
hundreds of others, and so does the rest of the worker (its Celery threads, its
database steps). `python -m bench --only calls` measures the calls alone and
`--only pipeline` the whole pipeline, which gained more; bench/README.md has the
figures of the latest run.

Each job of a `complete_many` or `complete` message runs here as one coroutine:

- its claim, the cache gate and the rate limiter (Postgres and Redis, blocking) run
  on a small thread pool, no larger than the process's Postgres pool;
- its model call runs on the loop, through the async SDK client;
- its result is stored on the thread pool again, as soon as the call answers.

The Celery thread that took the message waits for all of its jobs, so the message
is acknowledged (acks_late) only when every job is done or handed on.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import anthropic

from tierroute.domain.errors import ProviderError
from tierroute.domain.status import CallPurpose
from tierroute.llm.provider import CallResult, call_model_async, make_async_clients
from tierroute.pipeline.steps import ClaimedCall, abandon_call, claim_call, finish_call
from tierroute.runtime import Runtime, client_name
from tierroute.store.retry import DATABASE_ERRORS, database_wait_s

log = logging.getLogger(__name__)

# Async SDK clients per process. Each keeps its connections in one pool that every
# request scans, so fewer clients left a tier worker spending much of its time in
# that scan (bench/README.md, "Why the stack is shaped this way").
ASYNC_CLIENTS = 64

Result = TypeVar("Result")


class CallLoop:
    """An event loop on its own thread, with a thread pool for the blocking steps."""

    def __init__(self, blocking_threads: int) -> None:
        self._loop = asyncio.new_event_loop()
        self._blocking = ThreadPoolExecutor(
            max_workers=max(1, blocking_threads), thread_name_prefix="tierroute-db"
        )
        # Clients belong to one runtime's settings (tests swap runtimes in one process).
        self._clients_for: Runtime | None = None
        self._clients: list[anthropic.AsyncAnthropic] = []
        self._next_client = itertools.count()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tierroute-calls", daemon=True
        )
        self._thread.start()

    def run_jobs(self, rt: Runtime, job_ids: Sequence[str]) -> list[float | None]:
        """Answer these jobs side by side: for each, None when done, else seconds to wait."""
        done = asyncio.run_coroutine_threadsafe(self._run_all(rt, job_ids), self._loop)
        return done.result()

    async def _run_all(self, rt: Runtime, job_ids: Sequence[str]) -> list[float | None]:
        await self._use_clients_of(rt)
        return list(await asyncio.gather(*(self._run_one(rt, job_id) for job_id in job_ids)))

    async def _run_one(self, rt: Runtime, job_id: str) -> float | None:
        try:
            return await self._answer(rt, uuid.UUID(job_id))
        except DATABASE_ERRORS as exc:
            countdown = database_wait_s()
            log.warning("complete: no database (%s); job %s again in %.1fs", exc, job_id, countdown)
            return countdown
        except Exception:
            # As a failed task would be: logged, and the message's other jobs go on.
            log.exception("complete: job %s failed", job_id)
            return None

    async def _answer(self, rt: Runtime, job_id: uuid.UUID) -> float | None:
        claimed = await self._blocking_call(claim_call, rt, job_id)
        if not isinstance(claimed, ClaimedCall):
            return None if claimed is None else max(claimed.delay_s, 0.001)
        try:
            outcome: CallResult | ProviderError = await call_model_async(
                self._client(),
                claimed.params,
                purpose=CallPurpose.COMPLETE,
                tiers=rt.tiers,
                simulated=rt.settings.simulated,
            )
        except ProviderError as exc:
            outcome = exc
        except BaseException:
            abandon_call(claimed)
            raise
        retry = await self._blocking_call(finish_call, rt, claimed, outcome)
        # Attempts are counted and capped in Postgres, not by Celery.
        return None if retry is None else max(retry.delay_s, 0.001)

    async def _blocking_call(self, work: Callable[..., Result], *args: object) -> Result:
        return await self._loop.run_in_executor(self._blocking, work, *args)

    def _client(self) -> anthropic.AsyncAnthropic:
        return self._clients[next(self._next_client) % len(self._clients)]

    async def _use_clients_of(self, rt: Runtime) -> None:
        if self._clients_for is rt:
            return
        old, self._clients = (
            self._clients,
            make_async_clients(rt.settings, ASYNC_CLIENTS, client_name=client_name("tiers")),
        )
        self._clients_for = rt
        for client in old:
            await client.close()


_lock = threading.Lock()
_call_loop: CallLoop | None = None


def call_loop(rt: Runtime) -> CallLoop:
    """This process's call loop, started on first use."""
    global _call_loop
    with _lock:
        if _call_loop is None:
            # Each blocking step holds a Postgres connection: never wait for one.
            _call_loop = CallLoop(blocking_threads=2 * rt.settings.db_pool_size)
        return _call_loop


def forget() -> None:
    """Drop an inherited loop (a forked child has the object but not its thread)."""
    global _call_loop
    with _lock:
        _call_loop = None
