"""Rollup triggers and hot rows: the pipeline with the rollups off, sharded, and on one row.

The rollups (migration 0009) are written by triggers in each writer's transaction.
Every tier worker's result commit then updates the same few rows (this hour's
row of the batch's key, tier and model, and the batch's row), holding their locks
until it commits. This runs the same batch through the same stack with:

- `off`: the rollup triggers disabled (what the pipeline cost before them);
- `sharded`: as shipped, each backend adding to one of 4 shard rows;
- `one_row`: every writer on one row per key (tierroute.rollup_shards = 1),

then `off` again, so a drift of the VM's speed is bracketed. Ratios are within one run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import psycopg

from bench.backing import Backing
from bench.config import BenchConfig
from bench.pipeline import outcome_figures
from bench.pipeline_run import PipelineRun, run_pipeline, stack_options
from bench.report import Result

TRIGGERS = {
    "model_calls": ["rollup_call"],
    "jobs": ["rollup_job_insert", "rollup_job_update"],
    "ratings": ["rollup_rating"],
    "routing_decisions": ["rollup_decisions"],
}
VARIANTS = ("off", "sharded", "one_row", "off")


def _configure(backing: Backing, variant: str) -> None:
    """Enable or disable the triggers and set the shard count for new connections."""
    action = "DISABLE" if variant == "off" else "ENABLE"
    with psycopg.connect(backing.psycopg_url, autocommit=True) as conn:
        database = conn.execute("SELECT current_database()").fetchone()
        assert database is not None
        for table, triggers in TRIGGERS.items():
            for trigger in triggers:
                conn.execute(f"ALTER TABLE {table} {action} TRIGGER {trigger}")
        shards = "SET tierroute.rollup_shards = 1" if variant == "one_row" else "RESET ALL"
        conn.execute(f'ALTER DATABASE "{database[0]}" {shards}')


def _rolled_up_calls(backing: Backing) -> tuple[int, int, int]:
    """(raw calls, calls in the rollups, distinct shard rows of the hottest key)."""
    with psycopg.connect(backing.psycopg_url) as conn:
        row = conn.execute(
            """SELECT (SELECT count(*) FROM model_calls),
                      (SELECT coalesce(sum(calls), 0) FROM rollup_calls_hourly),
                      (SELECT count(DISTINCT shard) FROM rollup_calls_hourly)"""
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def run(config: BenchConfig, backing: Backing) -> Result:
    """Time the pipeline once per variant, on one stack configuration and database."""
    result = Result("rollups")
    runs: list[tuple[str, PipelineRun, tuple[int, int, int]]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="tierroute-bench-") as tmp:
            options = stack_options(
                Path(tmp),
                0,
                config.classify_concurrency,
                config.tier_concurrency,
                config.pool,
                config.tier_workers,
            )
            for variant in VARIANTS:
                _configure(backing, variant)
                pipe = run_pipeline(
                    backing,
                    options,
                    jobs=config.pipeline_jobs,
                    warmup=config.warmup_jobs,
                    timeout_s=config.timeout_s,
                )
                runs.append((variant, pipe, _rolled_up_calls(backing)))
    finally:
        _configure(backing, "sharded")
    rates: dict[str, list[float]] = {}
    details: list[dict[str, Any]] = []
    for variant, pipe, (raw, rolled, shards) in runs:
        rates.setdefault(variant, []).append(pipe.jobs_per_s)
        details.append(
            {
                "variant": variant,
                "jobs_per_s": round(pipe.jobs_per_s, 1),
                "seconds": round(pipe.seconds, 2),
                "cpu_ms_per_job_by_process": pipe.cpu_ms_per_job,
                "raw_calls": raw,
                "rolled_up_calls": rolled,
                "shards_used": shards,
                **{k: v for k, v in outcome_figures(pipe).items() if v},
            }
        )
        if variant != "off" and raw != rolled:
            result.notes.append(f"{variant}: {rolled} calls rolled up of {raw} stored")
    mean = {variant: sum(r) / len(r) for variant, r in rates.items()}
    for variant, rate in mean.items():
        result.figures[f"rollups_{variant}_jobs_per_s"] = rate
    result.figures["rollups_sharded_to_off_ratio"] = mean["sharded"] / mean["off"]
    result.figures["rollups_one_row_to_off_ratio"] = mean["one_row"] / mean["off"]
    for variant in mean:
        postgres = [p.cpu_ms_per_job.get("postgres") for v, p, _ in runs if v == variant]
        known = [ms for ms in postgres if ms is not None]
        if known:
            result.figures[f"postgres_cpu_ms_per_job_{variant}"] = sum(known) / len(known)
    result.settings = {
        "jobs": config.pipeline_jobs,
        "variants": list(VARIANTS),
        "simulated_latency_ms": 0,
        **runs[-1][1].options,
        "off_rate": "mean of the first and last run",
    }
    result.details = {"runs": details}
    return result
