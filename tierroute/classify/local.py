"""The local classifier: a hashed n-gram linear model, in-process, free, sub-millisecond."""

from __future__ import annotations

from tierroute.classify.features import is_multiple_choice
from tierroute.classify.model import LocalModel
from tierroute.domain.decisions import RoutingDecision, RoutingPolicy, ScoreThresholds
from tierroute.domain.tiers import TierTable


class LocalClassifier:
    """Scores a prompt with the loaded model and maps the score to a tier by thresholds."""

    name = "local"
    in_process = True

    def __init__(
        self,
        model: LocalModel,
        tiers: TierTable,
        policy: RoutingPolicy,
        thresholds: ScoreThresholds,
    ) -> None:
        self.model = model
        self.thresholds = thresholds
        self._tiers = tiers
        self._policy = policy

    @property
    def tiers(self) -> TierTable:
        """The tier table decisions refer to."""
        return self._tiers

    @property
    def version(self) -> str:
        """The loaded artifact's version."""
        return self.model.version

    def propose(self, prompt: str) -> RoutingDecision:
        """The model's proposal, before the confidence policy."""
        score = self.model.score(prompt)
        th = self.thresholds
        rank = th.rank(score)
        bands = {1: (0.0, th.haiku_max), 2: (th.haiku_max, th.opus_min), 3: (th.opus_min, 1.0)}
        confidence = self.model.confidence(score, *bands[rank])
        # Two-tier tables have no middle band; clamp to the table's ranks.
        tier = self._tiers.by_rank(min(rank, len(self._tiers.tiers)))
        kind = "exam-style question" if is_multiple_choice(prompt) else "open task"
        reasoning = (
            f"[local {self.version}] {kind}; score {score:.3f} against thresholds "
            f"{th.haiku_max:.3f}/{th.opus_min:.3f} ({th.source})"
        )
        return RoutingDecision(
            tier=tier.name,
            proposed_tier=tier.name,
            confidence=round(confidence, 4),
            reasoning=reasoning,
            classifier=self.name,
            cost_ratio=self._tiers.cost_ratio(tier),
            score=round(score, 6),
            version=self.version,
        )

    def classify(self, prompt: str, system: str | None = None) -> RoutingDecision:
        """Route `prompt`; never raises for a prompt (there is no call to fail)."""
        return self._policy.accept(self.propose(prompt))
