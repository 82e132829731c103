"""`python -m bench [--only NAME ...] [--smoke]`: run, write bench/results/*.json, print a table."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from bench.backing import PG_ADMIN_URL
from bench.config import BenchConfig
from bench.report import format_table
from bench.runner import BENCHMARKS, DEFAULT_BENCHMARKS, run_benchmarks


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--only",
        action="append",
        choices=BENCHMARKS,
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    p.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite")
    p.add_argument("--results-dir", type=Path, help="where NAME.json go (default bench/results)")
    p.add_argument("--jobs", type=int, help="jobs (and floor chains) for pipeline and latency")
    p.add_argument("--classify-concurrency", type=int, help="pipeline/api classify threads")
    p.add_argument("--tier-concurrency", type=int, help="pipeline/api tier worker threads")
    p.add_argument("--pool", choices=("threads", "gevent"), help="workers' Celery pool")
    p.add_argument("--tier-workers", type=int, help="tier worker processes")
    p.add_argument("--latency-ms", type=int, help="simulated latency of every model (latency)")
    p.add_argument("--latency-tier-concurrency", type=int, help="tier threads (latency)")
    p.add_argument("--latency-classify-concurrency", type=int, help="classify threads (latency)")
    p.add_argument("--submit-prompts", type=int, help="prompts in the bulk submit")
    p.add_argument("--naive-prompts", type=int, help="prompts through the naive path")
    p.add_argument("--api-rate", type=int, help="requests per second (api)")
    p.add_argument("--api-seconds", type=int, help="seconds of load (api)")
    p.add_argument("--classifier-prompts", type=int, help="prompts per classifier (classifiers)")
    p.add_argument("--growth-sizes", help="growth: comma-separated job counts, e.g. 1e5,1e6")
    p.add_argument("--flower-batches", type=int, help="flower: batches to run (default 3)")
    p.add_argument("--flower-batch-prompts", type=int, help="flower: prompts per batch")
    p.add_argument("--prune-jobs", type=float, help="prune: old jobs to fill and prune, e.g. 1e6")
    p.add_argument("--pg-admin-url", default=PG_ADMIN_URL, help="Postgres to create a DB on")
    p.add_argument("--redis-url", help="Redis database to use (default: an empty one on :6379)")
    return p  # fmt: skip


def _sizes(text: str | None) -> tuple[int, ...] | None:
    """ "1e5,1e6" -> (100000, 1000000), ascending; None when not given."""
    return tuple(sorted(int(float(part)) for part in text.split(","))) if text else None


def config_from(args: argparse.Namespace) -> BenchConfig:
    """The run's config: full or smoke size, then any explicit overrides."""
    config = BenchConfig.smoke_sized() if args.smoke else BenchConfig()
    overrides = {
        "results_dir": args.results_dir,
        "pipeline_jobs": args.jobs,
        "latency_jobs": args.jobs,
        "classify_concurrency": args.classify_concurrency,
        "tier_concurrency": args.tier_concurrency,
        "pool": args.pool,
        "tier_workers": args.tier_workers,
        "latency_ms": args.latency_ms,
        "latency_tier_concurrency": args.latency_tier_concurrency,
        "latency_classify_concurrency": args.latency_classify_concurrency,
        "submit_prompts": args.submit_prompts,
        "naive_prompts": args.naive_prompts,
        "api_rate": args.api_rate,
        "api_seconds": args.api_seconds,
        "classifier_prompts": args.classifier_prompts,
        "growth_sizes": _sizes(args.growth_sizes),
        "prune_jobs": int(args.prune_jobs) if args.prune_jobs else None,
        "flower_batches": args.flower_batches,
        "flower_batch_prompts": args.flower_batch_prompts,
    }
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; exit 1 if any failed."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # One line per HTTP request would bury the progress lines.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    config = config_from(args)
    results, errors = run_benchmarks(
        config,
        args.only or DEFAULT_BENCHMARKS,
        pg_admin_url=args.pg_admin_url,
        redis_url=args.redis_url,
    )
    print()
    print(format_table(results))
    print(f"\nresults in {config.results_dir}")
    for name, error in errors.items():
        print(f"FAILED {name}: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
