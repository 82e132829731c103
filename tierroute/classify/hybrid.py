"""The hybrid classifier: the local model first, the llm classifier only when it is unsure."""

from __future__ import annotations

import threading
from dataclasses import replace

from prometheus_client import Counter

from tierroute.classify.base import Classifier
from tierroute.classify.local import LocalClassifier
from tierroute.domain.decisions import RoutingDecision, RoutingPolicy

HYBRID_DECISIONS = Counter(
    "tierroute_hybrid_decisions_total",
    "Hybrid classifier decisions, by whether the llm classifier was asked.",
    ["escalated"],
)


class HybridClassifier:
    """Local decision when its confidence reaches `min_confidence`, else the llm's."""

    name = "hybrid"
    in_process = False

    def __init__(
        self,
        local: LocalClassifier,
        llm: Classifier,
        policy: RoutingPolicy,
        min_confidence: float,
    ) -> None:
        self.local = local
        self.llm = llm
        self.min_confidence = min_confidence
        self._policy = policy
        self._lock = threading.Lock()
        self.decisions = 0
        self.escalations = 0

    @property
    def version(self) -> str:
        """The local model's version (the llm's prompt is versioned by the code)."""
        return self.local.version

    @property
    def escalation_rate(self) -> float:
        """Share of decisions so far that asked the llm classifier."""
        with self._lock:
            return self.escalations / self.decisions if self.decisions else 0.0

    def _count(self, escalated: bool) -> tuple[int, int]:
        with self._lock:
            self.decisions += 1
            self.escalations += int(escalated)
            counts = (self.escalations, self.decisions)
        HYBRID_DECISIONS.labels(escalated=str(escalated).lower()).inc()
        return counts

    def classify(self, prompt: str, system: str | None = None) -> RoutingDecision:
        """Route `prompt`; RateLimited from the llm classifier propagates, like the llm's own."""
        proposal = self.local.propose(prompt)
        if proposal.confidence >= self.min_confidence:
            asked, total = self._count(False)
            return self._policy.accept(
                replace(
                    proposal,
                    classifier=self.name,
                    reasoning=f"{proposal.reasoning}; llm not asked ({asked}/{total} asked)",
                )
            )
        answer = self.llm.classify(prompt, system)
        asked, total = self._count(True)
        note = (
            f"local unsure (confidence {proposal.confidence:.2f} < {self.min_confidence:.2f}, "
            f"score {proposal.score:.3f}); asked llm ({asked}/{total} asked): "
        )
        if answer.proposed_tier is None:
            # The llm call failed: the local proposal beats a blind default tier.
            decided = self._policy.accept(replace(proposal, call=answer.call))
            return replace(
                decided,
                classifier=self.name,
                reasoning=note + f"it failed ({answer.fallback_reason}); local decision kept",
                fallback_reason=decided.fallback_reason or answer.fallback_reason,
            )
        rank = self.local.tiers.get(answer.proposed_tier).rank
        th = self.local.thresholds
        lo, hi = {1: (0.0, th.haiku_max), 2: (th.haiku_max, th.opus_min), 3: (th.opus_min, 1.0)}[
            min(rank, 3)
        ]
        return replace(
            answer,
            classifier=self.name,
            reasoning=note + answer.reasoning,
            # The local score moved into the band of the tier the llm chose: it agrees
            # with the decision and keeps the local model's order within the band.
            score=round(min(max(float(proposal.score or 0.0), lo), max(lo, hi - 1e-6)), 6),
            version=f"{self.version}+llm",
        )
