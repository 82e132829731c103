"""A job's Anthropic parameters (jobs.request_params): read, annotated, and its conversation.

Plain SQL on a psycopg cursor, like store/leases.py: these run on the pipeline's paths.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from tierroute.store.engine import Cursor

LOAD = "SELECT request_params FROM jobs WHERE id = %(id)s"

# Kept once, by the first call that adapted the job; a retry adapts it the same way.
RECORD_ADAPTATIONS = """
    UPDATE jobs SET request_params = coalesce(request_params, '{}') || jsonb_build_object(
                        'adaptations', %(rules)s::jsonb, 'adapted_for', %(model)s::text)
     WHERE id = %(id)s
       AND request_params->>'adapted_for' IS DISTINCT FROM %(model)s::text
"""

RECORD_CONTENT = """
    UPDATE jobs SET request_params = coalesce(request_params, '{}')
                        || jsonb_build_object('response_content', %(content)s::jsonb)
     WHERE id = %(id)s
"""

# Tiers of earlier turns of each job's conversation (same key, same conversation):
# an earlier turn has fewer user turns, or as many and was created before.
EARLIER_TURN_TIERS = """
    SELECT j.id, e.tier
      FROM jobs j
      JOIN jobs e
        ON e.api_key_id IS NOT DISTINCT FROM j.api_key_id
       AND e.request_params ? 'conversation'
       AND e.request_params->>'conversation' = j.request_params->>'conversation'
       AND e.id <> j.id
       AND e.tier IS NOT NULL
       AND (coalesce((e.request_params->>'turn')::int, 0), e.created_at)
           < (coalesce((j.request_params->>'turn')::int, 0), j.created_at)
     WHERE j.id = ANY(%(ids)s) AND j.request_params ? 'conversation'
"""


def load(cur: Cursor, job_id: uuid.UUID) -> dict[str, Any] | None:
    """The job's request_params, or None."""
    cur.execute(LOAD, {"id": job_id})
    row = cur.fetchone()
    return row[0] if row else None


def record_adaptations(cur: Cursor, job_id: uuid.UUID, model: str, rules: list[str]) -> None:
    """Keep on the job the rules that translated or dropped its parameters for `model`."""
    cur.execute(RECORD_ADAPTATIONS, {"id": job_id, "model": model, "rules": json.dumps(rules)})


def record_content(cur: Cursor, job_id: uuid.UUID, blocks: list[dict[str, Any]]) -> None:
    """Keep an answer's content blocks, for answers that are more than text."""
    cur.execute(RECORD_CONTENT, {"id": job_id, "content": json.dumps(blocks)})


def earlier_turn_tiers(cur: Cursor, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
    """For jobs in a conversation, the tiers its earlier turns were routed to."""
    cur.execute(EARLIER_TURN_TIERS, {"ids": job_ids})
    tiers: dict[uuid.UUID, set[str]] = {}
    for job_id, tier in cur.fetchall():
        tiers.setdefault(job_id, set()).add(tier)
    return tiers
