"""Daily USD budgets, per API key and global: ceilings that billed spend never passes.

Every call is priced at its worst case before it is made (tierroute/pipeline/budget_costs.py:
every allowed output token, thinking included, input estimated from above, cache
writes at their premium) and that worst case is reserved against every budget that
applies (the key's own and the global one) until the call is billed:

- before a job's classifier call, the classifier's worst case plus the job's worst
  case on the cheapest tier (a job that could not run on any tier is not classified);
- when a job is routed, or routed again (a retry or a redrive keeps its tier), its
  worst case on that tier replaces it (`jobs.reserved_usd`);
- a call with no job (a /v1/route classifier call) holds its worst case in
  `budget_holds` until it is billed to the caller's key;
- a job already in flight when a budget first applies to it is reserved by the
  first check under that budget.

The spend a reservation is compared with is what was billed today (UTC) plus what
every other job in flight and every live hold reserves. When a job would not fit,
the policy decides: `reject` fails the job with the reason; `downgrade` moves it to
the dearest cheaper tier that fits, and rejects it only when none does. The action
and its reason land in routing_decisions.

Checks take a transaction-scoped advisory lock per budget, so two workers cannot
both reserve the last dollar.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tierroute.domain.budget import (
    FITS,
    Budget,
    BudgetAction,
    BudgetExceeded,
    BudgetPolicy,
    BudgetVerdict,
)
from tierroute.domain.status import IN_FLIGHT
from tierroute.domain.tiers import Tier, TierTable
from tierroute.pipeline.budget_costs import classifier_ceiling, completion_ceiling
from tierroute.store import transitions
from tierroute.store.engine import Cursor, fetch_all_as, fetch_one_as, one_row
from tierroute.store.models import status_list

# Advisory-lock namespace for budget checks (any constant unlikely to clash).
LOCK_NAMESPACE = 0x7E3B
GLOBAL_LOCK_KEY = 0
# Stands for "no job" where a query excludes the job being checked.
NO_JOB = uuid.UUID(int=0)


JOB_KEY = """
    SELECT j.api_key_id, k.name AS key_name, k.daily_budget_usd AS key_limit, j.max_tokens,
           j.thinking_override
      FROM jobs j LEFT JOIN api_keys k ON k.id = j.api_key_id
     WHERE j.id = %(id)s
"""

KEY_BUDGET = "SELECT name, daily_budget_usd FROM api_keys WHERE id = %(key)s"

# Billed today, plus what other jobs in flight and live holds reserve. %(key)s NULL
# is the global budget: everybody's spend. A call with no job names its own key.
COMMITTED = f"""
    WITH day AS (
        SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start
    )
    SELECT
      (SELECT coalesce(sum(c.cost_usd), 0)
         FROM model_calls c LEFT JOIN jobs j ON j.id = c.job_id, day
        WHERE c.created_at >= day.start
          AND (%(key)s::uuid IS NULL OR coalesce(c.api_key_id, j.api_key_id) = %(key)s))
    + (SELECT coalesce(sum(j.reserved_usd), 0)
         FROM jobs j
        WHERE j.status IN ({status_list(IN_FLIGHT)}) AND j.id <> %(id)s
          AND (%(key)s::uuid IS NULL OR j.api_key_id = %(key)s))
    + (SELECT coalesce(sum(h.usd), 0)
         FROM budget_holds h
        WHERE h.expires_at > now() AND (%(key)s::uuid IS NULL OR h.api_key_id = %(key)s))
"""

RESERVE = "UPDATE jobs SET reserved_usd = %(usd)s WHERE id = %(id)s"

# A job another transaction holds is skipped, not waited for: that transaction may
# itself wait for this budget's lock. Such a job is being claimed or routed, and
# its own check reserves it.
UNRESERVED = f"""
    SELECT id, prompt, system, max_tokens, thinking_override, tier, force_tier
      FROM jobs
     WHERE status IN ({status_list(IN_FLIGHT)}) AND reserved_usd IS NULL AND id <> %(id)s
       AND (%(key)s::uuid IS NULL OR api_key_id = %(key)s)
       FOR UPDATE SKIP LOCKED
"""


@dataclass(frozen=True)
class JobKey:
    """A job's key with that key's daily budget, and what bounds the job's cost (JOB_KEY)."""

    api_key_id: uuid.UUID | None
    key_name: str | None
    key_limit: Decimal | None
    max_tokens: int
    thinking_override: dict[str, Any] | None


@dataclass(frozen=True)
class KeyBudget:
    """A key's name and daily budget (KEY_BUDGET)."""

    name: str
    daily_budget_usd: Decimal | None


@dataclass(frozen=True)
class Unreserved:
    """A job in flight that holds no reservation yet (UNRESERVED)."""

    id: uuid.UUID
    prompt: str
    system: str | None
    max_tokens: int
    thinking_override: dict[str, Any] | None
    tier: str | None
    force_tier: str | None


RECORD = """
    UPDATE routing_decisions SET budget_action = %(action)s, budget_reason = %(reason)s
     WHERE job_id = %(id)s
"""

# A routed job moved to a cheaper tier when it is routed again (retry, redrive).
REROUTE = """
    WITH moved AS (
        UPDATE jobs SET tier = %(tier)s, updated_at = now()
         WHERE id = %(id)s AND status = 'routed'
        RETURNING id
    )
    UPDATE routing_decisions SET tier = %(tier)s, cost_ratio = %(cost_ratio)s
     WHERE job_id IN (SELECT id FROM moved)
"""

HOLD = """
    INSERT INTO budget_holds (api_key_id, usd, expires_at)
    VALUES (%(key)s, %(usd)s, now() + make_interval(secs => %(ttl_s)s))
    RETURNING id
"""

# Holds are few and short; expired ones go whenever a new one is taken.
PURGE_HOLDS = "DELETE FROM budget_holds WHERE expires_at < now() - interval '1 hour'"


def worst_case_cost(
    tier: Tier,
    prompt: str,
    system: str | None,
    max_tokens: int,
    thinking_override: dict[str, Any] | None = None,
) -> Decimal:
    """The most a job can cost on a tier (see tierroute/pipeline/budget_costs.py)."""
    return completion_ceiling(tier, prompt, system, max_tokens, thinking_override)


def classifier_cost(tiers: TierTable, prompt: str) -> Decimal:
    """The most the llm classifier's call for `prompt` can cost."""
    return classifier_ceiling(tiers, prompt)


class BudgetGuard:
    """Reserves each call's worst case against the global budget and its key's budget."""

    def __init__(
        self,
        tiers: TierTable,
        global_limit_usd: float | None,
        policy: BudgetPolicy,
        key_budgets_ttl_s: float = 10.0,
    ) -> None:
        self._tiers = tiers
        self._global = None if global_limit_usd is None else Decimal(str(global_limit_usd))
        self._policy = policy
        self._ttl_s = key_budgets_ttl_s
        self._any_key_budget: tuple[float, bool] | None = None

    def check(
        self,
        cur: Cursor,
        job_id: uuid.UUID,
        tier_name: str,
        prompt: str,
        system: str | None,
    ) -> BudgetVerdict:
        """Where the routed job may run under today's budgets; FITS when nothing changes.

        Reserves the job's worst case on that tier (nothing when it is rejected).
        """
        if not self.applies(cur):
            return FITS  # the common case costs one cached flag, no query per job
        found = self._job_budgets(cur, job_id)
        if found is None:
            return FITS
        budgets, max_tokens, thinking = found
        verdict = self._verdict(
            budgets, tier_name, lambda t: worst_case_cost(t, prompt, system, max_tokens, thinking)
        )
        if verdict.action is not BudgetAction.REJECTED:
            tier = self._tiers.get(verdict.tier or tier_name)
            cost = worst_case_cost(tier, prompt, system, max_tokens, thinking)
            cur.execute(RESERVE, {"id": job_id, "usd": cost})
        return verdict

    def check_classifier(
        self, cur: Cursor, job_id: uuid.UUID, prompt: str, system: str | None
    ) -> BudgetVerdict:
        """Before a job's classifier call: reserve it and the cheapest tier, or reject.

        A job that could not run even on the cheapest tier is not worth classifying.
        """
        if not self.applies(cur):
            return FITS
        found = self._job_budgets(cur, job_id)
        if found is None:
            return FITS
        budgets, max_tokens, thinking = found
        cheapest = self._tiers.cheapest
        cost = classifier_cost(self._tiers, prompt) + worst_case_cost(
            cheapest, prompt, system, max_tokens, thinking
        )
        over = [b for b in budgets if not b.fits(cost)]
        if over:
            reason = f"{over[0].describe(cost)} (its classifier call and {cheapest.name})"
            return BudgetVerdict(tier=None, action=BudgetAction.REJECTED, reason=reason)
        cur.execute(RESERVE, {"id": job_id, "usd": cost})
        return FITS

    def hold(self, cur: Cursor, key_id: uuid.UUID | None, usd: Decimal, ttl_s: float) -> int | None:
        """Hold `usd` for a call with no job; its id for `release`, None without budgets.

        Raises BudgetExceeded when a budget has no room for it.
        """
        if not self.applies(cur):
            return None
        budgets = self._budgets(cur, NO_JOB, key_id)
        if not budgets:
            return None
        over = [b for b in budgets if not b.fits(usd)]
        if over:
            raise BudgetExceeded(over[0].describe(usd))
        cur.execute(PURGE_HOLDS)
        cur.execute(HOLD, {"key": key_id, "usd": usd, "ttl_s": ttl_s})
        return int(one_row(cur)[0])

    def _job_budgets(
        self, cur: Cursor, job_id: uuid.UUID
    ) -> tuple[list[Budget], int, dict[str, Any] | None] | None:
        job = fetch_one_as(cur, JobKey, JOB_KEY, {"id": job_id})
        if job is None:
            return None
        budgets = []
        if job.key_limit is not None:
            scope = f"key {job.key_name!r}"
            budgets.append(self._budget(cur, job_id, job.api_key_id, scope, job.key_limit))
        if self._global is not None:
            budgets.append(self._budget(cur, job_id, None, "global", self._global))
        if not budgets:
            return None
        return budgets, job.max_tokens, job.thinking_override

    def _budgets(self, cur: Cursor, job_id: uuid.UUID, key_id: uuid.UUID | None) -> list[Budget]:
        budgets = []
        if key_id is not None:
            key = fetch_one_as(cur, KeyBudget, KEY_BUDGET, {"key": key_id})
            if key is not None and key.daily_budget_usd is not None:
                scope = f"key {key.name!r}"
                budgets.append(self._budget(cur, job_id, key_id, scope, key.daily_budget_usd))
        if self._global is not None:
            budgets.append(self._budget(cur, job_id, None, "global", self._global))
        return budgets

    def _verdict(
        self, budgets: list[Budget], tier_name: str, cost_on: Callable[[Tier], Decimal]
    ) -> BudgetVerdict:
        routed = self._tiers.get(tier_name)
        cost = cost_on(routed)
        over = [b for b in budgets if not b.fits(cost)]
        if not over:
            return FITS
        reason = over[0].describe(cost)
        if self._policy is BudgetPolicy.DOWNGRADE:
            cheaper = [t for t in self._tiers.tiers if t.rank < routed.rank]
            for tier in sorted(cheaper, key=lambda t: t.rank, reverse=True):
                cheaper_cost = cost_on(tier)
                if all(b.fits(cheaper_cost) for b in budgets):
                    return BudgetVerdict(
                        tier=tier.name,
                        action=BudgetAction.DOWNGRADED,
                        reason=f"{reason}; downgraded from {routed.name} to {tier.name}",
                    )
            reason += "; no cheaper tier fits"
        return BudgetVerdict(tier=None, action=BudgetAction.REJECTED, reason=reason)

    def _budget(
        self, cur: Cursor, job_id: uuid.UUID, key_id: uuid.UUID | None, scope: str, limit: Decimal
    ) -> Budget:
        # Serialise decisions under this budget until the transaction commits the
        # reservation, which the next decision then counts.
        lock_key = GLOBAL_LOCK_KEY if key_id is None else key_id.int & 0x7FFFFFFF
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, lock_key))
        self._reserve_unreserved(cur, job_id, key_id)
        cur.execute(COMMITTED, {"id": job_id, "key": key_id})
        return Budget(scope=scope, limit_usd=Decimal(limit), committed_usd=one_row(cur)[0])

    def _reserve_unreserved(self, cur: Cursor, job_id: uuid.UUID, key_id: uuid.UUID | None) -> None:
        # Jobs that went in flight while no budget applied hold nothing: a budget set
        # since then would not see them. Reserve their worst case now (none, usually).
        params = {"id": job_id, "key": key_id}
        for other in fetch_all_as(cur, Unreserved, UNRESERVED, params):
            prompt, system = other.prompt, other.system
            tier = other.tier or other.force_tier
            if tier is not None:
                usd = worst_case_cost(
                    self._tiers.get(tier), prompt, system, other.max_tokens, other.thinking_override
                )
            else:  # maybe in its classifier's call; its own routing checks the rest
                usd = classifier_cost(self._tiers, prompt) + worst_case_cost(
                    self._tiers.cheapest, prompt, system, other.max_tokens, other.thinking_override
                )
            cur.execute(RESERVE, {"id": other.id, "usd": usd})

    def applies(self, cur: Cursor) -> bool:
        """Whether any budget (global, or a key's) can change a routing decision."""
        return self._global is not None or self._key_budgets_exist(cur)

    def _key_budgets_exist(self, cur: Cursor) -> bool:
        now = time.monotonic()
        if self._any_key_budget is None or now - self._any_key_budget[0] > self._ttl_s:
            cur.execute("SELECT EXISTS (SELECT 1 FROM api_keys WHERE daily_budget_usd IS NOT NULL)")
            self._any_key_budget = (now, bool(one_row(cur)[0]))
        return self._any_key_budget[1]


def release(cur: Cursor, hold_id: int | None) -> None:
    """Drop a hold once its call is billed (or was never made)."""
    if hold_id is not None:
        cur.execute("DELETE FROM budget_holds WHERE id = %s", (hold_id,))


def record(cur: Cursor, job_id: uuid.UUID, verdict: BudgetVerdict) -> None:
    """Store what the check did next to the job's routing decision."""
    cur.execute(RECORD, {"id": job_id, "action": verdict.action, "reason": verdict.reason})


def reroute(cur: Cursor, job_id: uuid.UUID, tier: str, cost_ratio: float) -> None:
    """Move a job already routed to the cheaper tier its budget check chose."""
    cur.execute(REROUTE, {"id": job_id, "tier": tier, "cost_ratio": cost_ratio})


def reject(cur: Cursor, job_id: uuid.UUID, verdict: BudgetVerdict) -> None:
    """Fail a job that no budget-fitting tier can run."""
    transitions.reject_for_budget(cur, job_id, f"budget_exceeded: {verdict.reason}")
