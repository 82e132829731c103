"""Routing decisions alone, the report, health and metrics."""

from __future__ import annotations

import logging
import uuid
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
from tierroute.config import LEASE_MARGIN_S
from tierroute.domain.decisions import RoutingDecision
from tierroute.domain.specs import parse_spec
from tierroute.pipeline import budgets
from tierroute.pipeline.steps import decide
from tierroute.runtime import Runtime
from tierroute.store.aggregates import AggregateCache
from tierroute.store.engine import raw_transaction, session_scope
from tierroute.store.leases import insert_call
from tierroute.store.report import build_report

router = APIRouter(tags=["system"])
log = logging.getLogger(__name__)


@router.post("/v1/route", response_model=RouteOut, responses=error_responses(400, 401, 402))
def route(body: RouteIn, caller: CallerKey, rt: Annotated[Runtime, Depends(get_rt)]) -> RouteOut:
    """The routing decision for a prompt; nothing is executed.

    A classifier call is billed to the caller's key, within its daily budget (402 if not).
    """
    # Names the field at fault, as for a job ("body: force_tier: 7 is not a tier").
    spec = parse_spec(body.model_dump(), "body")
    forced = None if spec.force_tier is None else str(spec.force_tier)
    stored = spec.stored()  # RouteIn has a prompt and a plain system
    decision = _decide_within_budget(rt, caller, stored.prompt, stored.system, forced)
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


def _decide_within_budget(
    rt: Runtime, caller: uuid.UUID, prompt: str, system: str | None, forced: str | None
) -> RoutingDecision:
    """`decide`, with a classifier call's worst case held against the caller's budgets."""
    hold = None
    if forced is None and not rt.classifier.in_process:
        # Held until the call is billed, so concurrent requests cannot overspend.
        ttl_s = rt.settings.classify_timeout_s + LEASE_MARGIN_S
        with raw_transaction() as cur:
            hold = rt.budgets.hold(cur, caller, budgets.classifier_cost(rt.tiers, prompt), ttl_s)
    try:
        decision = decide(rt, prompt, system, forced)
    except BaseException:
        if hold is not None:
            with raw_transaction() as cur:
                budgets.release(cur, hold)
        raise
    if decision.call is not None or hold is not None:
        with raw_transaction() as cur:
            if decision.call is not None:
                insert_call(cur, decision.call, job_id=None, api_key_id=caller)
            budgets.release(cur, hold)
    return decision


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
