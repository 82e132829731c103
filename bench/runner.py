"""Run the chosen benchmarks in order, write each result file, collect failures."""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

from bench import (
    adversarial,
    api_latency,
    calls,
    classifiers,
    flower,
    growth,
    latency,
    memory,
    pipeline,
    prune,
    rollups,
    submit,
)
from bench.backing import PG_ADMIN_URL, Backing, fresh_backing
from bench.config import BenchConfig
from bench.report import Result, read_result, write_result

# Memory last: it gathers what (a)–(c) sampled. Classifiers and calls need no database.
# Adversarial (issue 14) takes about a minute at full size.
BENCHMARKS = (
    "pipeline",
    "latency",
    "submit",
    "api",
    "adversarial",
    "classifiers",
    "calls",
    "memory",
    "rollups",
    "growth",
    "prune",
    "flower",
)
# Run only when named (--only): the rollups comparison runs the pipeline four times,
# flower three batches of 100,000 (about 20 minutes), and prune fills 1M old jobs and
# runs the pipeline three times (about 10 minutes).
OPT_IN = ("rollups", "flower", "prune")
DEFAULT_BENCHMARKS = tuple(name for name in BENCHMARKS if name not in OPT_IN)

log = logging.getLogger("bench")


def _pipeline_rate(config: BenchConfig, done: dict[str, dict[str, Any]]) -> float | None:
    data = done.get("pipeline") or read_result(config.results_dir, "pipeline")
    if data is None:
        return None
    rate = data["figures"].get("pipeline_jobs_per_s")
    return float(rate) if rate else None


def _run_one(
    name: str, config: BenchConfig, backing: Backing, done: dict[str, dict[str, Any]]
) -> Result:
    if name == "pipeline":
        return pipeline.run(config, backing)
    if name == "latency":
        return latency.run(config, backing, _pipeline_rate(config, done))
    if name == "submit":
        return submit.run(config, backing)
    if name == "api":
        return api_latency.run(config, backing)
    if name == "adversarial":
        return adversarial.run(config, backing)
    if name == "rollups":
        return rollups.run(config, backing)
    if name == "growth":
        return growth.run(config, backing)
    if name == "prune":
        return prune.run(config, backing)
    if name == "flower":
        return flower.run(config, backing)
    raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")


@contextlib.contextmanager
def _backing(
    backing: Backing | None, pg_admin_url: str, redis_url: str | None
) -> Iterator[Backing]:
    if backing is not None:
        yield backing
        return
    with fresh_backing(pg_admin_url, redis_url) as fresh:
        yield fresh


def run_benchmarks(
    config: BenchConfig,
    names: Sequence[str] = BENCHMARKS,
    *,
    backing: Backing | None = None,
    pg_admin_url: str = PG_ADMIN_URL,
    redis_url: str | None = None,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Run `names` in the canonical order; returns written results and errors by name."""
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    ordered = [name for name in BENCHMARKS if name in names]
    done: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        shared: Backing | None = None
        for name in ordered:
            log.info("bench %s: running", name)
            try:
                if name == "memory":
                    result = memory.run(config.results_dir)
                elif name == "classifiers":
                    result = classifiers.run(config)
                elif name == "calls":
                    result = calls.run(config)
                else:
                    if shared is None:
                        shared = stack.enter_context(_backing(backing, pg_admin_url, redis_url))
                    result = _run_one(name, config, shared, done)
            except Exception as exc:
                # One broken benchmark must not cost the others' numbers.
                log.error("bench %s failed:\n%s", name, traceback.format_exc())
                errors[name] = f"{type(exc).__name__}: {exc}"
                continue
            result.settings.setdefault("smoke", config.smoke)
            path, done[name] = write_result(result, config.results_dir)
            log.info("bench %s: wrote %s", name, path)
    return [done[name] for name in ordered if name in done], errors
