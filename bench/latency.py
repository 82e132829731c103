"""(b) latency hiding: the pipeline with slow models, and the peak calls in flight."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.backing import Backing
from bench.config import BenchConfig
from bench.pipeline import outcome_figures, outcome_notes, pipeline_details
from bench.pipeline_run import run_pipeline, stack_options
from bench.report import Result

TIER_CLIENT_PREFIX = "tiers-"
CLASSIFY_CLIENT_PREFIX = "classify-"


def peak_for(stats: dict[str, Any], prefix: str) -> int | None:
    """The highest per-process peak among clients named `prefix<pid>`, if any sent one."""
    by_client: dict[str, int] = stats.get("peak_in_flight_by_client") or {}
    peaks = [n for client, n in by_client.items() if client.startswith(prefix)]
    return max(peaks) if peaks else None


def run(config: BenchConfig, backing: Backing, pipeline_jobs_per_s: float | None) -> Result:
    """Time N jobs at `latency_ms` per model call; read the peaks off the simulator."""
    result = Result("latency")
    with tempfile.TemporaryDirectory(prefix="tierroute-bench-") as tmp:
        options = stack_options(
            Path(tmp),
            config.latency_ms,
            config.latency_classify_concurrency,
            config.latency_tier_concurrency,
            config.pool,
            config.tier_workers,
        )
        pipe = run_pipeline(
            backing,
            options,
            jobs=config.latency_jobs,
            warmup=config.warmup_jobs,
            timeout_s=config.timeout_s,
        )
    tier_peak = peak_for(pipe.sim, TIER_CLIENT_PREFIX)
    classify_peak = peak_for(pipe.sim, CLASSIFY_CLIENT_PREFIX)
    if tier_peak is None:
        # Workers that do not name themselves: the global peak counts every process's
        # calls, the classifier's included, so it overstates one tier worker's.
        inflight, source = int(pipe.sim.get("peak_in_flight", 0)), "global peak_in_flight"
        result.notes.append(
            "no x-tierroute-client header seen: inflight_peak is the simulator's global peak"
        )
    else:
        inflight, source = tier_peak, "max peak_in_flight_by_client over tiers-*"
    result.figures["latency_jobs_per_s"] = pipe.jobs_per_s
    result.figures["inflight_peak"] = inflight
    if classify_peak is not None:
        result.figures["inflight_peak_classify"] = classify_peak
    result.figures["inflight_peak_all_processes"] = int(pipe.sim.get("peak_in_flight", 0))
    if pipeline_jobs_per_s:
        result.figures["latency_to_pipeline_ratio"] = pipe.jobs_per_s / pipeline_jobs_per_s
    else:
        result.notes.append("no pipeline result to compare with: run the pipeline benchmark too")
    result.figures.update(outcome_figures(pipe))
    result.figures.update(pipe.gauges)
    result.figures.update(pipe.rss)
    result.settings = {
        "jobs": config.latency_jobs,
        "simulated_latency_ms": config.latency_ms,
        **pipe.options,
        "inflight_source": source,
        "pipeline_jobs_per_s_compared": pipeline_jobs_per_s,
        "smoke": config.smoke,
    }
    result.details = {
        "pipeline": pipeline_details(pipe),
        "peak_in_flight_by_client": pipe.sim.get("peak_in_flight_by_client"),
    }
    result.notes.extend(outcome_notes(pipe))
    return result
