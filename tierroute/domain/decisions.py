"""Routing decisions and billed calls: a proposal, the policy over it, and a call's bill."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from tierroute.domain.cost import TokenCounts
from tierroute.domain.tiers import Tier, TierTable


@dataclass(frozen=True)
class CallRecord:
    """One billed call, ready to become a `model_calls` row."""

    purpose: str
    model: str
    tier: str
    tokens: TokenCounts
    cost_usd: Decimal
    cost_if_opus_usd: Decimal
    latency_ms: int
    request_id: str | None
    stop_reason: str | None
    simulated: bool
    # Answered in a Message Batch, priced at the batch rate (pipeline/message_batches).
    batch_api: bool = False
    cache_savings_usd: Decimal = Decimal(0)


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
    # Which trained artifact (or prompt revision) of the classifier decided.
    version: str | None = None


@dataclass(frozen=True)
class ScoreThresholds:
    """Map a score in [0, 1] to a tier: below `haiku_max` the cheapest, from `opus_min` the top."""

    haiku_max: float
    opus_min: float
    # Where the values came from (settings, a calibration file, the model artifact).
    source: str = "default"

    def __post_init__(self) -> None:
        if not 0.0 <= self.haiku_max <= self.opus_min <= 1.0:
            raise ValueError(
                f"thresholds must satisfy 0 <= haiku_max ({self.haiku_max}) <= "
                f"opus_min ({self.opus_min}) <= 1"
            )

    def rank(self, score: float) -> int:
        """The tier rank (1 cheapest .. 3 dearest) a score maps to."""
        if score < self.haiku_max:
            return 1
        if score >= self.opus_min:
            return 3
        return 2


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
        self,
        classifier: str,
        reason: str,
        call: CallRecord | None = None,
        version: str | None = None,
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
            version=version,
        )
