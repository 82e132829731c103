"""Per-process resources (DB engine, SDK client, classifier), built once on first use."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import anthropic

from tierroute.classify import Classifier, RoutingPolicy, build_classifier, build_policy
from tierroute.config import Settings, default_tier_table, get_settings
from tierroute.domain.tiers import TierTable
from tierroute.llm.provider import make_client
from tierroute.llm.ratelimit import RateLimiter, SharedLimiter
from tierroute.pipeline.budgets import BudgetGuard
from tierroute.store import engine as db


@dataclass
class Runtime:
    """Everything a worker or API process needs to route and answer prompts."""

    settings: Settings
    tiers: TierTable
    # Tier workers make their jobs' calls on an event loop (worker/call_loop.py);
    # this client serves the classifier, Message Batches and `complete_job`.
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


_lock = threading.Lock()
_runtime: Runtime | None = None


def get_runtime(role: str = "worker") -> Runtime:
    """This process's runtime; lifecycle hooks call it early, tasks call it lazily.

    `role` (api, classify, tiers) names this process to the model API, once.
    """
    global _runtime
    with _lock:
        if _runtime is None:
            settings = get_settings()
            tiers = default_tier_table()
            # The API keeps pre-ping (a request should not fail on a connection a
            # Postgres restart broke); workers retry a task instead, and save a round
            # trip on each of a job's transactions.
            db.init_engine(settings, pre_ping=role == "api")
            client = make_client(settings, client_name=client_name(role))
            limits = SharedLimiter(settings, tiers)
            _runtime = Runtime(
                settings=settings,
                tiers=tiers,
                client=client,
                classifier=build_classifier(settings, tiers, client, limiter=limits.get),
                policy=build_policy(settings, tiers),
                limits=limits,
                budgets=BudgetGuard(tiers, settings.daily_budget_usd, settings.budget_policy),
            )
        return _runtime


def client_name(role: str) -> str:
    """How this process names itself to the model API (`x-tierroute-client`)."""
    return f"{role}-{os.getpid()}"


def reset_runtime() -> None:
    """Forget inherited resources, e.g. in a freshly forked worker child."""
    global _runtime
    with _lock:
        if _runtime is not None:
            _runtime.close()
        _runtime = None
        db.dispose_engine()
