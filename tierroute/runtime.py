"""Per-process resources (DB engine, SDK client, classifier), built once on first use."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import anthropic

from tierroute import db
from tierroute.budgets import BudgetGuard
from tierroute.classifiers import Classifier, RoutingPolicy, build_classifier, build_policy
from tierroute.config import Settings, get_settings
from tierroute.provider import ClientShards, make_client_shards
from tierroute.ratelimit import RateLimiter, SharedLimiter
from tierroute.tiers import TierTable, default_tier_table

# SDK clients per process, by role (provider.ClientShards): a tier worker keeps
# hundreds of calls in flight, and sixteen pools of a few dozen connections each
# cost less than one of hundreds. Other processes make few concurrent calls.
CLIENT_SHARDS = {"tiers": 16}


@dataclass
class Runtime:
    """Everything a worker or API process needs to route and answer prompts."""

    settings: Settings
    tiers: TierTable
    # Model calls of jobs go through `clients.for_this_thread()`; `client` is the first.
    clients: ClientShards
    classifier: Classifier
    policy: RoutingPolicy
    # The shared rate limiter; its Redis connection opens on first use.
    limits: SharedLimiter
    budgets: BudgetGuard

    @property
    def client(self) -> anthropic.Anthropic:
        """The client for the process's occasional calls (classifier, Message Batches)."""
        return self.clients.first

    def limiter(self) -> RateLimiter | None:
        """The shared rate limiter, or None when rate limits are off."""
        return self.limits.get()

    def close(self) -> None:
        """Release this process's connections."""
        self.clients.close()
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
            clients = make_client_shards(
                settings, CLIENT_SHARDS.get(role, 1), client_name=f"{role}-{os.getpid()}"
            )
            limits = SharedLimiter(settings, tiers)
            _runtime = Runtime(
                settings=settings,
                tiers=tiers,
                clients=clients,
                classifier=build_classifier(settings, tiers, clients.first, limiter=limits.get),
                policy=build_policy(settings, tiers),
                limits=limits,
                budgets=BudgetGuard(tiers, settings.daily_budget_usd, settings.budget_policy),
            )
        return _runtime


def reset_runtime() -> None:
    """Forget inherited resources, e.g. in a freshly forked worker child."""
    global _runtime
    with _lock:
        if _runtime is not None:
            _runtime.close()
        _runtime = None
        db.dispose_engine()
