"""/v1/batches: up to 100,000 prompts at once (NDJSON, optionally gzip, or a JSON array)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.auth import CallerKey
from api.deps import get_rt, parse_id
from api.results_stream import NDJSONStream, result_chunks
from api.schemas import (
    BatchAccepted,
    BatchCancelled,
    BatchRedriven,
    BatchView,
    error_responses,
)
from api.upload import spool_body
from tierroute.domain.status import BatchMode
from tierroute.pipeline.message_batches import (
    provider_batches_view,
    read_batch_body,
    request_cancel,
    resolve_mode,
)
from tierroute.runtime import Runtime
from tierroute.store.engine import session_scope
from tierroute.store.ingest import copy_batch
from tierroute.store.jobs import batch_view, cancel_batch, redrive_batch
from tierroute.store.results import check_batch

router = APIRouter(prefix="/v1/batches", tags=["batches"], responses=error_responses(400, 401, 404))


@router.post("", status_code=202, response_model=BatchAccepted, responses=error_responses(413))
async def submit_batch(
    request: Request,
    caller: CallerKey,
    rt: Annotated[Runtime, Depends(get_rt)],
    mode: Annotated[
        str | None,
        Query(
            description="`live` (default) or `batch_api`: answer through Anthropic's "
            "Message Batches at half price (the body's `mode` may say so too)"
        ),
    ] = None,
) -> BatchAccepted:
    """Accept many prompts: NDJSON (one job object per line, `Content-Encoding: gzip`
    welcome), a JSON array, or `{"jobs": [...], "mode": "batch_api"}`. A bad line
    refuses the whole batch, naming the line. The rows are committed here; the
    classify worker's feeder enqueues them."""
    body = await spool_body(request)
    content_type = request.headers.get("content-type", "")

    def store() -> tuple[str, int]:
        with body, session_scope() as session:
            specs, body_mode = read_batch_body(body, content_type)
            batch_id, count = copy_batch(
                session,
                specs,
                default_max_tokens=rt.settings.default_max_tokens,
                api_key_id=caller,
                mode=resolve_mode(mode, body_mode),
            )
            return str(batch_id), count

    batch_id, count = await run_in_threadpool(store)
    return BatchAccepted(id=batch_id, count=count)


# Unset fields are left out, so a live batch's answer has no `provider_batches`, as before.
@router.get("/{batch_id}", response_model=BatchView, response_model_exclude_unset=True)
def read_batch(batch_id: str, caller: CallerKey) -> dict[str, Any]:
    """Counts by status, cost so far, and progress; in batch_api mode, Anthropic's
    state of each Message Batch too (processing_status, request_counts)."""
    parsed = parse_id("batch", batch_id)
    with session_scope() as session:
        view = batch_view(session, parsed, api_key_id=caller)
        if view.get("mode") == BatchMode.BATCH_API:
            view["provider_batches"] = provider_batches_view(session, parsed)
        return view


@router.post("/{batch_id}/cancel", response_model=BatchCancelled)
def cancel(batch_id: str, caller: CallerKey) -> BatchCancelled:
    """Cancel the batch's jobs that have not started running; running ones finish.
    In batch_api mode its Message Batches are cancelled too, and their jobs with them."""
    parsed = parse_id("batch", batch_id)
    with session_scope() as session:
        cancelled = cancel_batch(session, parsed, api_key_id=caller)
        request_cancel(session, parsed)
    return BatchCancelled(id=batch_id, cancelled=cancelled)


@router.post("/{batch_id}/redrive", response_model=BatchRedriven)
def redrive(batch_id: str, caller: CallerKey) -> BatchRedriven:
    """Re-queue the batch's failed and dead jobs; the feeder sends them."""
    with session_scope() as session:
        requeued = redrive_batch(session, parse_id("batch", batch_id), api_key_id=caller)
    return BatchRedriven(id=batch_id, requeued=requeued)


@router.get(
    "/{batch_id}/results",
    response_class=NDJSONStream,
    # OpenAPI 3.1 has no schema for a line of a stream; JobView is the line's.
    response_description="NDJSON: one JobView (as GET /v1/jobs/{job_id} answers) a line",
)
async def read_batch_results(batch_id: str, caller: CallerKey) -> NDJSONStream:
    """Finished jobs of a batch as NDJSON, streamed page by page. No database
    connection is held while the client reads; one that stops reading is dropped."""
    parsed = parse_id("batch", batch_id)
    # A 404 before the stream starts.
    await run_in_threadpool(check_batch, parsed, api_key_id=caller)
    return NDJSONStream(result_chunks(parsed))
