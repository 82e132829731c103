"""Sizes and knobs of a benchmark run: full size for `make bench`, smoke size for tests."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench.report import DEFAULT_RESULTS_DIR


@dataclass(frozen=True)
class BenchConfig:
    """Everything a benchmark may vary; recorded under "settings" in each result."""

    results_dir: Path = DEFAULT_RESULTS_DIR
    smoke: bool = False
    # (a) pipeline and its floor. None = the stack's own default concurrency.
    # Large enough that the fixed part of a run (the first and the last 2 s call in
    # (b), the ramp-up) is small beside the steady rate being compared.
    pipeline_jobs: int = 20_000
    warmup_jobs: int = 50
    classify_concurrency: int | None = None
    tier_concurrency: int | None = None
    # The workers' Celery pool and tier worker processes (the floor mirrors both).
    pool: str | None = None
    tier_workers: int | None = None
    # (b) latency hiding: every model answers after this long.
    latency_jobs: int = 20_000
    latency_ms: int = 2000
    # None: the stack's default. Tier workers wait for calls on an event loop, so
    # `-c` messages of up to TIERROUTE_COMPLETE_BATCH_SIZE jobs each can be in flight.
    latency_tier_concurrency: int | None = None
    # None: the stack's default. The local classifier makes no model call, so the
    # latency does not reach it; with TIERROUTE_CLASSIFIER=llm, raise it to match.
    latency_classify_concurrency: int | None = None
    # (c) bulk submit, and the naive per-row path.
    submit_prompts: int = 100_000
    naive_prompts: int = 5_000
    # (d) API latency at a fixed rate.
    api_rate: int = 200
    api_seconds: int = 30
    # (f) classifiers: prompts each classifier decides (local, hybrid, llm).
    classifier_prompts: int = 2000
    # Jobs the growth benchmark fills the tables to, one timing pass per size; `make
    # bench` runs the smallest, `make bench-growth` 0.1M, 1M and 5M.
    growth_sizes: tuple[int, ...] = (100_000,)
    # growth's one big batch (key 0, this last hour), on top of every size's spread jobs:
    # the batch whose status is timed.
    growth_big_batch: int = 100_000
    # Prompts in growth's bulk submit, timed on the empty database and at each size.
    growth_submit_prompts: int = 10_000
    # prune: old jobs filled (as growth fills them, 120 days back) for `tierroute prune`
    # to delete while a pipeline_jobs batch runs.
    prune_jobs: int = 1_000_000
    # (g) calls: seconds each case of bench/calls.py is measured for.
    calls_seconds: float = 8.0
    # Flower (issue 16): its RSS after each of these batches, with its task cap.
    flower_batches: int = 3
    flower_batch_prompts: int = 100_000
    # Give up waiting for a batch after this long (partial results are still written).
    timeout_s: float = 900.0

    @classmethod
    def smoke_sized(cls, **changes: Any) -> BenchConfig:
        """Small enough for the test suite; exercises every code path."""
        small = cls(
            smoke=True,
            pipeline_jobs=30,
            warmup_jobs=5,
            classify_concurrency=4,
            tier_concurrency=8,
            latency_jobs=30,
            latency_ms=200,
            latency_tier_concurrency=40,
            latency_classify_concurrency=40,
            submit_prompts=1_000,
            naive_prompts=100,
            api_seconds=2,
            classifier_prompts=60,
            growth_sizes=(3_000,),
            growth_big_batch=1_000,
            growth_submit_prompts=200,
            prune_jobs=2_000,
            calls_seconds=1.0,
            flower_batch_prompts=50,
            timeout_s=120.0,
        )
        return replace(small, **changes)

    def as_settings(self) -> dict[str, Any]:
        """JSON-ready settings."""
        data = asdict(self)
        data["results_dir"] = str(self.results_dir)
        return data
