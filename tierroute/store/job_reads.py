"""The hot read: one job's public view from plain SQL, for `GET /v1/jobs/{id}`.

Clients poll job status, so this GET is the API's busiest route. Through the ORM
(a Session, three statements with their identity-map work) it cost several times
the CPU of plain rows on the pooled psycopg connection. The view itself is built by
`jobs.view_of`, as the batch result stream's lines are.
"""

from __future__ import annotations

import uuid
from typing import Any

from tierroute.domain.errors import NotFound
from tierroute.store.engine import named_cursor, raw_autocommit
from tierroute.store.jobs import view_of

JOB = """
    SELECT id, batch_id, api_key_id, status, tier, result_text, attempts, error,
           metadata AS metadata_, created_at, classified_at, started_at, finished_at
      FROM jobs WHERE id = %(id)s
"""
ROUTING = """
    SELECT tier, proposed_tier, confidence, score, reasoning, classifier, classifier_version,
           cost_ratio, fallback_reason, budget_action, budget_reason
      FROM routing_decisions WHERE job_id = %(id)s
"""
CALLS = """
    SELECT purpose, model, cost_usd, cost_if_opus_usd, stop_reason, input_tokens,
           output_tokens, cache_creation_input_tokens, cache_read_input_tokens, batch_api,
           latency_ms, simulated
      FROM model_calls WHERE job_id = %(id)s ORDER BY id
"""


def read_job_view(job_id: uuid.UUID, *, api_key_id: uuid.UUID | None = None) -> dict[str, Any]:
    """The job's view (`jobs.view_of`), or NotFound, also for another key's job."""
    with raw_autocommit() as raw, named_cursor(raw) as cur:
        cur.execute(JOB, {"id": job_id})
        job = cur.fetchone()
        if job is None or (api_key_id is not None and job.api_key_id != api_key_id):
            raise NotFound(f"job {job_id} not found")
        cur.execute(ROUTING, {"id": job_id})
        routing = cur.fetchone()
        cur.execute(CALLS, {"id": job_id})
        calls = cur.fetchall()
    return view_of(job, routing, calls)
