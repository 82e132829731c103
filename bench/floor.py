"""The floor: raw two-task Celery chains on the pipeline's broker and pool settings."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from celery import Celery, chain

from bench.chain_app import (
    BROKER_ENV,
    CONF_ENV,
    DEFAULT_CONF,
    DONE_KEY,
    FIRST_QUEUE,
    LAST_KEY,
    SECOND_QUEUE,
    make_app,
)
from bench.machine import REPO_ROOT
from bench.solo import wait_for_ping
from tierroute.devstack.procs import Child, start_child


@dataclass(frozen=True)
class FloorRun:
    """How fast N chains went through, first send to last second task."""

    chains: int
    done: int
    seconds: float
    chains_per_s: float
    conf: dict[str, Any]
    conf_source: str


# Delivery settings that shape a worker's throughput; the floor copies the pipeline's.
MIRRORED = tuple(DEFAULT_CONF)
_READ_CONF = (
    "import json, sys\n"
    "from worker.celery_app import app, broker_transport\n"
    "conf = {k: app.conf[k] for k in sys.argv[1:]}\n"
    "# The workers set their transport when they start (celeryd_init), not in the app.\n"
    "conf['broker_transport'] = broker_transport(app.conf.broker_url)\n"
    "print(json.dumps(conf))\n"
)


def pipeline_worker_conf(broker_url: str) -> tuple[dict[str, Any], str]:
    """The pipeline workers' delivery settings, read from worker/celery_app.py.

    Read in a child process: importing the worker app here would also connect its
    lifecycle hooks, and it needs TIERROUTE_BROKER_URL to finalise its config.
    """
    try:
        out = subprocess.run(
            [sys.executable, "-c", _READ_CONF, *MIRRORED],
            env={**os.environ, "TIERROUTE_BROKER_URL": broker_url},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        conf: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return conf, "worker/celery_app.py"
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return dict(DEFAULT_CONF), "bench/chain_app.py defaults (worker app unreadable)"


def _worker_argv(queue: str, node: str, concurrency: int, pool: str) -> list[str]:
    # The pipeline's workers run `-P POOL -c N`; the floor's run the same pool.
    return [
        sys.executable, "-m", "celery", "-A", "bench.chain_app", "worker",
        "-Q", queue, "-n", f"{node}@%h", "-P", pool, "-c", str(concurrency),
        "--loglevel", "WARNING",
    ]  # fmt: skip


@contextlib.contextmanager
def chain_workers(
    broker_url: str,
    first_concurrency: int,
    second_concurrency: int,
    log_dir: Path,
    conf: dict[str, Any],
    pool: str = "threads",
    second_processes: int = 1,
) -> Iterator[Celery]:
    """Start the floor's workers, wait until they answer a ping, stop them on exit.

    Laid out as the pipeline's: one first-stage worker (as classify), and
    `second_processes` second-stage workers (as the tier workers).
    """
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env = {BROKER_ENV: broker_url, CONF_ENV: json.dumps(conf), "PYTHONPATH": pythonpath}
    children: list[Child] = []
    app = make_app(broker_url, conf)
    try:
        children.append(
            start_child(
                "chain-first",
                _worker_argv(FIRST_QUEUE, "bench-first", first_concurrency, pool),
                env,
                log_dir,
            )
        )
        for n in range(1, second_processes + 1):
            node = "bench-second" if n == 1 else f"bench-second{n}"
            children.append(
                start_child(
                    node.replace("bench-", "chain-"),
                    _worker_argv(SECOND_QUEUE, node, second_concurrency, pool),
                    env,
                    log_dir,
                )
            )
        wait_for_ping(broker_url, len(children), children, timeout_s=60)
        yield app
    finally:
        for child in reversed(children):
            child.stop()
        app.close()


def _send_chains(app: Celery, count: int) -> None:
    with app.producer_or_acquire() as producer:
        for i in range(count):
            chain(
                app.signature("bench.first", args=(i,), queue=FIRST_QUEUE),
                app.signature("bench.second", queue=SECOND_QUEUE),
            ).apply_async(producer=producer)


def _wait_done(client: redis.Redis, count: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    done = 0
    while time.monotonic() < deadline:
        done = int(client.get(DONE_KEY) or 0)
        if done >= count:
            break
        time.sleep(0.05)
    return done


def run_floor(
    broker_url: str,
    chains: int,
    *,
    warmup: int,
    first_concurrency: int,
    second_concurrency: int,
    log_dir: Path,
    timeout_s: float,
    pool: str = "threads",
    second_processes: int = 1,
) -> FloorRun:
    """N two-task chains, timed from the first send to the last task's end."""
    conf, conf_source = pipeline_worker_conf(broker_url)
    client = redis.Redis.from_url(broker_url)
    try:
        with chain_workers(
            broker_url,
            first_concurrency,
            second_concurrency,
            log_dir,
            conf,
            pool=pool,
            second_processes=second_processes,
        ) as app:
            client.delete(DONE_KEY, LAST_KEY)
            _send_chains(app, warmup)
            _wait_done(client, warmup, timeout_s)
            client.delete(DONE_KEY, LAST_KEY)
            started = time.time()
            _send_chains(app, chains)
            done = _wait_done(client, chains, timeout_s)
            polled_end = time.time()
            last = client.get(LAST_KEY)
        end = float(last) if last is not None and done >= chains else polled_end
        seconds = max(end - started, 1e-6)
        return FloorRun(
            chains=chains,
            done=done,
            seconds=seconds,
            chains_per_s=done / seconds,
            conf=conf,
            conf_source=conf_source,
        )
    finally:
        client.close()
