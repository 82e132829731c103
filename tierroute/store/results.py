"""A batch's finished jobs, page by page, for `GET /v1/batches/{id}/results`.

A result stream can last as long as its slowest reader. Reading it through one
session and a server-side cursor held a pooled connection, in a transaction, for
the whole stream: a handful of parked readers took the pool, and the API with it.
Here each page is a keyset read in its own short transaction, committed and the
connection returned before the caller writes a byte of it, so a reader holds no
database resource while it reads (or does not).
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tierroute.domain.errors import NotFound
from tierroute.domain.status import JobStatus
from tierroute.store.engine import named_cursor, raw_autocommit, raw_transaction
from tierroute.store.jobs import view_of

# Rows per page: large enough that the per-page round trips do not show, small
# enough that a page (results included) is a bounded piece of memory.
PAGE_SIZE = 500
FINISHED = [status.value for status in JobStatus if status.finished]

BATCH_OWNER = "SELECT api_key_id FROM batches WHERE id = %(batch_id)s"
# The order is the one results always had: creation, then id. A batch's jobs share
# one created_at (one COPY), so the (batch_id, status) index serves it with a
# top-N sort of the batch's finished jobs.
JOBS = """
    SELECT id, batch_id, api_key_id, status, tier, result_text, attempts, error,
           metadata AS metadata_, created_at, classified_at, started_at, finished_at,
           request_params
      FROM jobs
     WHERE batch_id = %(batch_id)s AND status = ANY(%(finished)s) {after}
     ORDER BY created_at, id
     LIMIT %(limit)s
"""
AFTER = "AND (created_at, id) > (%(after_created_at)s, %(after_id)s)"
ROUTING = """
    SELECT job_id, tier, proposed_tier, confidence, score, reasoning, classifier,
           classifier_version, cost_ratio, fallback_reason, budget_action, budget_reason
      FROM routing_decisions WHERE job_id = ANY(%(ids)s)
"""
CALLS = """
    SELECT job_id, purpose, model, cost_usd, cost_if_opus_usd, stop_reason, input_tokens,
           output_tokens, cache_creation_input_tokens, cache_read_input_tokens, batch_api,
           latency_ms, simulated
      FROM model_calls WHERE job_id = ANY(%(ids)s) ORDER BY id
"""


@dataclass(frozen=True)
class PageKey:
    """Where the next page starts: just after this job in the results' order."""

    created_at: datetime
    id: uuid.UUID


@dataclass(frozen=True)
class Page:
    """One page as NDJSON bytes, and the key of the next page (None after the last)."""

    ndjson: bytes
    next: PageKey | None


def check_batch(batch_id: uuid.UUID, *, api_key_id: uuid.UUID | None = None) -> None:
    """NotFound unless the batch exists and (with a key) is the key's."""
    with raw_autocommit() as cur:
        cur.execute(BATCH_OWNER, {"batch_id": batch_id})
        row = cur.fetchone()
    if row is None or (api_key_id is not None and row[0] != api_key_id):
        raise NotFound(f"batch {batch_id} not found")


# A results line from a job's view and its request_params (another shape than the view).
LineShape = Callable[[dict[str, Any], dict[str, Any] | None], dict[str, Any]]


def read_page(
    batch_id: uuid.UUID,
    after: PageKey | None,
    limit: int | None = None,
    shape: LineShape | None = None,
) -> Page:
    """The finished jobs after `after` (from the start when None), one NDJSON line each."""
    limit = limit or PAGE_SIZE
    params: dict[str, Any] = {"batch_id": batch_id, "finished": FINISHED, "limit": limit}
    if after is not None:
        params |= {"after_created_at": after.created_at, "after_id": after.id}
    # One short transaction, over before the page is returned to be written.
    with raw_transaction() as raw, named_cursor(raw) as cur:
        cur.execute(JOBS.format(after=AFTER if after else ""), params)
        jobs = cur.fetchall()
        if not jobs:
            return Page(b"", None)
        ids = [job.id for job in jobs]
        cur.execute(ROUTING, {"ids": ids})
        routing = {row.job_id: row for row in cur.fetchall()}
        cur.execute(CALLS, {"ids": ids})
        calls: dict[uuid.UUID, list[Any]] = defaultdict(list)
        for call in cur.fetchall():
            calls[call.job_id].append(call)
    # The same bytes as ever: one `json.dumps` of the job's view a line.
    views = (view_of(job, routing.get(job.id), calls[job.id]) for job in jobs)
    if shape is not None:
        views = (shape(view, job.request_params) for view, job in zip(views, jobs, strict=True))
    ndjson = "".join(json.dumps(view) + "\n" for view in views).encode()
    last = jobs[-1]
    return Page(ndjson, PageKey(last.created_at, last.id) if len(jobs) == limit else None)
