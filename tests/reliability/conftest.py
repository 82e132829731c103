"""Reliability tests: real processes and services, killed and restarted mid-batch.

Each test starts its own stack (tierroute.devstack.stack, as `tierroute up` does) with
settings that make recovery quick, submits a batch over HTTP and then reads the
outcome from Postgres, which keeps answering while the API or broker is away.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from tests.conftest import truncate_all
from tierroute.config import Settings
from tierroute.devstack.procs import free_port
from tierroute.devstack.stack import RunningStack, StackOptions, run_stack
from tierroute.store.migrate import upgrade

# Leases are request timeout + 30 s (config.LEASE_MARGIN_S); Redis hands a dead
# worker's messages to another after the visibility timeout, which must outlast them.
QUICK_RECOVERY_ENV = {
    "TIERROUTE_REQUEST_TIMEOUT_S": "3",
    "TIERROUTE_CLASSIFY_TIMEOUT_S": "3",
    "TIERROUTE_VISIBILITY_TIMEOUT_S": "40",
    "TIERROUTE_RETRY_BACKOFF_MAX_S": "20",
}
MODELS = {"haiku": "claude-haiku-4-5", "sonnet": "claude-sonnet-4-6", "opus": "claude-opus-4-6"}


@contextmanager
def private_server(make: Callable[..., Any], prefix: str) -> Iterator[Any]:
    """An embedded server of our own in a temp dir, on a port it keeps across restarts."""
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    server = make(data_dir, port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def latency_env(**ms_by_tier: int) -> dict[str, str]:
    """Simulator environment giving each tier's model a fixed latency."""
    latency = {MODELS[tier]: ms for tier, ms in ms_by_tier.items()}
    return {"TIERROUTE_SIM_LATENCY_MS": json.dumps(latency)}


def plain_url(database_url: str) -> str:
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def reliability_stack(
    database_url: str,
    broker_url: str,
    *,
    env: Mapping[str, str] | None = None,
    simulator_env: Mapping[str, str] | None = None,
    tier_workers: int = 1,
    tier_concurrency: int = 16,
    classify_concurrency: int = 16,
) -> Iterator[tuple[RunningStack, StackOptions]]:
    """A stack on these services, starting from empty tables and an empty Redis db."""
    upgrade(database_url)  # a private Postgres starts empty
    truncate_all(database_url)
    if broker_url.startswith("redis://"):
        redis.Redis.from_url(broker_url).flushdb()
    settings = Settings().model_copy(
        update={
            "database_url": database_url,
            "broker_url": broker_url,
            "anthropic_api_key": None,
            "anthropic_base_url": None,
        }
    )
    data_dir = Path(tempfile.mkdtemp(prefix="tierroute-reliability-"))
    options = StackOptions(
        data_dir=data_dir,
        api_port=free_port(),
        classify_concurrency=classify_concurrency,
        tier_concurrency=tier_concurrency,
        tier_workers=tier_workers,
        env={**QUICK_RECOVERY_ENV, **(env or {})},
        simulator_env=dict(simulator_env or {}),
    )
    try:
        with run_stack(settings, options) as running:
            yield running, options
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def prompts(count: int, **fields: object) -> list[dict[str, object]]:
    """Varied prompts, so the classifier spreads them over the three tiers."""
    kinds = (
        "Convert {n} kilometres to miles.",
        "Write a Python function that returns the {n}th Fibonacci number, with tests.",
        "Review this distributed system architecture for scalability bottlenecks, consistency "
        "trade-offs and failure modes: {n} API nodes, one Postgres primary, Kafka between them.",
    )
    return [{"prompt": kinds[n % 3].format(n=n), **fields} for n in range(count)]


def submit_batch(stack: RunningStack, lines: list[dict[str, object]]) -> str:
    body = "\n".join(json.dumps(line) for line in lines).encode()
    response = httpx.post(
        f"{stack.api_url}/v1/batches",
        content=body,
        headers={
            "Authorization": f"Bearer {stack.api_key}",
            "content-type": "application/x-ndjson",
        },
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def query(database_url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Rows of one query on a fresh connection (survives a Postgres restart)."""
    with psycopg.connect(plain_url(database_url), connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def status_counts(database_url: str, batch_id: str) -> dict[str, int]:
    rows = query(
        database_url, "SELECT status, count(*) FROM jobs WHERE batch_id = %s GROUP BY 1", batch_id
    )
    return {str(status): int(n) for status, n in rows}


FINISHED = ("succeeded", "failed", "dead", "cancelled")


# Worker log lines that tell, after a failure, what the broker and the recovery did.
TELLING = (
    "broker",
    "sent again",
    "stuck",
    "Restoring",
    "Connected to",
    "feeder",
    "ERROR/",
    "CRITICAL/",
    "shutdown",
)
# Records whose traceback or stack is worth reading too.
WITH_DETAIL = ("CRITICAL/", "one round has run")


def telling_records(log: str) -> list[str]:
    """The log's telling records, the last 15: first lines, with detail where it helps."""
    records = re.split(r"\n(?=\[\d{4}-)", log)  # a record starts with its timestamp
    lines = []
    for record in [r for r in records if any(t in r.split("\n", 1)[0] for t in TELLING)][-15:]:
        first, *rest = record.splitlines() or [""]
        lines.append(f"  {first[:240]}")
        if any(t in first for t in WITH_DETAIL):
            lines += [f"    {line}" for line in rest[-40:]]
    return lines


def what_happened(database_url: str, batch_id: str, stack: RunningStack | None) -> str:
    """The batch's unfinished jobs by state, and the workers' telling log records."""
    lines = []
    try:
        rows = query(
            database_url,
            "SELECT status, tier IS NOT NULL, lease_expires_at > now(), count(*) FROM jobs "
            "WHERE batch_id = %s AND status IN ('queued', 'classifying', 'routed', 'running') "
            "GROUP BY 1, 2, 3",
            batch_id,
        )
        lines += [f"  {n} {st} (routed {r}, leased {lease})" for st, r, lease, n in rows]
    except psycopg.OperationalError as exc:
        lines.append(f"  (postgres unreachable: {exc})")
    if stack is not None:
        for name in ("worker-classify", "worker-tiers"):
            lines += [f"{name}:", *telling_records(log_text(stack, name))]
    return "\n".join(lines)


def wait_for_batch(
    database_url: str,
    batch_id: str,
    count: int,
    timeout_s: float,
    stack: RunningStack | None = None,
) -> float:
    """Seconds until every job of the batch finished; fails with the counts otherwise.

    Given the stack, the failure also says which jobs wait and what the workers logged.
    """
    began = time.monotonic()
    counts: dict[str, int] = {}
    while time.monotonic() - began < timeout_s:
        try:
            counts = status_counts(database_url, batch_id)
        except psycopg.OperationalError:
            counts = {"(postgres unreachable)": 0}
        if sum(counts.get(s, 0) for s in FINISHED) >= count:
            return time.monotonic() - began
        time.sleep(0.5)
    pytest.fail(
        f"batch {batch_id} did not finish in {timeout_s:.0f}s: {counts}\n"
        + what_happened(database_url, batch_id, stack)
    )


def complete_calls_by_job(database_url: str, batch_id: str) -> dict[str, int]:
    """Stored completion calls (model_calls, purpose complete) per job of the batch."""
    rows = query(
        database_url,
        "SELECT j.id::text, count(c.id) FROM jobs j LEFT JOIN model_calls c "
        "ON c.job_id = j.id AND c.purpose = 'complete' WHERE j.batch_id = %s GROUP BY j.id",
        batch_id,
    )
    return {job_id: int(n) for job_id, n in rows}


def assert_all_succeeded_once(database_url: str, batch_id: str, count: int) -> None:
    """Every job succeeded, and each holds exactly one completion call."""
    assert status_counts(database_url, batch_id) == {"succeeded": count}
    calls = complete_calls_by_job(database_url, batch_id)
    assert len(calls) == count
    twice = {job_id: n for job_id, n in calls.items() if n != 1}
    assert twice == {}, f"jobs without exactly one completion call: {twice}"


def sim_stats(stack: RunningStack) -> dict[str, Any]:
    assert stack.simulator_url is not None
    stats: dict[str, Any] = httpx.get(f"{stack.simulator_url}/_sim/stats", timeout=10).json()
    return stats


def log_text(stack: RunningStack, name: str) -> str:
    path = stack.log_dir / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""
