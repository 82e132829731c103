"""(c) bulk submit: 100,000 prompts in one NDJSON request, against the naive per-row path.

The same 100,000 prompts also go in as Anthropic Message Batches request lines
(`{"custom_id", "params"}`), through the route `tierroute submit` sends such a file
to (POST /v1/batches, NDJSON), so their rate is compared with the plain one of the
same run.

No worker consumes while we submit, so the classify queue shows what a submit
leaves in Redis. If the API enqueues nothing (a feeder moves committed jobs into
the queue later), a classify worker is started against a very slow simulator so
the feeder fills the queue to its bound; that depth and its bytes are reported.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.backing import Backing
from bench.config import BenchConfig
from bench.naive import run_naive
from bench.redisq import QueueProbe, QueueSnapshot
from bench.report import Result
from bench.sampler import Sampler
from bench.solo import solo
from bench.workload import anthropic_batch_body, auth, ndjson_body, submit_batch

# The feeder phase: simulated calls this slow keep the worker from draining the queue.
FEEDER_SIM_LATENCY_MS = 120_000
FEEDER_SETTLE_S = 30.0


def _wait_for_plateau(probe: QueueProbe, timeout_s: float) -> int:
    """Queue depth once it stops growing for a second (the feeder's bound), or at timeout."""
    deadline = time.monotonic() + timeout_s
    depth, steady_since = probe.depth(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = probe.depth()
        if now != depth:
            depth, steady_since = now, time.monotonic()
        elif depth > 0 and time.monotonic() - steady_since >= 1.0:
            break
    return depth


def _feeder_phase(backing: Backing, log_dir: Path, probe: QueueProbe) -> dict[str, Any]:
    """Let the classify worker's feeder fill the queue; measure its depth and bytes."""
    before = probe.snapshot()
    with (
        # The llm classifier, held by a slow simulator, keeps the classify worker from
        # draining the queue, so its depth is the feeder's doing alone.
        solo(
            backing,
            log_dir,
            classify_worker=True,
            sim_latency_ms=FEEDER_SIM_LATENCY_MS,
            classifier="llm",
        ) as procs,
        Sampler.for_children(procs.children) as sampler,
    ):
        depth = _wait_for_plateau(probe, FEEDER_SETTLE_S)
        after = probe.snapshot()
    added, by_info, by_key = after.per_message(before)
    return {
        "depth": depth,
        "messages": added,
        "bytes_by_info": by_info,
        "bytes_by_key": by_key,
        "rss": sampler.rss_figures(),
    }


def _snapshot_dict(snap: QueueSnapshot) -> dict[str, int]:
    return {
        "used_memory": snap.used_memory,
        "depth": snap.depth,
        "unacked": snap.unacked,
        "key_bytes": snap.key_bytes,
    }


def run(config: BenchConfig, backing: Backing) -> Result:
    """Bulk submit (plain and gzip), the queue it leaves, then the naive loop."""
    result = Result("submit")
    backing.reset()
    probe = QueueProbe(backing.broker_url)
    try:
        with tempfile.TemporaryDirectory(prefix="tierroute-bench-") as tmp:
            log_dir = Path(tmp) / "logs"
            body = ndjson_body(config.submit_prompts, "submit")
            anthropic_body = anthropic_batch_body(config.submit_prompts, "anthropic")
            with (
                solo(backing, log_dir, api=True) as procs,
                httpx.Client(
                    base_url=str(procs.api_url), timeout=600, headers=auth(procs.api_key)
                ) as api,
                Sampler.for_children(procs.children) as sampler,
            ):
                # One small batch first: the API's lazy setup is not what we time.
                submit_batch(api, ndjson_body(10, "warmup"))
                before = probe.snapshot()
                plain = submit_batch(api, body)
                after = probe.snapshot()
                gzipped = submit_batch(api, ndjson_body(config.submit_prompts, "gz"), gzipped=True)
                anthropic = submit_batch(api, anthropic_body)
            for what, answer in (("bulk", plain), ("Anthropic-format", anthropic)):
                if answer.status != 202:
                    raise RuntimeError(f"{what} submit refused: {answer.status} {answer.detail}")
            added, by_info, by_key = after.per_message(before)
            feeder = None if added > 0 else _feeder_phase(backing, log_dir, probe)
            naive_before = probe.snapshot()
            naive_s = run_naive(backing.database_url, backing.broker_url, config.naive_prompts)
            naive_after = probe.snapshot()
    finally:
        probe.close()

    figures = result.figures
    figures["submit_prompts_per_s"] = plain.count / plain.seconds
    figures["submit_seconds"] = plain.seconds
    figures["submit_naive_prompts_per_s"] = config.naive_prompts / naive_s
    figures["submit_speedup_vs_naive"] = figures["submit_prompts_per_s"] / (
        config.naive_prompts / naive_s
    )
    # Issue 17: Message Batches lines must stay within 2x of the plain rate (ratio >= 0.5).
    figures["submit_anthropic_prompts_per_s"] = anthropic.count / anthropic.seconds
    figures["submit_anthropic_to_plain_ratio"] = (
        figures["submit_anthropic_prompts_per_s"] / figures["submit_prompts_per_s"]
    )
    if gzipped.status == 202:
        figures["submit_gzip_prompts_per_s"] = gzipped.count / gzipped.seconds
    else:
        result.notes.append(f"gzip body refused: {gzipped.status} {gzipped.detail[:120]}")
    figures["classify_queue_depth_after_submit"] = added
    naive_added, naive_info, naive_key = naive_after.per_message(naive_before)
    if feeder is None:
        source, per_info, per_key = "messages the API enqueued", by_info, by_key
    else:
        source, per_info, per_key = (
            "messages the feeder queued",
            feeder["bytes_by_info"],
            (feeder["bytes_by_key"]),
        )
        figures["classify_queue_depth_with_feeder"] = feeder["depth"]
        figures.update({f"feeder_{k}": v for k, v in feeder["rss"].items()})
    if per_info is None:
        source, per_info, per_key = "the naive path's messages", naive_info, naive_key
    if per_info is not None and per_info <= 0 and per_key:
        # Others freed more server-wide memory than we added; the key's own size stands.
        result.notes.append("used_memory fell during the measurement: using MEMORY USAGE")
        per_info = per_key
    if per_info is not None:
        figures["redis_bytes_per_queued_job"] = per_info
    if per_key is not None:
        figures["redis_key_bytes_per_queued_job"] = per_key
    if naive_info is not None:
        figures["redis_bytes_per_naive_message"] = naive_info
    figures.update(sampler.rss_figures())
    result.settings = {
        "prompts": config.submit_prompts,
        "naive_prompts": config.naive_prompts,
        "body_bytes": len(body),
        "anthropic_body_bytes": len(anthropic_body),
        "anthropic_request": "one user turn, model tierroute-auto, max_tokens 512, "
        "a custom_id each; NDJSON to POST /v1/batches as `tierroute submit` sends it",
        "consumers_during_submit": 0,
        "redis_bytes_source": source,
        "naive_path": "per row: ORM add(Job) + commit + Celery send_task to 'classify'",
        "smoke": config.smoke,
    }
    result.details = {
        "plain": {"status": plain.status, "count": plain.count, "seconds": plain.seconds},
        "gzip": {"status": gzipped.status, "count": gzipped.count, "seconds": gzipped.seconds},
        "anthropic": {
            "status": anthropic.status,
            "count": anthropic.count,
            "seconds": anthropic.seconds,
        },
        "queue_before": _snapshot_dict(before),
        "queue_after": _snapshot_dict(after),
        "feeder": feeder,
        "naive": {"seconds": naive_s, "messages": naive_added},
    }
    result.notes.append(
        "redis_bytes_per_queued_job uses INFO used_memory, which is server-wide: other "
        "Redis users add noise; redis_key_bytes_per_queued_job (MEMORY USAGE) does not"
    )
    return result
