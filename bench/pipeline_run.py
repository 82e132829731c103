"""One timed batch through a real stack: API → classify → tier → Postgres."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.backing import Backing
from bench.config import BenchConfig
from bench.cpu import CpuMeter
from bench.sampler import Sampler
from bench.workload import (
    auth,
    batch_span,
    ndjson_body,
    routing_outcomes,
    sim_reset,
    sim_stats,
    submit_batch,
    wait_for_batch,
)
from tierroute.devstack.procs import free_port
from tierroute.devstack.stack import StackOptions, run_stack

TIER_QUEUES = ("haiku", "sonnet", "opus")


@dataclass
class PipelineRun:
    """What one timed batch did: rate, outcome counts, simulator stats, memory."""

    jobs: int
    finished: int
    seconds: float
    jobs_per_s: float
    complete: bool
    counts: dict[str, int]
    sim: dict[str, Any]
    rss: dict[str, float]
    gauges: dict[str, float]
    calls: dict[str, int]
    fallbacks: dict[str, int]
    options: dict[str, Any] = field(default_factory=dict)
    timing: str = "sql"
    # CPU milliseconds per job by process (and Postgres, Redis), during the timed batch.
    cpu_ms_per_job: dict[str, float] = field(default_factory=dict)


def stack_options(
    data_dir: Path,
    latency_ms: int,
    classify_concurrency: int | None,
    tier_concurrency: int | None,
    pool: str | None = None,
    tier_workers: int | None = None,
) -> StackOptions:
    """The stack's own defaults unless a concurrency is given, so core tuning shows up."""
    options = StackOptions(
        data_dir=data_dir,
        api_port=free_port(),
        simulator_env={"TIERROUTE_SIM_DEFAULT_LATENCY_MS": str(latency_ms)},
    )
    if classify_concurrency is not None:
        options.classify_concurrency = classify_concurrency
    if tier_concurrency is not None:
        options.tier_concurrency = tier_concurrency
    if pool is not None:
        options.pool = pool
    if tier_workers is not None:
        options.tier_workers = tier_workers
    return options


def zero_latency_options(data_dir: Path, config: BenchConfig) -> StackOptions:
    """The pipeline benchmarks' stack: no model latency, the run's concurrency and pool."""
    return stack_options(
        data_dir,
        0,
        config.classify_concurrency,
        config.tier_concurrency,
        config.pool,
        config.tier_workers,
    )


def run_pipeline(
    backing: Backing,
    options: StackOptions,
    *,
    jobs: int,
    warmup: int,
    timeout_s: float,
    reset: bool = True,
    around_batch: Callable[[], AbstractContextManager[object]] | None = None,
) -> PipelineRun:
    """Warm the stack up, then time one batch of `jobs` from submit to last finish.

    `reset=False` keeps what the database holds (a benchmark that filled it first);
    `around_batch` is entered just before the timed submit and left once the batch is
    done, so work meant to overlap the batch (a prune) overlaps it and not the warm-up.
    """
    if reset:
        backing.reset()
    queues = redis.Redis.from_url(backing.broker_url)
    gauges = {
        "classify_queue_depth_max": lambda: float(queues.llen("classify")),
        "tier_queue_depth_max": lambda: float(sum(queues.llen(q) for q in TIER_QUEUES)),
    }
    settings = backing.settings()
    try:
        with (
            run_stack(settings, options) as stack,
            httpx.Client(base_url=stack.api_url, timeout=600, headers=auth(stack.api_key)) as api,
            Sampler.for_children(stack.children, gauges) as sampler,
        ):
            assert stack.simulator_url is not None
            if warmup:
                # Lazy per-process setup (pools, SDK clients) is not what we measure.
                warm = submit_batch(api, ndjson_body(warmup, "warmup"))
                if warm.batch_id is None:
                    raise RuntimeError(f"warm-up batch refused: {warm.status} {warm.detail}")
                wait_for_batch(api, warm.batch_id, timeout_s)
            sim_reset(stack.simulator_url)
            body = ndjson_body(jobs, "bench")
            cpu = CpuMeter(stack.children)
            with around_batch() if around_batch else contextlib.nullcontext():
                cpu.start()
                started = time.time()
                submitted = submit_batch(api, body)
                if submitted.batch_id is None:
                    raise RuntimeError(f"batch refused: {submitted.status} {submitted.detail}")
                view = wait_for_batch(api, submitted.batch_id, timeout_s)
                polled_end = time.time()
            cpu_ms_per_job = cpu.ms_per_job(jobs)
            stats = sim_stats(stack.simulator_url)
        _, last_finished = batch_span(backing.psycopg_url, submitted.batch_id)
        calls, fallbacks = routing_outcomes(backing.psycopg_url, submitted.batch_id)
    finally:
        queues.close()
    complete = bool(view.get("done"))
    end, timing = (last_finished, "sql") if complete and last_finished else (polled_end, "poll")
    seconds = max(end - started, 1e-6)
    finished = int(view.get("finished", 0))
    return PipelineRun(
        jobs=jobs,
        finished=finished,
        seconds=seconds,
        jobs_per_s=finished / seconds,
        complete=complete,
        counts=dict(view.get("counts", {})),
        sim=stats,
        rss=sampler.rss_figures(),
        gauges=dict(sampler.gauge_max),
        calls=calls,
        fallbacks=fallbacks,
        options={
            "classify_concurrency": options.classify_concurrency,
            "tier_concurrency": options.tier_concurrency,
            "simulator_env": options.simulator_env,
            "warmup_jobs": warmup,
            "classifier": settings.classifier,
        },
        timing=timing,
        cpu_ms_per_job=cpu_ms_per_job,
    )
