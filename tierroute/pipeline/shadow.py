"""Shadow judging: learn from the traffic itself which prompts a cheaper tier answers as well.

A share of finished jobs (`shadow_rate`, chosen by a hash of the job id, so a
redelivered message chooses the same jobs) is answered again on the neighbouring
tier: the tier below the one that ran it, or above the cheapest. A judge call (the
`judge_model`, by default the top tier's, with structured output) then says whether
the cheaper of the two answers is as good as the dearer one. The verdict lands in
`shadow_verdicts`; the two calls are `model_calls` rows with purposes shadow and
judge, billed to the job's key; `tierroute train` turns verdicts into labels.

The learning cost is capped: before its calls, a job reserves their worst case
(its `shadow_verdicts` row, pending, holds it) and goes ahead only if today's
learning cost, billed and reserved, stays within `shadow_max_share` of today's
completion spend, and its key's and the global budgets have room (a budget hold).
Checks of the cap are serialised by an advisory lock, so two workers cannot both
take its last cent. A job the cap or a budget leaves out is simply not judged.

A job of a `batch_api` batch is judged through Message Batches instead, at the batch
rate, when its own Message Batch's results are applied
(tierroute/pipeline/message_batches/learning.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tierroute.domain.budget import BudgetExceeded
from tierroute.domain.cost import TokenCounts, cost_usd
from tierroute.domain.errors import ProviderError, RateLimited
from tierroute.domain.status import CallPurpose
from tierroute.domain.tiers import Tier, TierTable
from tierroute.llm import caching
from tierroute.llm.admission import limited_call
from tierroute.llm.provider import CallResult, build_completion_params
from tierroute.pipeline import budgets
from tierroute.pipeline.budget_costs import params_ceiling
from tierroute.pipeline.context import Runtime
from tierroute.pipeline.steps import RetryLater
from tierroute.store import leases
from tierroute.store.engine import Cursor, fetch_one_as, one_row, raw_transaction

log = logging.getLogger(__name__)

JUDGE_SYSTEM = """You compare two answers to the same prompt. The first comes from a
cheaper model, the second from a dearer one. Say whether the cheaper answer is as good
as the dearer one for the person who asked: as correct, as complete and as useful.
Style and length alone do not matter. Give one sentence of reasoning."""

JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "cheaper_as_good": {"type": "boolean"},
        "reasoning": {"type": "string"},
    },
    "required": ["cheaper_as_good", "reasoning"],
    "additionalProperties": False,
}
JUDGE_MAX_TOKENS = 128
# Advisory lock (namespace, key) that serialises checks of the learning-cost cap.
CAP_LOCK = (0x5AD0, 1)
# A pending reservation older than this belongs to a worker that died: not counted.
PENDING_TTL_S = 3600.0
# A batch-mode reservation waits for up to two Message Batches, each up to 24 hours.
BATCH_PENDING_TTL_S = 2 * 24 * 3600.0 + PENDING_TTL_S

# Today's (UTC) completion spend, and the learning cost billed or reserved.
SPEND_TODAY = """
    WITH day AS (
        SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start
    )
    SELECT
      (SELECT coalesce(sum(cost_usd), 0) FROM model_calls, day
        WHERE created_at >= day.start AND purpose = 'complete'),
      (SELECT coalesce(sum(cost_usd), 0) FROM model_calls, day
        WHERE created_at >= day.start AND purpose IN ('shadow', 'judge'))
    + (SELECT coalesce(sum(reserved_usd), 0) FROM shadow_verdicts
        WHERE as_good IS NULL AND reserved_usd IS NOT NULL
          AND created_at > now() - make_interval(secs => CASE WHEN batch_stage IS NULL
                THEN %(ttl_s)s ELSE %(batch_ttl_s)s END))
"""

JOB = """
    SELECT j.status, j.tier, j.prompt, j.system, j.max_tokens, j.thinking_override,
           j.api_key_id, j.result_text, j.force_tier, j.batch_api,
           EXISTS (SELECT 1 FROM shadow_verdicts v WHERE v.job_id = j.id) AS judged
      FROM jobs j WHERE j.id = %(id)s
"""

RESERVE = """
    INSERT INTO shadow_verdicts (job_id, cheaper_tier, dearer_tier, judge_model, reserved_usd)
    VALUES (%(id)s, %(cheaper)s, %(dearer)s, %(judge)s, %(usd)s)
    ON CONFLICT (job_id) DO NOTHING
"""

VERDICT = """
    UPDATE shadow_verdicts
       SET as_good = %(as_good)s, reasoning = %(reasoning)s, reserved_usd = NULL,
           judged_at = now()
     WHERE job_id = %(id)s
"""

DROP_PENDING = "DELETE FROM shadow_verdicts WHERE job_id = %(id)s AND as_good IS NULL"


def chosen(job_id: uuid.UUID | str, rate: float) -> bool:
    """Whether a job is in the shadow-judged share: a hash of its id, below `rate`."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(str(job_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def tier_pair(tiers: TierTable, tier_name: str) -> tuple[Tier, Tier] | None:
    """(cheaper, dearer): the job's tier and the one below it, or above the cheapest."""
    ordered = sorted(tiers.tiers, key=lambda t: t.rank)
    if len(ordered) < 2:
        return None
    index = next(i for i, t in enumerate(ordered) if t.name == tier_name)
    low = max(index - 1, 0)
    return ordered[low], ordered[low + 1]


def judge_tier(rt: Runtime) -> Tier | None:
    """The tier whose model and prices the judge uses (the top tier unless configured)."""
    model = rt.settings.judge_model or rt.tiers.top.model
    return next((t for t in rt.tiers.tiers if t.model == model), None)


def build_judge_params(
    judge: Tier, prompt: str, cheaper: Tier, cheaper_text: str, dearer_text: str
) -> dict[str, Any]:
    """The `messages.create` arguments for one judgement, with structured output."""
    content = (
        f"<prompt>\n{prompt}\n</prompt>\n"
        f'<cheaper_answer tier="{cheaper.rank}">\n{cheaper_text}\n</cheaper_answer>\n'
        f"<dearer_answer>\n{dearer_text}\n</dearer_answer>"
    )
    return {
        "model": judge.model,
        "max_tokens": JUDGE_MAX_TOKENS,
        "system": JUDGE_SYSTEM,
        "messages": [{"role": "user", "content": content}],
        "output_config": {"format": {"type": "json_schema", "schema": JUDGE_SCHEMA}},
    }


def parse_verdict(result: CallResult) -> tuple[bool, str] | None:
    """(cheaper_as_good, reasoning) from the judge's answer; None if it gave none."""
    return verdict_of(result.text, result.message.stop_reason)


def verdict_of(text: str, stop_reason: str | None) -> tuple[bool, str] | None:
    """(cheaper_as_good, reasoning) from the judge's text; None if it gave none."""
    if stop_reason == "refusal":
        return None
    try:
        answer = json.loads(text)
        as_good = answer["cheaper_as_good"]
        reasoning = str(answer.get("reasoning", "")).strip()
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return (as_good, reasoning) if isinstance(as_good, bool) else None


@dataclass(frozen=True)
class ShadowJob:
    """A finished job to be judged, and the calls its judgement needs."""

    job_id: uuid.UUID
    prompt: str
    answer: str
    tier: Tier  # the tier that answered it
    shadow: Tier  # the neighbouring tier that answers it again
    cheaper: Tier
    judge: Tier
    shadow_params: dict[str, Any]
    api_key_id: uuid.UUID | None

    def judge_params(self, shadow_text: str) -> dict[str, Any]:
        """The judge's request, once the shadow answer is known."""
        if self.shadow.name == self.cheaper.name:
            return build_judge_params(
                self.judge, self.prompt, self.cheaper, shadow_text, self.answer
            )
        return build_judge_params(self.judge, self.prompt, self.cheaper, self.answer, shadow_text)

    def worst_case_usd(self) -> Decimal:
        """The most the shadow and judge calls can bill together."""
        shadow_max = int(self.shadow_params["max_tokens"])
        judge = params_ceiling(self.judge, self.judge_params(""))
        # The shadow answer, not yet known, is read by the judge: at most its max_tokens.
        unseen = cost_usd(TokenCounts(input_tokens=shadow_max, output_tokens=0), self.judge)
        return params_ceiling(self.shadow, self.shadow_params) + judge + unseen


@dataclass(frozen=True)
class JobToJudge:
    """A job as judging reads it (JOB's columns)."""

    status: str
    tier: str | None
    prompt: str
    system: str | None
    max_tokens: int
    thinking_override: dict[str, Any] | None
    api_key_id: uuid.UUID | None
    result_text: str | None
    force_tier: str | None
    batch_api: bool
    judged: bool  # its verdict row exists


def load_job(
    rt: Runtime, cur: Cursor, job_id: uuid.UUID, *, batch_api: bool = False, claimed: bool = False
) -> ShadowJob | None:
    """The job to judge, or None if it is not one: `batch_api` picks which mode's jobs;
    `claimed`: its verdict row is already written (a batch-mode judgement under way)."""
    row = fetch_one_as(cur, JobToJudge, JOB, {"id": job_id})
    if row is None or row.tier is None:
        return None
    # Forced tiers teach the router nothing. Batch-mode jobs are judged through
    # Message Batches, live jobs by live calls.
    mode_matches = row.batch_api == batch_api and row.judged == claimed
    if row.status != "succeeded" or row.force_tier is not None or not mode_matches:
        return None
    pair = tier_pair(rt.tiers, row.tier)
    judge = judge_tier(rt)
    if pair is None or judge is None:
        if judge is None:
            log.error("shadow: judge model %s is no tier's model", rt.settings.judge_model)
        return None
    cheaper, dearer = pair
    tier = rt.tiers.get(row.tier)
    shadow = dearer if tier.name == cheaper.name else cheaper
    scope = caching.cache_scope(rt.settings, row.api_key_id)
    params = build_completion_params(
        shadow, row.prompt, row.system, row.max_tokens, row.thinking_override, cache_scope=scope
    )
    answer = row.result_text or ""
    return ShadowJob(
        job_id, row.prompt, answer, tier, shadow, cheaper, judge, params, row.api_key_id
    )


def _reserve(rt: Runtime, job_id: uuid.UUID) -> tuple[ShadowJob, int | None] | None:
    """Claim the job for judging and reserve its worst case; None if it is left out."""
    with raw_transaction() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", CAP_LOCK)
        job = load_job(rt, cur, job_id)
        if job is None:
            return None
        worst = job.worst_case_usd()
        room = learning_room(rt, cur)
        if worst > room:
            log.info(
                "shadow: job %s left out: %s would pass the cap (room %s)", job_id, worst, room
            )
            return None
        try:
            hold = rt.budgets.hold(cur, job.api_key_id, worst, rt.settings.request_timeout_s * 3)
        except BudgetExceeded as exc:
            log.info("shadow: job %s left out by budget: %s", job_id, exc.detail)
            return None
        cur.execute(
            RESERVE,
            {
                "id": job_id,
                "cheaper": job.cheaper.name,
                "dearer": job.tier.name if job.shadow.name == job.cheaper.name else job.shadow.name,
                "judge": job.judge.model,
                "usd": worst,
            },
        )
        if cur.rowcount == 0:  # another worker claimed it since
            budgets.release(cur, hold)
            return None
    return job, hold


def learning_room(rt: Runtime, cur: Cursor) -> Decimal:
    """What today's learning may still bill or reserve under the cap; hold CAP_LOCK first."""
    cur.execute(SPEND_TODAY, {"ttl_s": PENDING_TTL_S, "batch_ttl_s": BATCH_PENDING_TTL_S})
    completion, learning = one_row(cur)
    return Decimal(str(rt.settings.shadow_max_share)) * Decimal(completion) - Decimal(learning)


def shadow_job(rt: Runtime, job_id: uuid.UUID) -> bool | RetryLater | None:
    """Judge one finished job if it is chosen and the cap allows; its verdict or None.

    RetryLater: the rate limiter held the shadow call back before anything was billed,
    and the reservation was let go; the task asks again after the delay.
    """
    if not chosen(job_id, rt.settings.shadow_rate):
        return None
    reserved = _reserve(rt, job_id)
    if reserved is None:
        return None
    job, hold = reserved
    calls: list[CallResult] = []
    verdict: tuple[bool, str] | None = None
    retry: RetryLater | None = None
    try:
        shadow = _call(rt, job.shadow_params, CallPurpose.SHADOW)
        calls.append(shadow)
        judged = _call(rt, job.judge_params(shadow.text), CallPurpose.JUDGE)
        calls.append(judged)
        verdict = parse_verdict(judged)
    except RateLimited as exc:
        if not calls:  # nothing billed yet: judge it once the limiter has room
            delay = min(exc.wait_s, rt.settings.retry_backoff_max_s)
            retry = RetryLater(delay_s=delay, reason=f"{exc.detail}; retrying in {delay:.1f}s")
        log.info("shadow: job %s: %s", job_id, exc.detail)
    except ProviderError as exc:
        log.warning("shadow: job %s not judged: %s", job_id, exc.detail)
    finally:
        _settle(job_id, hold, calls, verdict)
    if retry is not None:
        return retry
    return None if verdict is None else verdict[0]


def _call(rt: Runtime, params: dict[str, Any], purpose: CallPurpose) -> CallResult:
    return limited_call(
        rt.limiter(),
        rt.client,
        params,
        purpose=purpose,
        tiers=rt.tiers,
        simulated=rt.settings.simulated,
        timeout_s=rt.settings.request_timeout_s,
    )


def _settle(
    job_id: uuid.UUID, hold: int | None, calls: list[CallResult], verdict: tuple[bool, str] | None
) -> None:
    """Bill the calls made, and keep the verdict (or drop the pending row without one)."""
    with raw_transaction() as cur:
        for result in calls:
            leases.insert_call(cur, result.record, job_id)
        if verdict is None:
            cur.execute(DROP_PENDING, {"id": job_id})
        else:
            cur.execute(VERDICT, {"id": job_id, "as_good": verdict[0], "reasoning": verdict[1]})
        budgets.release(cur, hold)
