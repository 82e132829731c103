"""Parts of the stack started on their own: the API without workers, or one classify worker.

The submit benchmark needs the API with nobody consuming, which the full stack
cannot give. Each part starts from the entry point docs/operations.md documents.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from celery import Celery

from bench.backing import Backing
from tierroute.devstack.procs import Child, free_port, start_child, wait_http
from tierroute.store.keys import issue_key


@dataclass
class Solo:
    """The processes started, and where to reach them."""

    api_url: str | None
    api_key: str | None  # created when the API is started
    simulator_url: str
    children: list[Child]


def wait_for_ping(broker_url: str, expected: int, children: list[Child], timeout_s: float) -> None:
    """Wait until `expected` Celery workers on `broker_url` answer a ping."""
    app = Celery(broker=broker_url)
    deadline = time.monotonic() + timeout_s
    try:
        while len(app.control.ping(timeout=1.0) or []) < expected:
            for child in children:
                if not child.alive():
                    raise RuntimeError(f"{child.name} exited early:\n{child.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers did not answer a ping within {timeout_s:.0f}s")
    finally:
        app.close()


@contextlib.contextmanager
def solo(
    backing: Backing,
    log_dir: Path,
    *,
    api: bool = False,
    classify_worker: bool = False,
    sim_latency_ms: int = 0,
    classify_concurrency: int = 8,
    classifier: str | None = None,
) -> Iterator[Solo]:
    """Start the simulator plus the API and/or a classify worker; stop them on exit."""
    children: list[Child] = []
    try:
        sim_port = free_port()
        simulator_url = f"http://127.0.0.1:{sim_port}"
        sim_env = {"TIERROUTE_SIM_DEFAULT_LATENCY_MS": str(sim_latency_ms)}
        sim = start_child(
            "simulator",
            [sys.executable, "-m", "tierroute", "sim", "--port", str(sim_port)],
            sim_env,
            log_dir,
        )
        children.append(sim)
        wait_http(f"{simulator_url}/_sim/stats", sim, timeout_s=30)
        # The simulator's URL even for the API: nothing here may reach the real API.
        env = {
            "TIERROUTE_DATABASE_URL": backing.database_url,
            "TIERROUTE_BROKER_URL": backing.broker_url,
            "ANTHROPIC_BASE_URL": simulator_url,
        }
        if classifier is not None:
            env["TIERROUTE_CLASSIFIER"] = classifier
        api_url = api_key = None
        if api:
            api_key = issue_key(backing.database_url, "bench solo")
            port = free_port()
            api_url = f"http://127.0.0.1:{port}"
            child = start_child(
                "api",
                [sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1",
                 "--port", str(port), "--log-level", "warning"],
                env,
                log_dir,
            )  # fmt: skip
            children.append(child)
            wait_http(f"{api_url}/healthz", child, timeout_s=60)
        if classify_worker:
            worker = start_child(
                "worker-classify",
                [sys.executable, "-m", "celery", "-A", "worker", "worker", "-Q", "classify",
                 "-n", "bench-classify@%h", "-P", "threads", "-c", str(classify_concurrency),
                 "--loglevel", "INFO"],
                env,
                log_dir,
            )  # fmt: skip
            children.append(worker)
            wait_for_ping(backing.broker_url, 1, [worker], timeout_s=60)
        yield Solo(api_url=api_url, api_key=api_key, simulator_url=simulator_url, children=children)
    finally:
        for child in reversed(children):
            # Short grace: a worker blocked on a slow simulated call need not finish it.
            child.stop(timeout_s=5)
