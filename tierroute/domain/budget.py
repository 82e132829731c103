"""Daily budgets as rules: what a budget is, what happens to a job over it, and the verdict."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from tierroute.domain.errors import TierrouteError


class BudgetExceeded(TierrouteError):
    """A call's worst case does not fit a daily budget."""

    code = "budget_exceeded"
    http_status = 402


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
            f"{self.scope} daily budget ${self.limit_usd.normalize():f} would be exceeded: "
            f"${self.committed_usd:.6f} spent or reserved today, this job up to ${cost_usd:.6f}"
        )


@dataclass(frozen=True)
class BudgetVerdict:
    """The tier a job may run on, or None when it is rejected, and why."""

    tier: str | None
    action: BudgetAction | None = None
    reason: str | None = None


FITS = BudgetVerdict(tier=None)
