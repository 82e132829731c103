"""The two steps of a job, as the Celery tasks run them: classify, then complete.

Complete is split around its model call: `claim_call`, the call (made on the tier
worker's event loop, worker/call_loop.py), then `finish_call`. Each step claims
the job with a conditional UPDATE (tierroute/store/transitions.py) that also takes
a lease, so a redelivered or duplicated message for a job that has moved on, or
that another worker holds, does nothing. Network calls happen outside transactions.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from typing import Any

from tierroute.config import LEASE_MARGIN_S
from tierroute.domain.budget import BudgetAction
from tierroute.domain.decisions import RoutingDecision
from tierroute.domain.errors import ProviderError, RateLimited, RetryableProviderError
from tierroute.domain.status import JobStatus
from tierroute.llm import caching
from tierroute.llm.admission import Admission, admit, settle_call
from tierroute.llm.caching import PrimerPass
from tierroute.llm.provider import CallResult, build_completion
from tierroute.pipeline import budgets
from tierroute.pipeline.context import Runtime
from tierroute.pipeline.conversation import (
    apply_floor,
    call_params_of,
    keep_adaptations,
    keep_content,
    sticky_floor,
)
from tierroute.store import leases, transitions
from tierroute.store.engine import Cursor, raw_autocommit, raw_transaction
from tierroute.store.retry import DATABASE_ERRORS, retrying_transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryLater:
    """The call failed transiently or must wait for a rate limit; run the task after `delay_s`."""

    delay_s: float
    reason: str


def decide(
    rt: Runtime, prompt: str, system: str | None, force_tier: str | None, floor: str | None = None
) -> RoutingDecision:
    """The routing decision for a prompt: a forced tier, or the classifier's proposal
    raised to `floor` (the tier of an earlier turn of its conversation)."""
    if force_tier is not None:
        return rt.policy.manual(rt.tiers.parse(force_tier))
    return apply_floor(rt.tiers, rt.classifier.classify(prompt, system), floor)


def classify_job(rt: Runtime, job_id: uuid.UUID) -> str | RetryLater | None:
    """Route a queued job: the tier whose queue should run it, RetryLater, or None to skip.

    RetryLater means the shared rate limiter held the classifier's call back; the
    job keeps waiting for its classifier rather than being routed without one.
    """
    if rt.classifier.in_process:
        return _classify_in_one_transaction(rt, job_id)
    lease_s = rt.settings.classify_timeout_s + LEASE_MARGIN_S
    # A claim lost in a crash is harmless (the message is redelivered and claims
    # again), so it does not wait for the WAL; the decision's commit does.
    with raw_transaction(flush_wal=False) as cur:
        claimed = transitions.claim_for_classify(cur, job_id, lease_s)
        if claimed is None:
            return _routed_tier_awaiting_run(cur, job_id)
        prompt, system = claimed.prompt, claimed.system
        # The classifier call is billed: reserve it (and the cheapest tier) first.
        unrouted = claimed.tier is None and claimed.force_tier is None
        if unrouted and not _classifier_fits(rt, cur, job_id, prompt, system):
            return None
        floor = sticky_floor(rt.tiers, cur, job_id)
    if claimed.tier is not None:  # re-driven after a failure: keep its routing
        with raw_transaction() as cur:
            tier = _route_again(rt, cur, job_id, claimed.tier, prompt, system)
        # A batch-mode job waits for its Message Batch (pipeline/message_batches), not a queue.
        return None if claimed.batch_api or tier is None else tier
    try:
        decision = decide(rt, prompt, system, claimed.force_tier, floor)
    except RateLimited as exc:
        with raw_transaction(flush_wal=False) as cur:
            leases.release_classify(cur, job_id)
        return _wait_for_limit(rt, exc)

    def keep(cur: Cursor, retried: bool) -> str | None:
        if retried:
            state = leases.tier_awaiting_run(cur, job_id)
            if state is None:
                return None  # the job no longer exists
            if state.status != JobStatus.CLASSIFYING:
                # The try whose connection broke had committed (we hold the lease).
                return state.tier if state.status == JobStatus.ROUTED else None
        return _record(rt, cur, job_id, decision, prompt, system, claimed.batch_api)

    # The classifier call is made and billed: its routing outlives a Postgres restart.
    return retrying_transaction(keep)


def _classify_in_one_transaction(rt: Runtime, job_id: uuid.UUID) -> str | RetryLater | None:
    # An in-process classifier (or a forced tier) answers in well under a millisecond
    # and never waits on the network, so the job is claimed, routed and recorded in
    # one transaction: one commit per job instead of two. Nothing is billed, so a
    # Postgres restart simply fails the task, which retries from the start.
    lease_s = rt.settings.classify_timeout_s + LEASE_MARGIN_S
    with raw_transaction() as cur:
        claimed = transitions.claim_for_classify(cur, job_id, lease_s)
        if claimed is None:
            return _routed_tier_awaiting_run(cur, job_id)
        prompt, system = claimed.prompt, claimed.system
        if claimed.tier is not None:  # re-driven after a failure: keep its routing
            tier = _route_again(rt, cur, job_id, claimed.tier, prompt, system)
            return None if claimed.batch_api or tier is None else tier
        floor = sticky_floor(rt.tiers, cur, job_id)
        decision = decide(rt, prompt, system, claimed.force_tier, floor)
        return _record(rt, cur, job_id, decision, prompt, system, claimed.batch_api)


def _record(
    rt: Runtime,
    cur: Cursor,
    job_id: uuid.UUID,
    decision: RoutingDecision,
    prompt: str,
    system: str | None,
    batch_api: bool,
) -> str | None:
    """Store the decision (and its billed call) under today's budgets; the tier to run on."""
    if decision.call is not None:
        leases.insert_call(cur, decision.call, job_id)  # billed, whatever happens next
    verdict = rt.budgets.check(cur, job_id, decision.tier, prompt, system)
    if verdict.tier is not None and verdict.tier != decision.tier:
        downgraded = rt.tiers.get(verdict.tier)
        decision = replace(
            decision, tier=downgraded.name, cost_ratio=rt.tiers.cost_ratio(downgraded)
        )
    if not transitions.record_decision(cur, job_id, decision):
        log.info("classify: job %s was cancelled or routed meanwhile", job_id)
        return None
    if verdict.action is not None:
        budgets.record(cur, job_id, verdict)
        log.info("classify: job %s %s by budget: %s", job_id, verdict.action, verdict.reason)
    if verdict.action is BudgetAction.REJECTED:
        budgets.reject(cur, job_id, verdict)
        return None
    log.debug("job %s routed to %s (%s)", job_id, decision.tier, decision.classifier)
    # A batch-mode job waits for its Message Batch (pipeline/message_batches), not a queue.
    return None if batch_api else decision.tier


def _classifier_fits(
    rt: Runtime, cur: Cursor, job_id: uuid.UUID, prompt: str, system: str | None
) -> bool:
    """Reserve the classifier's call and the cheapest tier before paying for the call.

    False: the job was rejected, as no budget has room for it even on the cheapest tier.
    """
    verdict = rt.budgets.check_classifier(cur, job_id, prompt, system)
    if verdict.action is not BudgetAction.REJECTED:
        return True
    budgets.reject(cur, job_id, verdict)
    log.info("classify: job %s rejected by budget before classifying: %s", job_id, verdict.reason)
    return False


def _route_again(
    rt: Runtime, cur: Cursor, job_id: uuid.UUID, routed: str, prompt: str, system: str | None
) -> str | None:
    """A retried or re-driven job keeps its tier only if today's budgets still fit it.

    The tier to run on (the routed one, or a cheaper one), or None when rejected.
    """
    transitions.keep_route(cur, job_id)
    verdict = rt.budgets.check(cur, job_id, routed, prompt, system)
    if verdict.action is None:
        return routed
    budgets.record(cur, job_id, verdict)
    log.info("classify: re-driven job %s %s by budget: %s", job_id, verdict.action, verdict.reason)
    if verdict.tier is None:
        budgets.reject(cur, job_id, verdict)
        return None
    budgets.reroute(cur, job_id, verdict.tier, rt.tiers.cost_ratio(rt.tiers.get(verdict.tier)))
    return verdict.tier


def _routed_tier_awaiting_run(cur: Cursor, job_id: uuid.UUID) -> str | RetryLater | None:
    # A redelivered message can still hand a routed job on: the first delivery may
    # have died between commit and enqueue. A duplicate complete is skipped by its lease.
    state = leases.tier_awaiting_run(cur, job_id)
    if state is None:
        log.warning("classify: job %s does not exist; dropping the message", job_id)
        return None
    if state.status == JobStatus.ROUTED:
        # A batch-mode job waits for its Message Batch (pipeline/message_batches), not a queue.
        return None if state.batch_api else state.tier
    if state.status == JobStatus.CLASSIFYING:
        return _held(job_id, leases.lease_left(cur, job_id))
    log.info("classify: job %s is %s; nothing to do", job_id, state.status)
    return None


@dataclass(frozen=True)
class ClaimedCall:
    """A job claimed for its model call, admitted by the limiter and the cache gate."""

    job_id: uuid.UUID
    params: dict[str, Any]
    attempts: int
    admission: Admission
    primer: PrimerPass | None


def claim_call(rt: Runtime, job_id: uuid.UUID) -> ClaimedCall | RetryLater | None:
    """Before a job's model call: claim it, then pass the cache gate and the limiter.

    None: nothing to do (finished, cancelled); RetryLater: look again later.
    """
    lease_s = rt.settings.request_timeout_s + LEASE_MARGIN_S
    with raw_autocommit() as cur:  # the claim is one statement: no transaction around it
        claimed = transitions.claim_for_complete(cur, job_id, lease_s)
        held_s = leases.lease_left(cur, job_id) if claimed is None else None
    if held_s is not None:
        return _held(job_id, held_s)
    if claimed is None:
        log.info("complete: job %s is finished, cancelled or held by another worker", job_id)
        return None
    tier = rt.tiers.get(claimed.tier)
    # The key's own cache scope: no key learns from `usage` what another sent.
    scope = caching.cache_scope(rt.settings, claimed.api_key_id)
    params, rules = build_completion(
        tier,
        claimed.prompt,
        claimed.system,
        claimed.max_tokens,
        claimed.thinking_override,
        cache_scope=scope,
        request_params=call_params_of(job_id, claimed.thinking_override),
    )
    keep_adaptations(job_id, tier.model, rules)
    primer = None
    try:
        # Priming makes jobs sharing a cacheable prefix wait (CacheWarming) for the first.
        primer = caching.enter_gate(rt.settings, params)
        admission = admit(rt.limiter(), params)
    except RateLimited as exc:
        caching.leave_gate(primer, warmed=False)
        # Not an attempt: no call was made, so waiting never moves a job towards dead.
        with raw_transaction(flush_wal=False) as cur:
            leases.unclaim_complete(cur, job_id, exc.detail)
        return _wait_for_limit(rt, exc)
    return ClaimedCall(job_id, params, claimed.attempts, admission, primer)


def finish_call(
    rt: Runtime, claimed: ClaimedCall, outcome: CallResult | ProviderError
) -> RetryLater | None:
    """After a job's model call: settle the limiter and the gate, keep the answer or retry."""
    settle_call(claimed.admission, outcome)
    caching.leave_gate(claimed.primer, warmed=isinstance(outcome, CallResult))
    job_id = claimed.job_id
    if isinstance(outcome, RetryableProviderError):
        return _after_transient_failure(rt, job_id, claimed.attempts, outcome)
    if isinstance(outcome, ProviderError):
        with raw_transaction() as cur:
            transitions.finish(cur, job_id, JobStatus.FAILED, error=outcome.detail)
        return None
    result = outcome

    def keep(cur: Cursor, retried: bool) -> None:
        if retried and leases.call_recorded(cur, job_id, result.record.request_id):
            return  # the try whose connection broke had committed
        transitions.succeed_with_call(cur, result.record, job_id, result.text)

    # Blocks beyond text first: a reader that sees the job succeed finds them too.
    keep_content(job_id, result.message)
    # The call is made and billed: its result outlives a Postgres restart. One
    # statement stores both, so it commits on its own, durably.
    try:
        retrying_transaction(keep, autocommit=True)
    except DATABASE_ERRORS:
        raise  # Postgres stayed away: the job's lease runs out and it is tried again
    except Exception as exc:
        _fail_unstorable(job_id, result, exc)
    return None


def _fail_unstorable(job_id: uuid.UUID, result: CallResult, exc: Exception) -> None:
    """A call answered and billed whose answer Postgres refuses (e.g. a NUL character).

    Trying again would pay for the same refusal each time, so the job fails with the
    reason, and its bill is kept.
    """
    error = f"the answer could not be stored: {type(exc).__name__}: {exc}"
    log.error("complete: job %s: %s", job_id, error)

    def fail(cur: Cursor, retried: bool) -> None:
        if retried and leases.call_recorded(cur, job_id, result.record.request_id):
            return  # the try whose connection broke had committed
        transitions.fail_with_call(cur, result.record, job_id, error)

    try:
        retrying_transaction(fail, autocommit=True)
    except DATABASE_ERRORS:
        raise
    except Exception:
        # The bill itself is refused: fail the job anyway, so it is not paid for again.
        log.exception(
            "complete: job %s: its call (request %s, %s USD) could not be stored",
            job_id,
            result.record.request_id,
            result.record.cost_usd,
        )
        with raw_transaction() as cur:
            transitions.finish(cur, job_id, JobStatus.FAILED, error=error)


def abandon_call(claimed: ClaimedCall) -> None:
    """The call died of something unexpected: free the cache gate for another primer.

    The job stays claimed; its lease runs out and the message's redelivery retries it.
    """
    caching.leave_gate(claimed.primer, warmed=False)


def _after_transient_failure(
    rt: Runtime, job_id: uuid.UUID, attempts: int, exc: RetryableProviderError
) -> RetryLater | None:
    settings = rt.settings
    if attempts >= settings.max_attempts:
        error = f"gave up after {attempts} attempts: {exc.detail}"
        with raw_transaction() as cur:
            transitions.finish(cur, job_id, JobStatus.DEAD, error=error)
        return None
    backoff = settings.retry_backoff_base_s * 2 ** (attempts - 1)
    # Never retry before the server's retry-after; never wait longer than the cap.
    delay = min(max(backoff, exc.retry_after_s or 0.0), settings.retry_backoff_max_s)
    reason = f"attempt {attempts} failed: {exc.detail}; retrying in {delay:.1f}s"
    with raw_transaction() as cur:
        leases.release_for_retry(cur, job_id, reason)
    return RetryLater(delay_s=delay, reason=reason)


def _held(job_id: uuid.UUID, left_s: float | None) -> RetryLater:
    # Another worker holds the job, or a dead one whose lease has not run out (a
    # message redelivered early: RabbitMQ, a killed prefork child). Dropping this
    # message could leave the job with none, so look again once the lease is over.
    delay = (left_s or 0.0) + 1.0
    return RetryLater(delay_s=delay, reason=f"job {job_id} is leased; retrying in {delay:.1f}s")


def _wait_for_limit(rt: Runtime, exc: RateLimited) -> RetryLater:
    # Capped like any retry, so no countdown outlasts the broker's visibility timeout;
    # a longer wait simply asks the limiter again.
    delay = min(exc.wait_s, rt.settings.retry_backoff_max_s)
    return RetryLater(delay_s=delay, reason=f"{exc.detail}; retrying in {delay:.1f}s")
