"""(a) pipeline: jobs/s through the whole stack at zero model latency, and the chain floor."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.backing import Backing
from bench.config import BenchConfig
from bench.floor import FloorRun, run_floor
from bench.pipeline_run import PipelineRun, run_pipeline, zero_latency_options
from bench.report import Result

# A local classifier makes no call, so only these owe one billed classify call per job.
CLASSIFIERS_THAT_CALL_A_MODEL = ("llm",)


def pipeline_details(run: PipelineRun) -> dict[str, object]:
    """What a reader needs to trust a pipeline figure: counts, timing, simulator stats."""
    return {
        "jobs": run.jobs,
        "finished": run.finished,
        "seconds": round(run.seconds, 3),
        "complete": run.complete,
        "timing": run.timing,
        "cpu_ms_per_job": run.cpu_ms_per_job,
        "counts": run.counts,
        "model_calls_by_purpose": run.calls,
        "classifier_fallbacks": run.fallbacks,
        "simulator": {k: run.sim.get(k) for k in ("total", "by_status", "peak_in_flight")},
    }


def outcome_figures(run: PipelineRun) -> dict[str, float]:
    """Jobs that failed, and model calls that never happened: both make a run look faster."""
    figures = {
        "jobs_failed": run.counts.get("failed", 0),
        "complete_calls_missing": max(0, run.finished - run.calls.get("complete", 0)),
        "cpu_ms_per_job": run.cpu_ms_per_job.get("total", 0.0),
    }
    if run.options.get("classifier") in CLASSIFIERS_THAT_CALL_A_MODEL:
        figures["classify_calls_missing"] = max(0, run.finished - run.calls.get("classify", 0))
    return figures


def outcome_notes(run: PipelineRun) -> list[str]:
    """Warnings a reader of the figures should not miss."""
    notes = []
    if not run.complete:
        notes.append(f"batch not done in time ({run.finished}/{run.jobs}): partial rate")
    if run.counts.get("failed"):
        notes.append(f"{run.counts['failed']} jobs failed")
    missing = outcome_figures(run)
    for purpose in ("classify", "complete"):
        if missing.get(f"{purpose}_calls_missing"):
            notes.append(
                f"{missing[f'{purpose}_calls_missing']:.0f} jobs have no billed {purpose} call "
                f"(fallback reasons: {run.fallbacks})"
            )
    return notes


def run(config: BenchConfig, backing: Backing) -> Result:
    """Time N raw chains, N jobs through the stack, then N chains again, on one broker and pools.

    The floor runs before and after the pipeline and counts as the mean of the two:
    this VM's speed drifts by tens of percent within a minute, and bracketing the
    pipeline cancels a steady drift instead of charging it to one side.
    """
    result = Result("pipeline")
    with tempfile.TemporaryDirectory(prefix="tierroute-bench-") as tmp:
        options = zero_latency_options(Path(tmp), config)

        def floor_run() -> FloorRun:
            # Each side runs with the CPUs to itself: the stack is down during the floor.
            backing.reset()
            return run_floor(
                backing.broker_url,
                config.pipeline_jobs,
                warmup=config.warmup_jobs,
                first_concurrency=options.classify_concurrency,
                second_concurrency=options.tier_concurrency,
                pool=options.pool,
                second_processes=options.tier_workers,
                log_dir=Path(tmp) / "logs",
                timeout_s=config.timeout_s,
            )

        floor_before = floor_run()
        backing.reset()
        pipe = run_pipeline(
            backing,
            options,
            jobs=config.pipeline_jobs,
            warmup=config.warmup_jobs,
            timeout_s=config.timeout_s,
        )
        floor_after = floor_run()
    floors = (floor_before, floor_after)
    floor_per_s = sum(f.chains_per_s for f in floors) / len(floors)
    result.figures["pipeline_jobs_per_s"] = pipe.jobs_per_s
    result.figures["chain_floor_per_s"] = floor_per_s
    result.figures["pipeline_to_floor_ratio"] = pipe.jobs_per_s / floor_per_s
    result.figures.update(outcome_figures(pipe))
    result.figures.update(pipe.gauges)
    result.figures.update(pipe.rss)
    result.settings = {
        "jobs": config.pipeline_jobs,
        "simulated_latency_ms": 0,
        **pipe.options,
        "floor": {
            "chains": config.pipeline_jobs,
            "app": "bench.chain_app",
            "pool": options.pool,
            "first_concurrency": options.classify_concurrency,
            "second_concurrency": options.tier_concurrency,
            "second_processes": options.tier_workers,
            "completion": "second task INCRs a Redis counter and stamps the time",
            "runs": "before and after the pipeline; chain_floor_per_s is their mean",
            "celery_conf": floor_after.conf,
            "celery_conf_source": floor_after.conf_source,
        },
        "broker": "redis (same URL for pipeline and floor)",
        "smoke": config.smoke,
    }
    result.details = {
        "pipeline": pipeline_details(pipe),
        "floor": [
            {
                "when": when,
                "chains": floor.chains,
                "done": floor.done,
                "seconds": round(floor.seconds, 3),
                "chains_per_s": round(floor.chains_per_s, 1),
            }
            for when, floor in zip(("before", "after"), floors, strict=True)
        ],
    }
    result.notes.extend(outcome_notes(pipe))
    for floor in floors:
        if floor.done < floor.chains:
            result.notes.append(f"only {floor.done}/{floor.chains} chains finished: partial rate")
    return result
