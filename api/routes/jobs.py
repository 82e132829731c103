"""/v1/jobs: submit one prompt, read its status and answer, rate it."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError

from api.auth import CallerKey
from api.deps import get_enqueuer, get_rt, parse_id
from api.queue import Enqueuer
from api.schemas import JobAccepted, JobView, RatingIn, RatingOut, error_responses
from tierroute.domain.specs import JobSpec
from tierroute.runtime import Runtime
from tierroute.store.engine import session_scope
from tierroute.store.job_reads import read_job_view
from tierroute.store.jobs import claim_for_enqueue, create_job, rate_job, retry_job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=error_responses(400, 401, 404))
log = logging.getLogger(__name__)
# What a publish raises when the broker is away (kombu wraps redis and socket errors).
BROKER_ERRORS = (OperationalError, ConnectionError, TimeoutError)


@router.post(
    "",
    status_code=202,
    response_model=JobAccepted,
    responses={200: {"model": JobAccepted, "description": "the job this Idempotency-Key made"}},
)
def submit_job(
    spec: JobSpec,
    caller: CallerKey,
    rt: Annotated[Runtime, Depends(get_rt)],
    enqueuer: Annotated[Enqueuer, Depends(get_enqueuer)],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Any:
    """Accept one prompt: 202 with its id. A repeated Idempotency-Key returns the first job."""
    with session_scope() as session:
        job, created = create_job(
            session,
            spec,
            default_max_tokens=rt.settings.default_max_tokens,
            api_key_id=caller,
            idempotency_key=idempotency_key,
        )
        accepted = JobAccepted(id=str(job.id), status=job.status)
    if not created:
        return JSONResponse(status_code=200, content=accepted.model_dump())
    _send_now(enqueuer, job.id)
    return accepted


def _send_now(enqueuer: Enqueuer, job_id: uuid.UUID) -> None:
    # Called only after the job is committed, so a worker never sees a missing id.
    # The stamp and the send share a transaction, as in the feeder: whoever stamps
    # the job sends it, and a send that fails leaves it for the feeder.
    try:
        with session_scope() as session:
            if claim_for_enqueue(session, job_id):
                enqueuer.classify([job_id])
    except BROKER_ERRORS as exc:
        log.warning("job %s stored; broker unreachable (%s), the feeder will send it", job_id, exc)


@router.post(
    "/{job_id}/retry", status_code=202, response_model=JobAccepted, responses=error_responses(409)
)
def retry(
    job_id: str, caller: CallerKey, enqueuer: Annotated[Enqueuer, Depends(get_enqueuer)]
) -> JobAccepted:
    """Re-queue a failed or dead job (409 otherwise); it keeps its routing."""
    parsed = parse_id("job", job_id)
    with session_scope() as session:
        retry_job(session, parsed, api_key_id=caller)
    _send_now(enqueuer, parsed)
    return JobAccepted(id=str(parsed), status="queued")


@router.get("/{job_id}", response_model=JobView)
def read_job(job_id: str, caller: CallerKey) -> dict[str, Any]:
    """Status, tier, routing, answer, tokens, dollars and timings of one job."""
    return read_job_view(parse_id("job", job_id), api_key_id=caller)


@router.post(
    "/{job_id}/rating", status_code=201, response_model=RatingOut, responses=error_responses(409)
)
def rate(job_id: str, body: RatingIn, caller: CallerKey) -> RatingOut:
    """Record a satisfaction rating in [0, 1] for a succeeded job."""
    with session_scope() as session:
        rating = rate_job(
            session,
            parse_id("job", job_id),
            body.satisfaction,
            body.comment,
            api_key_id=caller,
        )
        return RatingOut(id=rating.id, job_id=str(rating.job_id), satisfaction=rating.satisfaction)
