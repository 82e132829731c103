"""A whole stack of real processes (simulator, API, Celery workers, Flower) per module."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Services, truncate_all
from tierroute.config import Settings
from tierroute.devstack.procs import free_port
from tierroute.devstack.stack import RunningStack, StackOptions, run_stack

FLOWER_AUTH = ("flower", "e2e-secret")
# Tests marked with this run once per broker; the others on Redis only.
ON_EVERY_BROKER = pytest.mark.parametrize("stack", ["redis", "amqp"], indirect=True)


@pytest.fixture(scope="module", params=["redis"])
def stack(request: pytest.FixtureRequest, services: Services) -> Iterator[RunningStack]:
    """The whole stack on Redis, or on RabbitMQ (`amqp`) with the limiter on Redis."""
    truncate_all(services.database_url)
    # The lesson-example and /v1/route tests check the Haiku classifier's decisions.
    env: dict[str, str] = {"TIERROUTE_CLASSIFIER": "llm"}
    broker_url = services.broker_url
    if request.param == "amqp":
        broker_url = request.getfixturevalue("amqp_broker")
        # The shared rate limiter keeps its buckets in Redis, which RabbitMQ is not.
        env["TIERROUTE_REDIS_URL"] = services.broker_url
    with started_stack(
        services,
        "tierroute-e2e-",
        broker_url=broker_url,
        flower_port=free_port(),
        flower_auth=":".join(FLOWER_AUTH),
        classify_concurrency=4,
        tier_concurrency=8,
        env=env,
    ) as running:
        yield running


@contextmanager
def started_stack(
    services: Services, prefix: str, *, broker_url: str | None = None, **options: Any
) -> Iterator[RunningStack]:
    """Real processes on the test services (simulated models), in a data dir removed after."""
    settings = Settings().model_copy(
        update={
            "database_url": services.database_url,
            "broker_url": broker_url or services.broker_url,
            "anthropic_api_key": None,
            "anthropic_base_url": None,
        }
    )
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        stack_options = StackOptions(data_dir=data_dir, api_port=free_port(), **options)
        with run_stack(settings, stack_options) as running:
            yield running
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def api_client(stack: RunningStack, timeout_s: float = 30) -> httpx.Client:
    """An HTTP client for the stack's API, with its key."""
    auth = {"Authorization": f"Bearer {stack.api_key}"}
    return httpx.Client(base_url=stack.api_url, timeout=timeout_s, headers=auth)


@pytest.fixture
def api(stack: RunningStack) -> Iterator[httpx.Client]:
    with api_client(stack) as client:
        yield client


def wait_for_job(api: httpx.Client, job_id: str, timeout_s: float = 90) -> dict[str, Any]:
    """Poll until the job has finished; fail with its last state otherwise."""
    deadline = time.monotonic() + timeout_s
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = api.get(f"/v1/jobs/{job_id}").json()
        if view["status"] in ("succeeded", "failed"):
            return view
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {view}")


def wait_for_batch(api: httpx.Client, batch_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = api.get(f"/v1/batches/{batch_id}").json()
        if view["done"]:
            return view
        time.sleep(0.3)
    raise AssertionError(f"batch {batch_id} did not finish: {view}")
