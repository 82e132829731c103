"""POST /v1/messages: Anthropic's Messages API, routed; answers once the job has finished.

The request becomes one job, as `POST /v1/jobs` makes; this route then waits for it
(bounded by the client's own timeout, which the SDK sends as `x-stainless-timeout`)
and answers with Anthropic's Message. A wait that runs out is a 504 naming the job,
which finishes anyway and can be read at `GET /v1/jobs/{id}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse
from kombu.exceptions import OperationalError

from api.anthropic_shapes import (
    MessageOut,
    anthropic_error,
    anthropic_responses,
    from_tierroute_error,
    job_error,
    message,
    tierroute_headers,
)
from api.auth import CallerKey
from api.deps import get_enqueuer, get_rt
from api.message_stream import message_events
from api.queue import Enqueuer
from tierroute.domain.anthropic_batch import spec_from_messages_body
from tierroute.domain.errors import TierrouteError
from tierroute.domain.specs import JobSpec
from tierroute.domain.status import JobStatus
from tierroute.runtime import Runtime
from tierroute.store.engine import raw_autocommit, session_scope
from tierroute.store.job_reads import read_job_view
from tierroute.store.jobs import claim_for_enqueue, create_job
from tierroute.store.request_params import load

router = APIRouter(prefix="/v1/messages", tags=["anthropic"], responses=anthropic_responses(401))
log = logging.getLogger(__name__)
BROKER_ERRORS = (OperationalError, ConnectionError, TimeoutError)
# The longest a request waits for its job, whatever the client allows.
MAX_WAIT_S = 600.0
# Answer this much before the client's own timeout, so it reads our 504, not its own.
TIMEOUT_MARGIN_S = 2.0
FIRST_POLL_S = 0.05
LONGEST_POLL_S = 0.5
FINISHED = frozenset(status.value for status in JobStatus if status.finished)


def wait_budget_s(client_timeout: str | None) -> float:
    """How long to wait for the job: the client's timeout less a margin, at most MAX_WAIT_S."""
    try:
        allowed = float(client_timeout) - TIMEOUT_MARGIN_S if client_timeout else MAX_WAIT_S
    except ValueError:
        allowed = MAX_WAIT_S
    return max(0.5, min(allowed, MAX_WAIT_S))


def _status(job_id: uuid.UUID) -> str | None:
    with raw_autocommit() as cur:
        cur.execute("SELECT status FROM jobs WHERE id = %s", (job_id,))
        row = cur.fetchone()
    return row[0] if row else None


def _finished_view(job_id: uuid.UUID, caller: uuid.UUID) -> tuple[dict[str, Any], Any]:
    view = read_job_view(job_id, api_key_id=caller)
    with raw_autocommit() as cur:
        params = load(cur, job_id)
    return view, params


def _submit(spec: JobSpec, caller: uuid.UUID, rt: Runtime, enqueuer: Enqueuer) -> uuid.UUID:
    with session_scope() as session:
        job, _ = create_job(
            session, spec, default_max_tokens=rt.settings.default_max_tokens, api_key_id=caller
        )
        job_id = job.id
    # After the commit, so a worker never sees a missing id; a failed send is the feeder's.
    try:
        with session_scope() as session:
            if claim_for_enqueue(session, job_id):
                enqueuer.classify([job_id])
    except BROKER_ERRORS as exc:
        log.warning("job %s stored; broker unreachable (%s), the feeder will send it", job_id, exc)
    return job_id


async def _wait(job_id: uuid.UUID, budget_s: float) -> bool:
    """Whether the job finished within `budget_s`."""
    deadline = time.monotonic() + budget_s
    pause = FIRST_POLL_S
    while True:
        if await run_in_threadpool(_status, job_id) in FINISHED:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, LONGEST_POLL_S)


@router.post(
    "",
    summary="Create a Message, routed (Anthropic's Messages API)",
    response_description="Anthropic's Message; headers name the tier, model, job and cost",
    responses={200: {"model": MessageOut}, **anthropic_responses(400, 401, 500, 504)},
)
async def create_message(
    request: Request,
    caller: CallerKey,
    rt: Annotated[Runtime, Depends(get_rt)],
    enqueuer: Annotated[Enqueuer, Depends(get_enqueuer)],
    x_stainless_timeout: Annotated[str | None, Header()] = None,
) -> Response:
    """`model` is `tierroute-auto` (routed), a tier name, or a tier's model (forced).

    With `stream: true` the answer is Anthropic's event stream, sent once the job is done."""
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return anthropic_error(400, "request body is not valid JSON")
    try:
        spec = spec_from_messages_body(body, rt.tiers, stream_ok=True)
        job_id = await run_in_threadpool(_submit, spec, caller, rt, enqueuer)
        if not await _wait(job_id, wait_budget_s(x_stainless_timeout)):
            return anthropic_error(
                504,
                f"job {job_id} is still running; it finishes anyway: poll GET /v1/jobs/{job_id}",
                headers={"x-tierroute-job-id": str(job_id)},
            )
        view, params = await run_in_threadpool(_finished_view, job_id, caller)
    except TierrouteError as exc:
        return from_tierroute_error(exc)
    headers = tierroute_headers(view)
    if view["status"] != JobStatus.SUCCEEDED:
        status, text = job_error(view)
        return anthropic_error(status, f"job {job_id}: {text}", headers=headers)
    answer = message(view, params)
    if body.get("stream"):
        # The job has finished: the stream is its whole answer, sent at once.
        return StreamingResponse(
            message_events(answer), media_type="text/event-stream", headers=headers
        )
    return JSONResponse(answer, headers=headers)
