"""Flower's memory over three 100,000-prompt batches (issue 16): does its task cap hold it?

Flower keeps every task it hears of in memory, up to `--max_tasks`; with Flower's own
default of 100,000 it grew to most of a gigabyte on big batches. The stack starts it
as `tierroute up` does (`flower_argv`, the cap from TIERROUTE_FLOWER_MAX_TASKS),
against the same broker, with the simulator at zero latency. Flower switches task
events on in the workers itself (worker/celery_app.py sends none unwatched), so a
warm-up batch runs until Flower has seen a task before anything is measured.

After each batch is done and Flower has taken in its events, Flower's RSS (process
and children) is sampled; a background sampler keeps the peak over all batches.
Result files are written after every batch, so a run stopped early keeps its figures.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.backing import Backing
from bench.config import BenchConfig
from bench.cpu import CpuMeter
from bench.pipeline_run import zero_latency_options
from bench.report import Result, write_result
from bench.sampler import Sampler, tree_rss_bytes
from bench.workload import auth, batch_span, ndjson_body, submit_batch, wait_for_batch
from tierroute.devstack.procs import Child, free_port
from tierroute.devstack.stack import run_stack

MB = 2**20
# Flower broadcasts enable_events every 5 s; a warm-up batch is retried until it shows.
EVENTS_ON_ATTEMPTS = 6
EVENTS_ON_WAIT_S = 8.0
# Flower has taken in a batch's events when its counts stop moving for this long.
SETTLE_STEADY_S = 2.0
SETTLE_MAX_S = 60.0


@dataclass(frozen=True)
class FlowerCounts:
    """Task events Flower has counted (its /metrics), by type, summed over workers."""

    received: int
    finished: int


def flower_counts(metrics_text: str) -> FlowerCounts:
    """task-received and task-succeeded/failed counts from Flower's Prometheus text."""
    by_type: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "flower_events":
            continue
        for sample in family.samples:
            if sample.name == "flower_events_total":
                kind = sample.labels.get("type", "")
                by_type[kind] = by_type.get(kind, 0.0) + sample.value
    finished = by_type.get("task-succeeded", 0.0) + by_type.get("task-failed", 0.0)
    return FlowerCounts(received=int(by_type.get("task-received", 0.0)), finished=int(finished))


def _counts(flower: httpx.Client) -> FlowerCounts:
    response = flower.get("/metrics")
    response.raise_for_status()
    return flower_counts(response.text)


def _wait_flower_up(flower: httpx.Client, child: Child, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"flower exited early:\n{child.log_tail()}")
        try:
            if flower.get("/metrics").is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"Flower did not answer within {timeout_s:.0f}s:\n{child.log_tail()}")


def _settle(flower: httpx.Client) -> FlowerCounts:
    """Flower's counts once they stop growing (its event stream lags the workers)."""
    deadline = time.monotonic() + SETTLE_MAX_S
    counts, steady_since = _counts(flower), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _counts(flower)
        if now != counts:
            counts, steady_since = now, time.monotonic()
        elif time.monotonic() - steady_since >= SETTLE_STEADY_S:
            break
    return counts


def _events_on(api: httpx.Client, flower: httpx.Client, warmup: int, timeout_s: float) -> int:
    """Run warm-up batches until Flower has seen a task; returns the batches it took."""
    for attempt in range(1, EVENTS_ON_ATTEMPTS + 1):
        warm = submit_batch(api, ndjson_body(max(warmup, 1), f"warmup{attempt}"))
        if warm.batch_id is None:
            raise RuntimeError(f"warm-up batch refused: {warm.status} {warm.detail}")
        wait_for_batch(api, warm.batch_id, timeout_s)
        deadline = time.monotonic() + EVENTS_ON_WAIT_S
        while time.monotonic() < deadline:
            if _counts(flower).finished > 0:
                return attempt
            time.sleep(0.5)
    raise RuntimeError("Flower saw no task events: the workers never switched them on")


def _tasks_kept(flower: httpx.Client) -> int:
    """Tasks Flower holds in memory now (its task list, unpaged)."""
    response = flower.get("/api/tasks", timeout=120)
    response.raise_for_status()
    return len(response.json())


def run(config: BenchConfig, backing: Backing) -> Result:
    """Three big batches through a stack with Flower; Flower's RSS after each and its peak."""
    result = Result("flower")
    backing.reset()
    settings = backing.settings()
    result.settings = {
        "batches": config.flower_batches,
        "prompts_per_batch": config.flower_batch_prompts,
        "flower_max_tasks": settings.flower_max_tasks,
        "flower_argv": "celery -A worker flower --port=… --address=127.0.0.1 --max_tasks=N "
        "(tierroute/devstack/stack.py flower_argv, as `tierroute up` starts it)",
        "simulated_latency_ms": 0,
        "classifier": settings.classifier,
        "rss": "Flower's process and its children, psutil, after the batch is done and "
        "Flower's event counts have stopped moving; peak sampled every 0.2 s",
        "smoke": config.smoke,
    }
    figures = result.figures
    figures["flower_max_tasks"] = settings.flower_max_tasks
    batches: list[dict[str, Any]] = []
    result.details = {"batches": batches}
    with tempfile.TemporaryDirectory(prefix="tierroute-bench-") as tmp:
        options = zero_latency_options(Path(tmp), config)
        options.flower_port = free_port()
        with (
            run_stack(settings, options) as stack,
            httpx.Client(base_url=stack.api_url, timeout=600, headers=auth(stack.api_key)) as api,
        ):
            assert stack.flower_url is not None and stack.flower_auth is not None
            user, _, password = stack.flower_auth.partition(":")
            child = next(c for c in stack.children if c.name == "flower")
            pid = child.process.pid
            with httpx.Client(
                base_url=stack.flower_url, auth=(user, password), timeout=30
            ) as flower:
                _wait_flower_up(flower, child)
                result.details["warmup_batches"] = _events_on(
                    api, flower, config.warmup_jobs, config.timeout_s
                )
                before = _settle(flower)
                figures["flower_rss_mb_before"] = tree_rss_bytes(pid) / MB
                seconds_total, jobs_total, peak = 0.0, 0, 0
                # What watching costs: Flower's CPU beside the stack's, per job.
                cpu = CpuMeter(stack.children)
                cpu.start()
                with Sampler({"flower": pid}) as sampler:
                    for n in range(1, config.flower_batches + 1):
                        started = time.time()
                        body = ndjson_body(config.flower_batch_prompts, f"flower{n}")
                        submitted = submit_batch(api, body)
                        if submitted.batch_id is None:
                            raise RuntimeError(
                                f"batch {n} refused: {submitted.status} {submitted.detail}"
                            )
                        view = wait_for_batch(api, submitted.batch_id, config.timeout_s)
                        polled_end = time.time()
                        counts = _settle(flower)
                        rss_bytes = tree_rss_bytes(pid)
                        # The peak is the highest of every sample, this one included.
                        peak = max(peak, sampler.rss_max_bytes["flower"], rss_bytes)
                        rss = rss_bytes / MB
                        _, last = batch_span(backing.psycopg_url, submitted.batch_id)
                        done = bool(view.get("done"))
                        end = last if done and last else polled_end
                        finished = int(view.get("finished", 0))
                        seconds_total += max(end - started, 1e-6)
                        jobs_total += finished
                        figures[f"flower_rss_mb_after_batch_{n}"] = rss
                        figures["flower_rss_mb_peak"] = peak / MB
                        figures["flower_tasks_seen"] = counts.received - before.received
                        figures["jobs_per_s"] = jobs_total / seconds_total
                        batches.append(
                            {
                                "batch": n,
                                "prompts": config.flower_batch_prompts,
                                "finished": finished,
                                "done": done,
                                "seconds": round(end - started, 2),
                                "submit_seconds": round(submitted.seconds, 2),
                                "counts": dict(view.get("counts", {})),
                                "flower_rss_mb": round(rss, 1),
                                "flower_tasks_received_total": counts.received,
                                "flower_tasks_finished_total": counts.finished,
                            }
                        )
                        if not done:
                            result.notes.append(
                                f"batch {n} not done in {config.timeout_s:.0f}s "
                                f"({finished}/{config.flower_batch_prompts}); stopped there"
                            )
                            break
                        # A run stopped from here on keeps what it measured; the
                        # runner's write at the end replaces this file.
                        _write_partial(result, config, n)
                cpu_ms = cpu.ms_per_job(jobs_total)
                result.details["cpu_ms_per_job"] = cpu_ms
                figures["flower_cpu_ms_per_job"] = cpu_ms.get("flower", 0.0)
                peak = max(peak, sampler.rss_max_bytes["flower"])
                figures["flower_rss_mb_peak"] = peak / MB
                # After the samples: a 10,000-task JSON page costs Flower memory of its own.
                figures["flower_tasks_kept"] = _tasks_kept(flower)
    result.figures = _ordered(figures)
    if figures["flower_tasks_kept"] > settings.flower_max_tasks:
        result.notes.append("Flower kept more tasks than its cap")
    result.notes.append(
        "flower_tasks_seen counts Celery tasks (task-received events after the warm-up), "
        "not jobs: a classify task routes up to TIERROUTE_CLASSIFY_BATCH_SIZE jobs and a "
        "complete task up to TIERROUTE_COMPLETE_BATCH_SIZE"
    )
    return result


def _ordered(figures: dict[str, float]) -> dict[str, float]:
    """The acceptance figures first (RSS after each batch, peak), then the rest."""
    first = sorted(k for k in figures if k.startswith("flower_rss_mb_after_batch_"))
    keys = [*first, "flower_rss_mb_peak"]
    return {k: figures[k] for k in [*keys, *figures] if k in figures}


def _write_partial(result: Result, config: BenchConfig, batches_done: int) -> None:
    note = (
        f"partial: written after batch {batches_done} of {config.flower_batches}; "
        "the run did not finish (no flower_tasks_kept, peak so far)"
    )
    partial = Result(
        result.name,
        figures=_ordered(result.figures),
        settings=dict(result.settings),
        notes=[*result.notes, note],
        details=dict(result.details),
        load_before=result.load_before,
        cpu_watch=result.cpu_watch,
    )
    write_result(partial, config.results_dir)
