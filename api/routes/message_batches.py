"""/v1/messages/batches: Anthropic's Message Batches API over routed tierroute batches.

Each request of a Message Batch becomes one job of one tierroute batch (the same
ingest as POST /v1/batches), so `GET /v1/batches/{id}` reads the same batch. Every
request is routed on its own; `model` may force a tier, as in POST /v1/messages.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from api.anthropic_shapes import (
    MessageBatchList,
    MessageBatchOut,
    anthropic_error,
    anthropic_responses,
    from_tierroute_error,
    result_line,
)
from api.auth import CallerKey
from api.deps import get_rt
from api.ingress import BodyTooLarge
from api.results_stream import NDJSONStream, result_chunks
from api.upload import spool_body
from tierroute.domain.errors import InvalidInput, NotFound, TierrouteError
from tierroute.domain.status import BatchMode
from tierroute.runtime import Runtime
from tierroute.store.anthropic_batches import (
    anthropic_specs,
    batch_states,
    iso,
    page_of_batches,
)
from tierroute.store.engine import session_scope
from tierroute.store.ingest import copy_batch
from tierroute.store.jobs import cancel_batch

router = APIRouter(
    prefix="/v1/messages/batches", tags=["anthropic"], responses=anthropic_responses(401, 404)
)
# Anthropic ends a Message Batch's processing within a day; tierroute does not, but the
# field is required, so it says when Anthropic's would have expired.
EXPIRES_AFTER = timedelta(hours=24)
DEFAULT_PAGE = 20
MAX_PAGE = 1000


def _batch_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw.removeprefix("msgbatch_"))
    except ValueError:
        raise NotFound(f"message batch {raw} not found") from None


def _page_size(raw: str | None) -> int:
    # Parsed here, not by FastAPI, so a bad value is a 400 in Anthropic's shape.
    if raw is None:
        return DEFAULT_PAGE
    if not raw.strip().isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidInput("limit", f"must be an integer from 1 to {MAX_PAGE}")
    return int(raw)


def _message_batch(state: dict[str, Any], base_url: str) -> dict[str, Any]:
    """Anthropic's MessageBatch from a batch's counts."""
    processing = state["processing"]
    ended = processing == 0
    if ended:
        status = "ended"
    elif state["canceled"]:
        status = "canceling"
    else:
        status = "in_progress"
    batch_id = str(state["id"])
    created = state["created_at"]
    return {
        "id": batch_id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {
            "processing": processing,
            "succeeded": state["succeeded"],
            "errored": state["errored"],
            "canceled": state["canceled"],
            "expired": 0,
        },
        "created_at": iso(created),
        "expires_at": iso(created + EXPIRES_AFTER),
        "ended_at": iso(state["ended_at"]) if ended else None,
        "cancel_initiated_at": iso(state["cancel_initiated_at"]),
        "archived_at": None,
        # The SDK's `results()` reads this URL, once processing has ended.
        "results_url": f"{base_url}/v1/messages/batches/{batch_id}/results" if ended else None,
    }


def _owned_state(batch_id: uuid.UUID, caller: uuid.UUID) -> dict[str, Any]:
    state = batch_states([batch_id]).get(batch_id)
    if state is None or state["api_key_id"] != caller:
        raise NotFound(f"message batch {batch_id} not found")
    return state


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.post(
    "",
    summary="Create a Message Batch, each request routed",
    responses={200: {"model": MessageBatchOut}, **anthropic_responses(400, 413)},
)
async def create_batch(
    request: Request, caller: CallerKey, rt: Annotated[Runtime, Depends(get_rt)]
) -> Response:
    """`{"requests": [{"custom_id", "params"}, ...]}`: up to 100,000 requests or 256 MB."""
    try:
        body = await spool_body(request)

        def store() -> uuid.UUID:
            with body, session_scope() as session:
                batch_id, _ = copy_batch(
                    session,
                    anthropic_specs(body, rt.tiers),
                    default_max_tokens=rt.settings.default_max_tokens,
                    api_key_id=caller,
                    mode=BatchMode.LIVE,
                )
                return batch_id

        batch_id = await run_in_threadpool(store)
        state = await run_in_threadpool(_owned_state, batch_id, caller)
    except BodyTooLarge as exc:
        return anthropic_error(413, str(exc.detail))
    except TierrouteError as exc:
        return from_tierroute_error(exc)
    return JSONResponse(_message_batch(state, _base_url(request)))


@router.get(
    "",
    summary="List Message Batches, newest first",
    responses={200: {"model": MessageBatchList}, **anthropic_responses(400)},
)
def list_batches(
    request: Request,
    caller: CallerKey,
    limit: Annotated[str | None, Query(description="1 to 1000; 20 if unset")] = None,
    before_id: str | None = None,
    after_id: str | None = None,
) -> Response:
    """A page of the caller's batches (Anthropic's `before_id`/`after_id` cursors)."""
    try:
        size = _page_size(limit)
        before = _batch_id(before_id) if before_id else None
        after = _batch_id(after_id) if after_id else None
        ids, more = page_of_batches(caller, size, before, after)
        states = batch_states(ids)
    except TierrouteError as exc:
        return from_tierroute_error(exc)
    base = _base_url(request)
    data = [_message_batch(states[batch_id], base) for batch_id in ids if batch_id in states]
    return JSONResponse(
        {
            "data": data,
            "has_more": more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    )


@router.get(
    "/{message_batch_id}",
    summary="Retrieve a Message Batch",
    responses={200: {"model": MessageBatchOut}},
)
def retrieve_batch(message_batch_id: str, request: Request, caller: CallerKey) -> Response:
    """Processing status, request counts and, once ended, the results URL."""
    try:
        state = _owned_state(_batch_id(message_batch_id), caller)
    except TierrouteError as exc:
        return from_tierroute_error(exc)
    return JSONResponse(_message_batch(state, _base_url(request)))


@router.post(
    "/{message_batch_id}/cancel",
    summary="Cancel a Message Batch",
    responses={200: {"model": MessageBatchOut}},
)
def cancel(message_batch_id: str, request: Request, caller: CallerKey) -> Response:
    """Requests not yet running are cancelled; running ones finish."""
    try:
        batch_id = _batch_id(message_batch_id)
        _owned_state(batch_id, caller)
        with session_scope() as session:
            cancel_batch(session, batch_id, api_key_id=caller)
        state = _owned_state(batch_id, caller)
    except TierrouteError as exc:
        return from_tierroute_error(exc)
    return JSONResponse(_message_batch(state, _base_url(request)))


@router.get(
    "/{message_batch_id}/results",
    summary="Results of a Message Batch (JSONL, keyed by custom_id)",
    response_class=NDJSONStream,
)
async def results(message_batch_id: str, caller: CallerKey) -> Response:
    """One line per finished request, streamed: `{"custom_id", "result": {...}}`."""
    try:
        batch_id = _batch_id(message_batch_id)
        await run_in_threadpool(_owned_state, batch_id, caller)
    except TierrouteError as exc:
        return from_tierroute_error(exc)
    return NDJSONStream(result_chunks(batch_id, result_line), media_type="application/binary")
