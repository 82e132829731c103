"""Routing decisions alone, the report, health and metrics."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from api.auth import CallerKey
from api.deps import get_enqueuer, get_rt
from api.metrics import render_metrics
from api.metrics_auth import get_aggregate_cache, require_metrics_access
from api.queue import Enqueuer
from api.schemas import Health, RouteIn, RouteOut, error_responses
from tierroute.db import raw_transaction, session_scope
from tierroute.jobstore import insert_call
from tierroute.metrics import AggregateCache
from tierroute.pipeline import decide
from tierroute.report import build_report
from tierroute.runtime import Runtime
from tierroute.specs import parse_spec

router = APIRouter(tags=["system"])
log = logging.getLogger(__name__)


@router.post("/v1/route", response_model=RouteOut, responses=error_responses(400, 401))
def route(body: RouteIn, _: CallerKey, rt: Annotated[Runtime, Depends(get_rt)]) -> RouteOut:
    """The routing decision for a prompt; nothing is executed. A classifier call is billed."""
    # Names the field at fault, as for a job ("body: force_tier: 7 is not a tier").
    spec = parse_spec(body.model_dump(), "body")
    forced = None if spec.force_tier is None else str(spec.force_tier)
    decision = decide(rt, spec.prompt, spec.system, forced)
    if decision.call is not None:
        with raw_transaction() as cur:
            insert_call(cur, decision.call, job_id=None)
    return RouteOut(
        tier=decision.tier,
        model=rt.tiers.get(decision.tier).model,
        confidence=decision.confidence,
        score=decision.score,
        reasoning=decision.reasoning,
        classifier=decision.classifier,
        version=decision.version,
        cost_ratio=decision.cost_ratio,
        fallback_reason=decision.fallback_reason,
        simulated=rt.settings.simulated,
    )


@router.get("/v1/report", responses=error_responses(401))
def report(caller: CallerKey, rt: Annotated[Runtime, Depends(get_rt)]) -> dict[str, Any]:
    """Distribution by tier, cost, cost if all Opus, savings and quality of the caller's jobs."""
    with session_scope() as session:
        return build_report(session, rt.tiers, api_key_id=caller)


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "Postgres or the broker is unreachable"}},
)
def healthz(
    rt: Annotated[Runtime, Depends(get_rt)],
    enqueuer: Annotated[Enqueuer, Depends(get_enqueuer)],
) -> Any:
    """Liveness: 200 when Postgres and the broker answer, 503 otherwise."""
    database = broker = "ok"
    try:
        with session_scope() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("healthz: database unreachable: %s", exc)
        database = "unreachable"
    try:
        enqueuer.ping()
    except Exception as exc:
        log.warning("healthz: broker unreachable: %s", exc)
        broker = "unreachable"
    healthy = database == broker == "ok"
    health = Health(
        status="ok" if healthy else "degraded",
        database=database,
        broker=broker,
        simulated=rt.settings.simulated,
    )
    return JSONResponse(status_code=200 if healthy else 503, content=health.model_dump())


@router.get(
    "/metrics",
    dependencies=[Depends(require_metrics_access)],
    responses=error_responses(401),
)
def metrics(
    rt: Annotated[Runtime, Depends(get_rt)],
    enqueuer: Annotated[Enqueuer, Depends(get_enqueuer)],
    aggregates: Annotated[AggregateCache, Depends(get_aggregate_cache)],
) -> Response:
    """Prometheus metrics: jobs, USD, tokens, call latency, queue depth, limiter waits.

    Needs `Authorization: Bearer` with TIERROUTE_METRICS_TOKEN, or an API key while
    that is unset; Postgres figures are at most TIERROUTE_METRICS_CACHE_S old.
    """
    return Response(render_metrics(rt, enqueuer, aggregates), media_type=CONTENT_TYPE_LATEST)
