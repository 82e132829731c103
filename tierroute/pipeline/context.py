"""The adapters a pipeline step works with, built once per process by tierroute/runtime.py."""

from __future__ import annotations

from dataclasses import dataclass

import anthropic

from tierroute.classify import Classifier
from tierroute.config import Settings
from tierroute.domain.decisions import RoutingPolicy
from tierroute.domain.tiers import TierTable
from tierroute.llm.ratelimit import RateLimiter, SharedLimiter
from tierroute.pipeline.budgets import BudgetGuard


@dataclass
class Runtime:
    """Everything a worker or API process needs to route and answer prompts."""

    settings: Settings
    tiers: TierTable
    # Tier workers make their jobs' calls on an event loop (worker/call_loop.py);
    # this client serves the llm classifier, Message Batches and shadow judging.
    client: anthropic.Anthropic
    classifier: Classifier
    policy: RoutingPolicy
    # The shared rate limiter; its Redis connection opens on first use.
    limits: SharedLimiter
    budgets: BudgetGuard

    def limiter(self) -> RateLimiter | None:
        """The shared rate limiter, or None when rate limits are off."""
        return self.limits.get()

    def close(self) -> None:
        """Release this process's connections."""
        self.client.close()
        self.limits.close()
