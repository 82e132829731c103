"""The local stack: embedded services when needed, simulator, API, workers, Flower.

`tierroute up` keeps it running; `tierroute demo` and the end-to-end tests use it
for one run. Every component is a real process started from its real entry point.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from celery import Celery

from tierroute.config import Settings, default_tier_table
from tierroute.devstack.procs import Child, free_port, start_child, wait_http
from tierroute.domain.errors import ConfigurationError
from tierroute.messages import tier_queues
from tierroute.store.engine import max_connections
from tierroute.store.keys import issue_key
from tierroute.store.migrate import upgrade

log = logging.getLogger(__name__)


# Shares of TIERROUTE_STACK_DB_CONNECTIONS: the API and the classify worker (feeder,
# beat and watches included) get these, the tier workers split the rest. Flower,
# the simulator and `tierroute up` itself hold no Postgres connection.
API_SHARE = 0.2
CLASSIFY_SHARE = 0.25
# How long the API and the workers may take to come up.
STARTUP_TIMEOUT_S = 180.0


def stack_pool_sizes(budget: int, tier_workers: int) -> dict[str, int]:
    """TIERROUTE_DB_POOL_SIZE by process (api, classify, tiers) within `budget` connections.

    Before this budget, two stacks exhausted a default Postgres (max_connections 100):
    workers failed with "too many clients" (docs/connections.md).
    """

    def pool(connections: float) -> int:
        return max(1, int(connections) // max_connections(1))

    sizes = {
        "api": pool(budget * API_SHARE),
        "classify": pool(budget * CLASSIFY_SHARE),
        "tiers": pool(budget * (1 - API_SHARE - CLASSIFY_SHARE) / tier_workers),
    }
    if stack_connections(sizes, tier_workers) > budget:
        raise ConfigurationError(
            f"TIERROUTE_STACK_DB_CONNECTIONS={budget} is too few for an API, a classify "
            f"worker and {tier_workers} tier workers (at least {max_connections(1)} each)"
        )
    return sizes


def stack_connections(pool_sizes: dict[str, int], tier_workers: int) -> int:
    """The most Postgres connections a stack with these pools opens at once."""
    tiers = max_connections(pool_sizes["tiers"]) * tier_workers
    return max_connections(pool_sizes["api"]) + max_connections(pool_sizes["classify"]) + tiers


@dataclass
class StackOptions:
    """What to start and where."""

    data_dir: Path
    api_port: int = 8000
    flower_port: int | None = None
    flower_auth: str | None = None
    # Celery threads per worker. A tier worker's thread holds one message, up to
    # TIERROUTE_COMPLETE_BATCH_SIZE jobs whose calls wait on the event loop
    # (worker/call_loop.py): 128 threads keep up to 1,280 calls in flight. Each
    # call in flight holds memory, so this also keeps a tier worker within its
    # 300 MB (bench/README.md, "Why the stack is shaped this way").
    classify_concurrency: int = 64
    tier_concurrency: int = 128
    # Threads: gevent cost more CPU per job here (bench/README.md, "Why the stack is
    # shaped this way").
    pool: str = "threads"
    simulator_env: dict[str, str] = field(default_factory=dict)
    # uvicorn worker processes for the API. One: /metrics counts HTTP requests in
    # process, so several workers would each report their own share.
    api_workers: int = 1
    # Tier worker processes (nodes tiers, tiers2, …). One Python process answers on
    # at most one core (the GIL), and on 2 cores one tier worker was the bottleneck
    # (bench/README.md, "Why the stack is shaped this way").
    tier_workers: int = 2
    # Extra environment (TIERROUTE_* settings) for the API, the workers and Flower.
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class RunningStack:
    """URLs and processes of a started stack."""

    api_url: str
    api_key: str  # created for this run; every /v1 request needs one
    database_url: str
    broker_url: str
    simulator_url: str | None
    flower_url: str | None
    flower_auth: str | None
    children: list[Child]
    log_dir: Path
    # What every child was started with (URLs and StackOptions.env).
    env: dict[str, str] = field(default_factory=dict)
    # TIERROUTE_DB_POOL_SIZE of the api, the classify worker and each tier worker.
    pool_sizes: dict[str, int] = field(default_factory=dict)


def _worker_argv(queues: str, node: str, concurrency: int, pool: str) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "worker", "worker",
        "-Q", queues, "-n", f"{node}@%h", "-P", pool, "-c", str(concurrency),
        "--loglevel", "INFO",
    ]  # fmt: skip


def flower_argv(port: int, max_tasks: int) -> list[str]:
    """Flower on localhost with its task cap; its login comes from FLOWER_BASIC_AUTH."""
    return [sys.executable, "-m", "celery", "-A", "worker", "flower",
            f"--port={port}", "--address=127.0.0.1", f"--max_tasks={max_tasks}"]  # fmt: skip


def _wait_for_workers(
    broker_url: str, expected: int, children: list[Child], timeout_s: float
) -> None:
    client = Celery(broker=broker_url)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for child in children:
                if not child.alive():
                    raise RuntimeError(f"{child.name} exited early:\n{child.log_tail()}")
            replies = client.control.ping(timeout=1.0) or []
            if len(replies) >= expected:
                return
        raise RuntimeError(f"Celery workers did not answer a ping within {timeout_s:.0f}s")
    finally:
        client.close()


def _start_tier_worker(
    env: dict[str, str], options: StackOptions, node: str, log_dir: Path, pool_size: int
) -> Child:
    queues = ",".join(tier_queues(default_tier_table()))
    return start_child(
        f"worker-{node}",
        _worker_argv(queues, node, options.tier_concurrency, options.pool),
        {**env, "TIERROUTE_DB_POOL_SIZE": str(pool_size)},
        log_dir,
    )


def add_tier_worker(running: RunningStack, options: StackOptions, node: str) -> Child:
    """Start one more tier worker on a running stack (e.g. replacing a killed one)."""
    pool_size = running.pool_sizes["tiers"]
    child = _start_tier_worker(running.env, options, node, running.log_dir, pool_size)
    running.children.append(child)
    return child


@contextlib.contextmanager
def run_stack(settings: Settings, options: StackOptions) -> Iterator[RunningStack]:
    """Start every component, yield their URLs, and stop them all on exit."""
    from tierroute.devstack.embedded import embedded_services

    log_dir = options.data_dir / "logs"
    children: list[Child] = []
    need_pg = settings.database_url is None
    need_redis = settings.broker_url is None
    pools = stack_pool_sizes(settings.stack_db_connections, options.tier_workers)
    with embedded_services(options.data_dir, need_postgres=need_pg, need_redis=need_redis) as emb:
        database_url = settings.database_url or emb.database_url
        broker_url = settings.broker_url or emb.broker_url
        assert database_url and broker_url
        try:
            upgrade(database_url)
            api_key = issue_key(database_url, f"stack {options.data_dir.name}")
            env = {
                **options.env,
                "TIERROUTE_DATABASE_URL": database_url,
                "TIERROUTE_BROKER_URL": broker_url,
            }
            simulator_url = None
            if settings.simulated and not settings.anthropic_base_url:
                sim_port = free_port()
                simulator_url = f"http://127.0.0.1:{sim_port}"
                sim = start_child(
                    "simulator",
                    [sys.executable, "-m", "tierroute", "sim", "--port", str(sim_port)],
                    options.simulator_env,
                    log_dir,
                )
                children.append(sim)
                wait_http(f"{simulator_url}/_sim/stats", sim, timeout_s=30)
                env["ANTHROPIC_BASE_URL"] = simulator_url
            api_url = f"http://127.0.0.1:{options.api_port}"
            api = start_child(
                "api",
                [sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1",
                 "--port", str(options.api_port), "--log-level", "warning",
                 "--workers", str(options.api_workers)],
                {**env, "TIERROUTE_DB_POOL_SIZE": str(pools["api"])},
                log_dir,
            )  # fmt: skip
            children.append(api)
            workers = [
                start_child(
                    "worker-classify",
                    _worker_argv(
                        "classify", "classify", options.classify_concurrency, options.pool
                    ),
                    {**env, "TIERROUTE_DB_POOL_SIZE": str(pools["classify"])},
                    log_dir,
                ),
                *(
                    _start_tier_worker(
                        env, options, "tiers" if n == 1 else f"tiers{n}", log_dir, pools["tiers"]
                    )
                    for n in range(1, options.tier_workers + 1)
                ),
            ]
            children.extend(workers)
            flower_url = None
            flower_auth = None
            if options.flower_port is not None:
                flower_auth = options.flower_auth or f"admin:{secrets.token_urlsafe(12)}"
                # Flower reads FLOWER_* options from its environment; on argv, every
                # local user's `ps` would show the password.
                flower = start_child(
                    "flower",
                    flower_argv(options.flower_port, settings.flower_max_tasks),
                    {**env, "FLOWER_BASIC_AUTH": flower_auth},
                    log_dir,
                )  # fmt: skip
                children.append(flower)
                flower_url = f"http://127.0.0.1:{options.flower_port}"
            # A dead process fails these at once; the long wait is for a loaded machine,
            # where five Python processes importing at once took over a minute to answer.
            wait_http(f"{api_url}/healthz", api, timeout_s=STARTUP_TIMEOUT_S)
            _wait_for_workers(
                broker_url, expected=len(workers), children=workers, timeout_s=STARTUP_TIMEOUT_S
            )
            yield RunningStack(
                api_url=api_url,
                api_key=api_key,
                database_url=database_url,
                broker_url=broker_url,
                simulator_url=simulator_url,
                flower_url=flower_url,
                flower_auth=flower_auth,
                children=children,
                log_dir=log_dir,
                env=env,
                pool_sizes=pools,
            )
        finally:
            # Workers first, so nothing is mid-task when the API and services go.
            for child in reversed(children):
                child.stop()
