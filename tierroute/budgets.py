"""Daily USD budgets, per API key and global, checked when a job is routed.

A job is checked against every budget that applies to it (its key's own and the
global one) with its worst-case cost on the tier it was routed to: the prompt's
estimated input tokens plus `max_tokens` of output, at that tier's prices. The
spend it is compared with is what was billed today (UTC) plus the same worst case
for every job already routed but not finished, so jobs in flight hold their share.

When the job would not fit, the policy decides: `reject` fails the job with the
reason; `downgrade` moves it to the dearest cheaper tier that fits, and rejects it
only when none does. The action and its reason land in routing_decisions.

Routing decisions under a budget take a transaction-scoped advisory lock per
budget, so two workers cannot both spend the last dollar.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from tierroute.cost import MILLION
from tierroute.tiers import Tier, TierTable

# Roughly four characters per token in English text; the system prompt counts too.
CHARS_PER_TOKEN = 4
# Advisory-lock namespace for budget checks (any constant unlikely to clash).
LOCK_NAMESPACE = 0x7E3B
GLOBAL_LOCK_KEY = 0


class BudgetPolicy(StrEnum):
    """What happens to a job that would exceed a daily budget."""

    REJECT = "reject"
    DOWNGRADE = "downgrade"


class BudgetAction(StrEnum):
    """What the budget check did; stored in routing_decisions.budget_action."""

    DOWNGRADED = "downgraded"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Budget:
    """One daily limit and what has been spent or reserved against it today."""

    scope: str  # "key 'name'" or "global"
    limit_usd: Decimal
    committed_usd: Decimal

    def fits(self, cost_usd: Decimal) -> bool:
        return self.committed_usd + cost_usd <= self.limit_usd

    def describe(self, cost_usd: Decimal) -> str:
        return (
            f"{self.scope} daily budget ${self.limit_usd:.2f} would be exceeded: "
            f"${self.committed_usd:.6f} spent or reserved today, this job up to ${cost_usd:.6f}"
        )


@dataclass(frozen=True)
class BudgetVerdict:
    """The tier a job may run on, or None when it is rejected, and why."""

    tier: str | None
    action: BudgetAction | None = None
    reason: str | None = None


FITS = BudgetVerdict(tier=None)

JOB_KEY = """
    SELECT j.api_key_id, k.name, k.daily_budget_usd, j.max_tokens
      FROM jobs j LEFT JOIN api_keys k ON k.id = j.api_key_id
     WHERE j.id = %(id)s
"""

# Billed today, plus the worst case of routed jobs still to be billed. The tier
# prices come in as a VALUES list, so the tier table stays the one source of prices.
COMMITTED = """
    WITH prices(tier, input_per_token, output_per_token) AS (
        SELECT * FROM unnest(%(tiers)s::text[], %(inputs)s::numeric[], %(outputs)s::numeric[])
    ), day AS (
        SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start
    )
    SELECT
      (SELECT coalesce(sum(c.cost_usd), 0)
         FROM model_calls c LEFT JOIN jobs j ON j.id = c.job_id, day
        WHERE c.created_at >= day.start {key_filter})
    + (SELECT coalesce(sum(
               ceil((length(j.prompt) + coalesce(length(j.system), 0)) / %(chars)s::numeric)
                 * p.input_per_token + j.max_tokens * p.output_per_token), 0)
         FROM jobs j JOIN prices p ON p.tier = j.tier
        WHERE j.status IN ('classifying', 'running') AND j.id <> %(id)s {key_filter})
"""

RECORD = """
    UPDATE routing_decisions SET budget_action = %(action)s, budget_reason = %(reason)s
     WHERE job_id = %(id)s
"""

REJECT = """
    UPDATE jobs SET status = 'failed', error = %(error)s, lease_expires_at = NULL,
                    finished_at = now(), updated_at = now()
     WHERE id = %(id)s AND status = 'classifying'
"""


def worst_case_cost(tier: Tier, prompt: str, system: str | None, max_tokens: int) -> Decimal:
    """The most a job can cost on a tier: estimated input plus every allowed output token."""
    chars = len(prompt) + len(system or "")
    input_tokens = -(-chars // CHARS_PER_TOKEN)
    return (tier.input * input_tokens + tier.output * max_tokens) / MILLION


class BudgetGuard:
    """Checks routed jobs against the global budget and their key's budget."""

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
        cur: Any,
        job_id: uuid.UUID,
        tier_name: str,
        prompt: str,
        system: str | None,
    ) -> BudgetVerdict:
        """Where the routed job may run under today's budgets; FITS when nothing changes."""
        if not self.applies(cur):
            return FITS  # the common case costs one cached flag, no query per job
        cur.execute(JOB_KEY, {"id": job_id})
        row = cur.fetchone()
        if row is None:
            return FITS
        key_id, key_name, key_limit, max_tokens = row
        budgets = []
        if key_limit is not None:
            budgets.append(self._budget(cur, job_id, key_id, f"key {key_name!r}", key_limit))
        if self._global is not None:
            budgets.append(self._budget(cur, job_id, None, "global", self._global))
        if not budgets:
            return FITS
        return self._verdict(budgets, tier_name, prompt, system, max_tokens)

    def _verdict(
        self,
        budgets: list[Budget],
        tier_name: str,
        prompt: str,
        system: str | None,
        max_tokens: int,
    ) -> BudgetVerdict:
        routed = self._tiers.get(tier_name)
        cost = worst_case_cost(routed, prompt, system, max_tokens)
        over = [b for b in budgets if not b.fits(cost)]
        if not over:
            return FITS
        reason = over[0].describe(cost)
        if self._policy is BudgetPolicy.DOWNGRADE:
            cheaper = [t for t in self._tiers.tiers if t.rank < routed.rank]
            for tier in sorted(cheaper, key=lambda t: t.rank, reverse=True):
                cheaper_cost = worst_case_cost(tier, prompt, system, max_tokens)
                if all(b.fits(cheaper_cost) for b in budgets):
                    return BudgetVerdict(
                        tier=tier.name,
                        action=BudgetAction.DOWNGRADED,
                        reason=f"{reason}; downgraded from {routed.name} to {tier.name}",
                    )
            reason += "; no cheaper tier fits"
        return BudgetVerdict(tier=None, action=BudgetAction.REJECTED, reason=reason)

    def _budget(
        self, cur: Any, job_id: uuid.UUID, key_id: uuid.UUID | None, scope: str, limit: Decimal
    ) -> Budget:
        # Serialise decisions under this budget until the transaction commits the
        # routing, which then counts as reserved for the next decision.
        lock_key = GLOBAL_LOCK_KEY if key_id is None else key_id.int & 0x7FFFFFFF
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, lock_key))
        key_filter = "" if key_id is None else "AND j.api_key_id = %(key)s"
        tiers = self._tiers.tiers
        cur.execute(
            COMMITTED.format(key_filter=key_filter),
            {
                "id": job_id,
                "key": key_id,
                "chars": CHARS_PER_TOKEN,
                "tiers": [t.name for t in tiers],
                "inputs": [t.input / MILLION for t in tiers],
                "outputs": [t.output / MILLION for t in tiers],
            },
        )
        return Budget(scope=scope, limit_usd=Decimal(limit), committed_usd=cur.fetchone()[0])

    def applies(self, cur: Any) -> bool:
        """Whether any budget (global, or a key's) can change a routing decision."""
        return self._global is not None or self._key_budgets_exist(cur)

    def _key_budgets_exist(self, cur: Any) -> bool:
        now = time.monotonic()
        if self._any_key_budget is None or now - self._any_key_budget[0] > self._ttl_s:
            cur.execute("SELECT EXISTS (SELECT 1 FROM api_keys WHERE daily_budget_usd IS NOT NULL)")
            self._any_key_budget = (now, bool(cur.fetchone()[0]))
        return self._any_key_budget[1]


def record(cur: Any, job_id: uuid.UUID, verdict: BudgetVerdict) -> None:
    """Store what the check did next to the job's routing decision."""
    cur.execute(RECORD, {"id": job_id, "action": verdict.action, "reason": verdict.reason})


def reject(cur: Any, job_id: uuid.UUID, verdict: BudgetVerdict) -> None:
    """Fail a routed job that no budget-fitting tier can run."""
    cur.execute(REJECT, {"id": job_id, "error": f"budget_exceeded: {verdict.reason}"})
