"""What a classifier returns, and the policy that turns a proposal into a tier."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from tierroute.provider import CallRecord
from tierroute.tiers import Tier, TierTable

MANUAL_OVERRIDE = "Manual override"


@dataclass(frozen=True)
class RoutingDecision:
    """The tier a job runs on, how sure we are, and why."""

    tier: str
    confidence: float
    reasoning: str
    classifier: str
    cost_ratio: float
    proposed_tier: str | None = None
    score: float | None = None
    fallback_reason: str | None = None
    # The classifier's own billed call, if it made one; it counts in every total.
    call: CallRecord | None = None


class Classifier(Protocol):
    """Anything that proposes a tier for a prompt. It must never raise for a bad answer."""

    name: str

    def classify(self, prompt: str, system: str | None = None) -> RoutingDecision: ...


@dataclass(frozen=True)
class RoutingPolicy:
    """Turns proposals into decisions: thresholds, defaults and manual overrides."""

    tiers: TierTable
    default_tier: str
    confidence_threshold: float

    def manual(self, tier: Tier) -> RoutingDecision:
        """A forced tier: no classifier call, full confidence."""
        return RoutingDecision(
            tier=tier.name,
            proposed_tier=tier.name,
            confidence=1.0,
            reasoning=MANUAL_OVERRIDE,
            classifier="manual",
            cost_ratio=self.tiers.cost_ratio(tier),
        )

    def accept(self, proposal: RoutingDecision) -> RoutingDecision:
        """Keep a confident proposal; send an unsure one to the default tier."""
        if proposal.confidence >= self.confidence_threshold:
            return proposal
        default = self.tiers.get(self.default_tier)
        return replace(
            proposal,
            tier=default.name,
            cost_ratio=self.tiers.cost_ratio(default),
            fallback_reason=(
                f"confidence {proposal.confidence:.2f} below threshold "
                f"{self.confidence_threshold:.2f}; using default tier {default.name}"
            ),
        )

    def fallback(
        self, classifier: str, reason: str, call: CallRecord | None = None
    ) -> RoutingDecision:
        """The classifier failed (timeout, refusal, error): route to the default tier."""
        default = self.tiers.get(self.default_tier)
        return RoutingDecision(
            tier=default.name,
            confidence=0.0,
            reasoning=f"Classifier unavailable; default tier {default.name}",
            classifier=classifier,
            cost_ratio=self.tiers.cost_ratio(default),
            fallback_reason=reason,
            call=call,
        )
