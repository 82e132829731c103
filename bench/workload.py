"""Prompts to send, and the HTTP calls a benchmark makes: submit, wait, read stats."""

from __future__ import annotations

import gzip
import json
import re
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import psycopg

import tierroute

NDJSON = "application/x-ndjson"
SAMPLES = Path(tierroute.__file__).resolve().parent / "data" / "sample_prompts.jsonl"


@cache
def sample_prompts() -> tuple[str, ...]:
    """The bundled sample prompts, a realistic mix of easy and hard ones."""
    lines = SAMPLES.read_text().splitlines()
    return tuple(json.loads(line)["prompt"] for line in lines if line.strip())


def prompt(i: int, tag: str) -> str:
    """The i-th prompt: a sample, made unique so no layer can cache it."""
    samples = sample_prompts()
    return f"{samples[i % len(samples)]} [{tag} {i}]"


def ndjson_body(count: int, tag: str) -> bytes:
    """`count` prompts as an NDJSON batch body."""
    lines = (
        json.dumps({"prompt": prompt(i, tag), "max_tokens": 512}, separators=(",", ":"))
        for i in range(count)
    )
    return ("\n".join(lines) + "\n").encode()


def anthropic_batch_body(count: int, tag: str) -> bytes:
    """`count` Message Batches requests (`{"custom_id", "params"}`) as an NDJSON body.

    The same prompts as `ndjson_body`, each as one user turn of a routed request, so the
    two bodies differ only in their shape.
    """
    lines = (
        json.dumps(
            {
                "custom_id": f"{tag}-{i}",
                "params": {
                    "model": "tierroute-auto",
                    "max_tokens": 512,
                    "messages": [{"role": "user", "content": prompt(i, tag)}],
                },
            },
            separators=(",", ":"),
        )
        for i in range(count)
    )
    return ("\n".join(lines) + "\n").encode()


@dataclass(frozen=True)
class Submitted:
    """A batch the API accepted (or refused), and how long the request took."""

    status: int
    batch_id: str | None
    count: int
    seconds: float
    detail: str


def auth(api_key: str | None) -> dict[str, str]:
    """The Authorization header for a benchmark's API key."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def submit_batch(api: httpx.Client, body: bytes, *, gzipped: bool = False) -> Submitted:
    """POST /v1/batches; timed from request start to the 202 (rows committed)."""
    headers = {"content-type": NDJSON}
    if gzipped:
        body = gzip.compress(body, compresslevel=6)
        headers["content-encoding"] = "gzip"
    started = time.perf_counter()
    response = api.post("/v1/batches", content=body, headers=headers)
    seconds = time.perf_counter() - started
    if response.status_code != 202:
        return Submitted(response.status_code, None, 0, seconds, response.text[:300])
    data = response.json()
    return Submitted(202, str(data["id"]), int(data["count"]), seconds, "")


def wait_for_batch(
    api: httpx.Client, batch_id: str, timeout_s: float, poll_s: float = 0.25
) -> dict[str, Any]:
    """Poll GET /v1/batches/{id} until done or the timeout; returns the last view."""
    deadline = time.monotonic() + timeout_s
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = api.get(f"/v1/batches/{batch_id}")
        response.raise_for_status()
        view = response.json()
        if view.get("done"):
            return view
        time.sleep(poll_s)
    return view


def batch_span(psycopg_url: str, batch_id: str) -> tuple[float | None, float | None]:
    """Epoch seconds of the batch's first created_at and last finished_at, from SQL.

    The jobs table is public (analysts query it), and its timestamps end the clock
    when the last job finished rather than when our poll noticed.
    """
    with psycopg.connect(psycopg_url) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM min(created_at)), extract(epoch FROM max(finished_at)) "
            "FROM jobs WHERE batch_id = %s",
            (batch_id,),
        ).fetchone()
    if row is None:
        return None, None
    return (
        float(row[0]) if row[0] is not None else None,
        float(row[1]) if row[1] is not None else None,
    )


def sim_stats(simulator_url: str) -> dict[str, Any]:
    """GET /_sim/stats."""
    data: dict[str, Any] = httpx.get(f"{simulator_url}/_sim/stats", timeout=10).json()
    return data


def sim_reset(simulator_url: str) -> None:
    """Clear the simulator's statistics (peaks included) but keep its latency config."""
    httpx.post(f"{simulator_url}/_sim/reset", params={"keep_config": "true"}, timeout=10)


def routing_outcomes(psycopg_url: str, batch_id: str) -> tuple[dict[str, int], dict[str, int]]:
    """Billed model calls by purpose, and classifier fallback reasons, for a batch.

    A classifier call that failed (timeout, connection error) is not billed, so
    fewer classify calls than jobs means the run did less work than it should:
    the figures must say so. Numbers in reasons are masked to group them.
    """
    with psycopg.connect(psycopg_url) as conn:
        calls = conn.execute(
            "SELECT mc.purpose, count(*) FROM model_calls mc JOIN jobs j ON j.id = mc.job_id "
            "WHERE j.batch_id = %s GROUP BY mc.purpose",
            (batch_id,),
        ).fetchall()
        reasons = conn.execute(
            "SELECT rd.fallback_reason, count(*) FROM routing_decisions rd "
            "JOIN jobs j ON j.id = rd.job_id "
            "WHERE j.batch_id = %s AND rd.fallback_reason IS NOT NULL "
            "GROUP BY rd.fallback_reason",
            (batch_id,),
        ).fetchall()
    grouped: dict[str, int] = {}
    for reason, count in reasons:
        key = re.sub(r"\d+(\.\d+)?", "N", str(reason))
        grouped[key] = grouped.get(key, 0) + int(count)
    return {str(purpose): int(n) for purpose, n in calls}, grouped
