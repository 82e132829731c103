"""The tier worker's call threads, where the jobs of one `complete_many` message run side by side.

A Celery message costs a tier worker's single consumer thread several Redis round
trips, and with hundreds of threads holding the GIL each round trip waits its
turn: measured, the consumer, not the model calls, capped how many calls one
process could start. A message that carries several jobs pays that once for all
of them, and this pool gives each job its own thread for its model call.

It is sized like the worker's Celery pool (`-c`), so `-c N` still means N calls
in flight from chunked messages; `complete` messages of one job run on Celery's
own threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

# Outside a worker (tests, a shell) nothing sets the size.
DEFAULT_SIZE = 16

_lock = threading.Lock()
_size = DEFAULT_SIZE
_executor: ThreadPoolExecutor | None = None


def configure(size: int) -> None:
    """Set the pool's size (the worker's concurrency); takes effect before first use."""
    global _size
    with _lock:
        _size = max(1, size)


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=_size, thread_name_prefix="tierroute-call")
        return _executor


def run_each(work: Callable[[Item], Outcome], items: Sequence[Item]) -> list[Outcome]:
    """`work(item)` for every item at once, on the pool; outcomes in the items' order.

    `work` must handle its own errors: one that raises fails the whole call.
    """
    pool = _pool()
    futures = [pool.submit(work, item) for item in items]
    return [future.result() for future in futures]
