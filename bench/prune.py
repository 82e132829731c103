"""Prune under load: `tierroute prune --older-than 90d` of 1M old jobs while a batch runs.

The tables are filled in SQL with `prune_jobs` finished jobs (growth's generator:
decisions, 1.2 calls a job, 5 % rated), all created 120 to 180 days ago, and the
rollups rebuilt from them. Then, on one stack configuration and one database:

1. the pipeline's batch (`pipeline_jobs`, 20,000) alone: the baseline;
2. the same batch while `tierroute prune --older-than 90d` (the CLI, its own
   process) deletes the old jobs; the prune starts with the timed batch, after the
   stack's warm-up, and is waited for after the batch if it has not finished;
3. the batch alone again, after a VACUUM of the pruned tables, to bracket the VM's
   drift (the baseline rate is the mean of 1 and 3).

Checked as well: the batch's jobs all succeeded (nothing in flight was touched), and
the `savings` view's total after the prune and a fold equals its total before the
prune plus what the calls billed since (the rollups kept the pruned spend).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg

from bench import growth
from bench.backing import Backing
from bench.config import BenchConfig
from bench.pipeline import outcome_figures, outcome_notes
from bench.pipeline_run import PipelineRun, run_pipeline, zero_latency_options
from bench.report import Result
from tierroute.store.rollups import start_of_day

OLDER_THAN_DAYS = 90
# Growth's generator spreads jobs over 60 days from this many days back.
FILLED_DAYS_AGO = 120
PRUNED_TABLES = ("jobs", "model_calls", "routing_decisions", "ratings", "rollup_job_contrib")
PRUNED = re.compile(r"pruned ([\d,]+) jobs and ([\d,]+) calls .* in ([\d.]+) s")
# The month partitions the prune emptied and dropped (migration 0017), as it lists them.
DROPPED = re.compile(r"dropped empty month partitions: (.+)")


def _cutoff() -> datetime:
    # As the CLI takes it: back to its UTC midnight.
    return start_of_day(datetime.now(UTC) - timedelta(days=OLDER_THAN_DAYS))


def _old_jobs(url: str, cutoff: datetime) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM jobs WHERE created_at < %s", (cutoff,)).fetchone()
    assert row is not None
    return int(row[0])


def _spend(url: str, cutoff: datetime) -> tuple[Decimal, Decimal]:
    """(the `savings` view's total after a fold, raw USD of calls billed since the cutoff)."""
    with psycopg.connect(url) as conn:
        conn.execute("SELECT tierroute_rollup_fold()")
        conn.commit()  # the fold's lock is held to commit: let the beat's folds go on
        row = conn.execute(
            """SELECT (SELECT total_cost_usd FROM savings),
                      (SELECT coalesce(sum(cost_usd), 0) FROM model_calls
                        WHERE created_at >= %s)""",
            (cutoff,),
        ).fetchone()
    assert row is not None
    return Decimal(row[0]), Decimal(row[1])


@dataclass
class PruneRun:
    """`tierroute prune` in its own process, started with the timed batch."""

    backing: Backing
    cutoff: datetime
    old_jobs: int
    proc: subprocess.Popen[str] | None = None
    started: float = 0.0
    batch_s: float = 0.0
    finished_during_batch: bool = False
    left_at_batch_end: int = 0

    @contextlib.contextmanager
    def during_batch(self) -> Iterator[None]:
        """Start the prune; when the batch is done, note how far it got."""
        env = {
            **os.environ,
            "TIERROUTE_DATABASE_URL": self.backing.database_url,
            "TIERROUTE_BROKER_URL": self.backing.broker_url,
        }
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tierroute", "prune", "--older-than", f"{OLDER_THAN_DAYS}d"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            yield
        finally:
            self.batch_s = time.monotonic() - self.started
            self.finished_during_batch = self.proc.poll() is not None
            self.left_at_batch_end = _old_jobs(self.backing.psycopg_url, self.cutoff)

    def wait(self, timeout_s: float) -> tuple[int, int, float, str]:
        """(jobs, calls, seconds) the CLI reports once done, and its output."""
        assert self.proc is not None
        try:
            output, _ = self.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise RuntimeError(f"tierroute prune still running after {timeout_s:.0f} s") from None
        wall = time.monotonic() - self.started
        if self.proc.returncode != 0:
            raise RuntimeError(f"tierroute prune exited {self.proc.returncode}:\n{output[-2000:]}")
        found = PRUNED.search(output)
        if found is None:
            raise RuntimeError(f"tierroute prune said nothing we can read:\n{output[-2000:]}")
        jobs, calls = (int(found.group(i).replace(",", "")) for i in (1, 2))
        seconds = float(found.group(3)) or wall
        return jobs, calls, seconds, output.strip()

    def stop(self) -> None:
        """Kill the prune if a failure left it running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def _vacuum(url: str) -> float:
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"VACUUM ANALYZE {', '.join(PRUNED_TABLES)}")
    return time.monotonic() - started


def _failed(pipe: PipelineRun) -> int:
    # Jobs of the batch that did not succeed, deleted ones included (absent from counts).
    return pipe.jobs - int(pipe.counts.get("succeeded", 0))


def run(config: BenchConfig, backing: Backing) -> Result:
    """Fill old jobs, then the batch alone, with the prune, and alone again."""
    result = Result("prune")
    url = backing.psycopg_url
    backing.reset()
    fill_s = growth.fill(url, 0, config.prune_jobs, days_ago=FILLED_DAYS_AGO)
    rebuild_s = growth.rebuild(url)
    cutoff = _cutoff()
    old = _old_jobs(url, cutoff)
    if old != config.prune_jobs:
        raise RuntimeError(f"{old} of the {config.prune_jobs} filled jobs are before the cutoff")
    pruning = PruneRun(backing, cutoff, old)
    runs: list[tuple[str, PipelineRun]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="tierroute-bench-") as tmp:
            options = zero_latency_options(Path(tmp), config)

            def batch(
                around: Callable[[], AbstractContextManager[object]] | None = None,
            ) -> PipelineRun:
                return run_pipeline(
                    backing,
                    options,
                    jobs=config.pipeline_jobs,
                    warmup=config.warmup_jobs,
                    timeout_s=config.timeout_s,
                    reset=False,
                    around_batch=around,
                )

            runs.append(("baseline", batch()))
            spend_before, recent_before = _spend(url, cutoff)
            runs.append(("during", batch(pruning.during_batch)))
            # The prune's own timeout: a million jobs take minutes, not the batch's.
            jobs, calls, prune_s, output = pruning.wait(max(config.timeout_s, 3600.0))
            spend_after, recent_after = _spend(url, cutoff)
            left = _old_jobs(url, cutoff)
            vacuum_s = _vacuum(url)
            runs.append(("baseline", batch()))
    finally:
        pruning.stop()

    rates = {name: [p.jobs_per_s for n, p in runs if n == name] for name in ("baseline", "during")}
    baseline = sum(rates["baseline"]) / len(rates["baseline"])
    during = next(p for n, p in runs if n == "during")
    expected = spend_before + (recent_after - recent_before)
    figures = result.figures
    figures["prune_batch_jobs_per_s_baseline"] = baseline
    figures["prune_batch_jobs_per_s_during"] = during.jobs_per_s
    # Issue 16: the batch's throughput drops <= 20 % while the prune runs (ratio >= 0.8).
    figures["prune_batch_throughput_ratio"] = during.jobs_per_s / baseline
    figures["prune_jobs_deleted"] = jobs
    figures["prune_calls_deleted"] = calls
    figures["prune_seconds"] = prune_s
    figures["prune_jobs_deleted_during_batch"] = old - pruning.left_at_batch_end
    figures["prune_finished_during_batch"] = int(pruning.finished_during_batch)
    figures["prune_old_jobs_left"] = left
    figures["prune_batch_jobs_failed"] = _failed(during)
    figures["prune_rollup_spend_kept"] = int(spend_after == expected)
    dropped = DROPPED.search(output)
    figures["prune_partitions_dropped"] = len(dropped.group(1).split(", ")) if dropped else 0
    if not pruning.finished_during_batch:
        result.notes.append(
            f"the prune did not finish during the batch ({pruning.batch_s:.0f} s): it had "
            f"deleted {old - pruning.left_at_batch_end:,} of {old:,} old jobs by then, "
            f"and took {prune_s:.0f} s in all"
        )
    for name, pipe in runs:
        result.notes.extend(f"{name}: {note}" for note in outcome_notes(pipe))
    if spend_after != expected:
        result.notes.append(f"savings total {spend_after} after the prune, expected {expected}")
    result.settings = {
        "old_jobs": config.prune_jobs,
        "old_jobs_created": f"{FILLED_DAYS_AGO} to {FILLED_DAYS_AGO + growth.DAYS} days ago",
        "older_than": f"{OLDER_THAN_DAYS}d",
        "command": f"tierroute prune --older-than {OLDER_THAN_DAYS}d (own process, defaults)",
        "batch_jobs": config.pipeline_jobs,
        "runs": [name for name, _ in runs],
        "baseline_rate": "mean of the runs before and after the prune",
        **runs[-1][1].options,
    }
    result.details = {
        "fill_s": round(fill_s, 1),
        "rebuild_s": round(rebuild_s, 1),
        "vacuum_after_prune_s": round(vacuum_s, 1),
        "prune_output": output,
        "prune_wall_s_at_batch_end": round(pruning.batch_s, 1),
        "savings_total_usd": {
            "before_prune": str(spend_before),
            "after_prune": str(spend_after),
            "billed_since_cutoff_meanwhile": str(recent_after - recent_before),
        },
        "runs": [
            {
                "run": name,
                "jobs_per_s": round(pipe.jobs_per_s, 1),
                "seconds": round(pipe.seconds, 2),
                "jobs_not_succeeded": _failed(pipe),
                "cpu_ms_per_job_by_process": pipe.cpu_ms_per_job,
                **{k: v for k, v in outcome_figures(pipe).items() if v},
            }
            for name, pipe in runs
        ],
    }
    return result
