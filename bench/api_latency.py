"""(d) API latency: GET /v1/jobs/{id} at a fixed request rate, p50 and p99."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import httpx

from bench.backing import Backing
from bench.config import BenchConfig
from bench.loadgen import ensure_tools, run_load
from bench.pipeline_run import stack_options
from bench.report import Result
from bench.sampler import Sampler
from bench.workload import auth
from tierroute.devstack.stack import run_stack

WARMUP_REQUESTS = 100


def _finished_job(api: httpx.Client, timeout_s: float) -> str:
    """Submit one prompt and wait until it has finished; its id is the target."""
    response = api.post("/v1/jobs", json={"prompt": "Convert 72 degrees Fahrenheit to Celsius."})
    response.raise_for_status()
    job_id = str(response.json()["id"])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if api.get(f"/v1/jobs/{job_id}").json()["status"] in ("succeeded", "failed"):
            return job_id
        time.sleep(0.1)
    raise RuntimeError(f"job {job_id} did not finish within {timeout_s:.0f}s")


def run(config: BenchConfig, backing: Backing) -> Result:
    """A finished job, then `api_rate` req/s for `api_seconds` with the load tool."""
    ensure_tools()
    result = Result("api")
    backing.reset()
    with tempfile.TemporaryDirectory(prefix="tierroute-bench-") as tmp:
        options = stack_options(Path(tmp), 0, config.classify_concurrency, config.tier_concurrency)
        with (
            run_stack(backing.settings(), options) as stack,
            httpx.Client(base_url=stack.api_url, timeout=30, headers=auth(stack.api_key)) as api,
        ):
            job_id = _finished_job(api, config.timeout_s)
            url = f"{stack.api_url}/v1/jobs/{job_id}"
            for _ in range(WARMUP_REQUESTS):
                api.get(url).raise_for_status()
            with Sampler.for_children(stack.children) as sampler:
                load = run_load(url, config.api_rate, config.api_seconds, stack.api_key)
    result.figures["api_p50_ms"] = load.p50_ms
    result.figures["api_p90_ms"] = load.p90_ms
    result.figures["api_p99_ms"] = load.p99_ms
    result.figures["api_max_ms"] = load.max_ms
    result.figures["api_achieved_rps"] = load.achieved_rps
    result.figures["api_errors"] = load.errors
    result.figures["api_requests"] = load.requests
    result.figures.update(sampler.rss_figures())
    result.settings = {
        "target": "GET /v1/jobs/{id} of a finished job",
        "rate_per_s": config.api_rate,
        "seconds": config.api_seconds,
        "tool": "loadtest (npm), open loop: a drift-corrected timer fires each request",
        "latency_resolution_ms": 1,
        "percentiles": "nearest rank; loadtest floors to whole ms, we report bucket middles",
        "warmup_requests": WARMUP_REQUESTS,
        "smoke": config.smoke,
    }
    result.details = {"error_codes": load.error_codes, "loadtest": load.raw}
    if load.errors:
        result.notes.append(f"{load.errors} requests failed: {load.error_codes}")
    if load.achieved_rps < 0.95 * config.api_rate:
        result.notes.append(f"achieved only {load.achieved_rps:.0f} of {config.api_rate} req/s")
    return result
