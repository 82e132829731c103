"""Message Batches in Anthropic's shape over tierroute batches: ingest, counts and listing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

from psycopg.rows import dict_row

from tierroute.domain.anthropic_batch import batch_line_spec_from_json, spec_from_batch_line
from tierroute.domain.errors import InvalidInput
from tierroute.domain.json_array import ArrayError, object_array_items
from tierroute.domain.specs import JobSpec
from tierroute.domain.tiers import TierTable
from tierroute.store.engine import raw_autocommit
from tierroute.store.ingest import MAX_ITEM_BYTES

# Per batch: its jobs by Anthropic's request states, and when processing or a cancel
# began and ended (a cancel is seen in its cancelled jobs' finish times).
COUNTS = """
    SELECT b.id, b.created_at, b.api_key_id,
           count(j.id) FILTER (WHERE j.status IN ('queued', 'classifying', 'routed', 'running'))
               AS processing,
           count(j.id) FILTER (WHERE j.status = 'succeeded') AS succeeded,
           count(j.id) FILTER (WHERE j.status IN ('failed', 'dead')) AS errored,
           count(j.id) FILTER (WHERE j.status = 'cancelled') AS canceled,
           max(j.finished_at) AS ended_at,
           min(j.finished_at) FILTER (WHERE j.status = 'cancelled') AS cancel_initiated_at
      FROM batches b LEFT JOIN jobs j ON j.batch_id = b.id
     WHERE b.id = ANY(%(ids)s)
     GROUP BY b.id
"""
# A key's batches, newest first, around a cursor batch (Anthropic's before_id/after_id).
PAGE = """
    SELECT id FROM batches
     WHERE api_key_id IS NOT DISTINCT FROM %(key)s {cursor}
     ORDER BY created_at {order}, id {order}
     LIMIT %(limit)s
"""
OLDER = """AND (created_at, id) < (SELECT created_at, id FROM batches WHERE id = %(cursor)s)"""
NEWER = """AND (created_at, id) > (SELECT created_at, id FROM batches WHERE id = %(cursor)s)"""


def anthropic_specs(stream: IO[bytes], tiers: TierTable) -> Iterator[JobSpec]:
    """The jobs of a `{"requests": [...]}` body, one request at a time; custom_ids unique."""
    seen: set[str] = set()
    try:
        for number, raw in enumerate(object_array_items(stream, "requests", MAX_ITEM_BYTES)):
            where = f"requests.{number}"
            # One pass for a valid request, as for a batch file's line (store/ingest.py).
            spec = batch_line_spec_from_json(raw, tiers)
            if spec is None:
                try:
                    item = json.loads(raw)
                except ValueError as exc:
                    raise InvalidInput(where, f"not valid JSON: {exc}") from None
                spec = spec_from_batch_line(item, tiers, where)
            if spec.custom_id in seen:
                raise InvalidInput(
                    f"{where}.custom_id", f"{spec.custom_id!r} is used twice; each must be unique"
                )
            seen.add(str(spec.custom_id))
            yield spec
    except ArrayError as exc:
        raise InvalidInput("requests", f"not valid JSON: {exc}") from None


def batch_states(batch_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """Each existing batch's owner, creation, request counts and end times."""
    with raw_autocommit() as cur, cur.connection.cursor(row_factory=dict_row) as rows:
        rows.execute(COUNTS, {"ids": batch_ids})
        return {row["id"]: row for row in rows.fetchall()}


def page_of_batches(
    api_key_id: uuid.UUID | None,
    limit: int,
    before_id: uuid.UUID | None = None,
    after_id: uuid.UUID | None = None,
) -> tuple[list[uuid.UUID], bool]:
    """A page of the key's batch ids, newest first, and whether more lie that way."""
    cursor_id = after_id or before_id
    cursor = "" if cursor_id is None else (NEWER if before_id else OLDER)
    order = "ASC" if before_id else "DESC"
    params = {"key": api_key_id, "cursor": cursor_id, "limit": limit + 1}
    with raw_autocommit() as cur:
        cur.execute(PAGE.format(cursor=cursor, order=order), params)
        ids = [row[0] for row in cur.fetchall()]
    more = len(ids) > limit
    ids = ids[:limit]
    return (list(reversed(ids)) if before_id else ids), more


def iso(moment: datetime | None) -> str | None:
    """RFC 3339, as Anthropic writes its times."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None
