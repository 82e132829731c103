"""Rollups on and off the commit path: the pipeline with the rollups off, folded
(as shipped), and kept in the writers' transactions (as before migration 0016).

- `off`: no rollup work at all (the triggers disabled): what the pipeline costs
  without rollups;
- `folded`: as shipped (migration 0016): each writer's trigger appends what it
  touched to `rollup_pending`, and the beat (and every reader) folds it in sets;
- `in_transaction`: migration 0015's triggers, which did the rollup work in each
  writer's transaction on 4 shard rows per key, recreated for the run;

then `off` again, so a drift of the VM's speed is bracketed. Ratios are within one run.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Any

import psycopg

from bench.backing import Backing
from bench.config import BenchConfig
from bench.pipeline import outcome_figures
from bench.pipeline_run import PipelineRun, run_pipeline, zero_latency_options
from bench.report import Result

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations" / "versions"
# The shipped triggers (0016): they list what a write touched.
PENDING_TRIGGERS = {
    "model_calls": ["rollup_call"],
    "jobs": ["rollup_job_insert", "rollup_job_update"],
    "ratings": ["rollup_rating"],
}
# 0015's in-transaction triggers, recreated under these names for the run.
OLD = "bench_0015_"
VARIANTS = ("off", "folded", "in_transaction", "off")


def _old_triggers() -> list[str]:
    path = MIGRATIONS / "0015_rollup_success_once.py"
    spec = importlib.util.spec_from_file_location("rollups_0015", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    jobs: list[str] = module._job_triggers(deferred=True)[2:]
    return [
        *(sql.replace("TRIGGER rollup_job_", f"TRIGGER {OLD}rollup_job_") for sql in jobs),
        f"""CREATE TRIGGER {OLD}rollup_call AFTER INSERT ON model_calls
            FOR EACH ROW EXECUTE FUNCTION tierroute_rollup_call()""",
        f"""CREATE TRIGGER {OLD}rollup_rating AFTER INSERT ON ratings
            FOR EACH ROW EXECUTE FUNCTION tierroute_rollup_rating()""",
    ]


def _set_triggers(conn: psycopg.Connection[Any], prefix: str, enable: bool) -> None:
    action = "ENABLE" if enable else "DISABLE"
    for table, triggers in PENDING_TRIGGERS.items():
        for trigger in triggers:
            conn.execute(f"ALTER TABLE {table} {action} TRIGGER {prefix}{trigger}")


def _configure(backing: Backing, variant: str | None) -> None:
    """Switch to a variant's triggers; None restores the shipped ones alone."""
    with psycopg.connect(backing.psycopg_url, autocommit=True) as conn:
        conn.execute("SELECT tierroute_rollup_fold()")
        old_exist = conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname LIKE %s", (f"{OLD}%",)
        ).fetchone()
        if variant is None:
            if old_exist and old_exist[0]:
                for table, triggers in PENDING_TRIGGERS.items():
                    for trigger in triggers:
                        conn.execute(f"DROP TRIGGER {OLD}{trigger} ON {table}")
            _set_triggers(conn, "", True)
            conn.execute("ALTER TABLE routing_decisions ENABLE TRIGGER rollup_decisions")
            return
        if not (old_exist and old_exist[0]):
            for sql in _old_triggers():
                conn.execute(sql)
        _set_triggers(conn, "", variant == "folded")
        _set_triggers(conn, OLD, variant == "in_transaction")
        decisions = "DISABLE" if variant == "off" else "ENABLE"
        conn.execute(f"ALTER TABLE routing_decisions {decisions} TRIGGER rollup_decisions")


def _rolled_up_calls(backing: Backing) -> tuple[int, int, int]:
    """(raw calls, calls in the rollups, distinct shard rows), after a fold."""
    with psycopg.connect(backing.psycopg_url) as conn:
        conn.execute("SELECT tierroute_rollup_fold()")
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
            options = zero_latency_options(Path(tmp), config)
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
        _configure(backing, None)
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
    result.figures["rollups_folded_to_off_ratio"] = mean["folded"] / mean["off"]
    result.figures["rollups_in_transaction_to_off_ratio"] = mean["in_transaction"] / mean["off"]
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
