"""A Message Batch create that may have been accepted: find that batch before creating another.

The create call uploads up to 256 MB, and it can time out, or lose its connection,
after Anthropic accepted the batch, which then runs and is billed. Creating it
again would run and bill every request twice. So a create that ended without an
answer is noted on its jobs (when it was sent, and why in `error`), and the next
try first looks through the Message Batches created around then for this chunk.

The API keeps no metadata on a batch and shows its custom_ids only in its results,
once it has ended. A candidate is a batch created in the window, with as many
requests, that no row of ours records. One still in progress is waited for (the
chunk's jobs would wait that long in it anyway); an ended one is this chunk's if
its results carry exactly the chunk's custom_ids. No candidate: create it anew.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anthropic
from anthropic.types.messages import MessageBatch

from tierroute.pipeline.message_batches import sdk
from tierroute.store.engine import Cursor

log = logging.getLogger(__name__)

# What `error` says on a job whose create went unanswered; a prefix the next try looks for.
UNANSWERED = "Message Batch create unanswered"
# Between our clock and the API's.
CLOCK_SKEW = timedelta(minutes=2)

NOTE_UNANSWERED = """
    UPDATE jobs SET started_at = %(sent_at)s, error = %(error)s, updated_at = now()
     WHERE id = ANY(%(ids)s) AND status = 'routed' AND batch_api
"""
UNANSWERED_SINCE = """
    SELECT max(started_at) FROM jobs
     WHERE id = ANY(%(ids)s) AND status = 'routed' AND batch_api
       AND started_at IS NOT NULL AND starts_with(error, %(prefix)s)
"""
KNOWN = "SELECT 1 FROM provider_batches WHERE anthropic_batch_id = %(id)s"


@dataclass(frozen=True)
class Search:
    """What a look for an earlier create found."""

    batch: MessageBatch | None = None  # the chunk's batch, ended
    wait: bool = False  # a candidate still runs: look again on a later tick


def note_unanswered(cur: Cursor, ids: Sequence[uuid.UUID], sent_at: datetime, why: str) -> None:
    """Mark the chunk's jobs: their create was sent at `sent_at` and never answered."""
    error = f"{UNANSWERED} ({why}); looking for it before creating another"
    cur.execute(NOTE_UNANSWERED, {"ids": list(ids), "sent_at": sent_at, "error": error})


def unanswered_since(cur: Cursor, ids: Sequence[uuid.UUID]) -> datetime | None:
    """When the chunk's last unanswered create was sent; None if it has none."""
    cur.execute(UNANSWERED_SINCE, {"ids": list(ids), "prefix": UNANSWERED})
    row = cur.fetchone()
    return row[0] if row else None


def request_total(batch: MessageBatch) -> int:
    """How many requests a Message Batch holds, whatever their state."""
    counts = batch.request_counts
    return counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired


def find_accepted(
    client: anthropic.Anthropic, cur: Cursor, sent_at: datetime, ids: Sequence[uuid.UUID]
) -> Search:
    """The Message Batch an unanswered create sent at `sent_at` made for `ids`, if any.

    Raises ProviderError when the API cannot be asked.
    """
    wanted = {str(job_id) for job_id in ids}
    latest = sent_at + timedelta(seconds=sdk.TRANSFER_TIMEOUT_S) + CLOCK_SKEW
    wait = False
    for batch in sdk.created_since(client, sent_at.astimezone(UTC) - CLOCK_SKEW):
        if batch.created_at > latest or request_total(batch) != len(wanted):
            continue
        cur.execute(KNOWN, {"id": batch.id})
        if cur.fetchone() is not None:
            continue  # another chunk's, recorded
        if batch.processing_status != "ended":
            wait = True
            continue
        if {result.custom_id for result in sdk.results(client, batch.id)} == wanted:
            log.warning("found Message Batch %s, made by a create that went unanswered", batch.id)
            return Search(batch=batch)
    return Search(wait=wait)
