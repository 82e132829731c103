"""/v1/batches: up to 100,000 prompts at once (NDJSON, optionally gzip, or a JSON array)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from api.auth import CallerKey
from api.deps import get_rt, parse_id
from api.schemas import BatchAccepted, BatchCancelled, BatchRedriven
from api.upload import spool_body
from tierroute.db import session_scope
from tierroute.ingest import copy_batch, json_array_specs, ndjson_specs
from tierroute.jobs import batch_results, batch_view, cancel_batch, redrive_batch
from tierroute.runtime import Runtime
from tierroute.specs import JobSpec

router = APIRouter(prefix="/v1/batches", tags=["batches"])


def _specs(body: IO[bytes], content_type: str) -> Iterator[JobSpec]:
    first = body.read(64).lstrip()
    body.seek(0)
    if first.startswith(b"[") and "ndjson" not in content_type:
        return json_array_specs(body)
    return ndjson_specs(body)


@router.post("", status_code=202, response_model=BatchAccepted)
async def submit_batch(
    request: Request, caller: CallerKey, rt: Annotated[Runtime, Depends(get_rt)]
) -> BatchAccepted:
    """Accept many prompts: NDJSON (one job object per line, `Content-Encoding: gzip`
    welcome) or a JSON array. A bad line refuses the whole batch, naming the line.
    The rows are committed here; the classify worker's feeder enqueues them."""
    body = await spool_body(request)
    content_type = request.headers.get("content-type", "")

    def store() -> tuple[str, int]:
        with body, session_scope() as session:
            batch_id, count = copy_batch(
                session,
                _specs(body, content_type),
                default_max_tokens=rt.settings.default_max_tokens,
                api_key_id=caller,
            )
            return str(batch_id), count

    batch_id, count = await run_in_threadpool(store)
    return BatchAccepted(id=batch_id, count=count)


@router.get("/{batch_id}")
def read_batch(batch_id: str, caller: CallerKey) -> dict[str, Any]:
    """Counts by status, cost so far, and progress."""
    with session_scope() as session:
        return batch_view(session, parse_id("batch", batch_id), api_key_id=caller)


@router.post("/{batch_id}/cancel", response_model=BatchCancelled)
def cancel(batch_id: str, caller: CallerKey) -> BatchCancelled:
    """Cancel the batch's jobs that have not started running; running ones finish."""
    with session_scope() as session:
        cancelled = cancel_batch(session, parse_id("batch", batch_id), api_key_id=caller)
    return BatchCancelled(id=batch_id, cancelled=cancelled)


@router.post("/{batch_id}/redrive", response_model=BatchRedriven)
def redrive(batch_id: str, caller: CallerKey) -> BatchRedriven:
    """Re-queue the batch's failed and dead jobs; the feeder sends them."""
    with session_scope() as session:
        requeued = redrive_batch(session, parse_id("batch", batch_id), api_key_id=caller)
    return BatchRedriven(id=batch_id, requeued=requeued)


@router.get("/{batch_id}/results")
def read_batch_results(batch_id: str, caller: CallerKey) -> StreamingResponse:
    """Finished jobs of a batch as NDJSON, streamed page by page."""
    parsed = parse_id("batch", batch_id)
    with session_scope() as session:
        batch_view(session, parsed, api_key_id=caller)  # 404 before the stream starts

    def lines() -> Iterator[bytes]:
        with session_scope() as session:
            for view in batch_results(session, parsed, api_key_id=caller):
                yield (json.dumps(view) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")
