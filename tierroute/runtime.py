"""The composition root: reads Settings once and builds this process's adapters (`Runtime`)."""

from __future__ import annotations

import os
import threading

from tierroute.classify import build_classifier, build_policy
from tierroute.config import default_tier_table, get_settings
from tierroute.llm.provider import make_client
from tierroute.llm.ratelimit import SharedLimiter
from tierroute.pipeline.budgets import BudgetGuard
from tierroute.pipeline.context import Runtime
from tierroute.store import engine as db

__all__ = ["Runtime", "client_name", "get_runtime", "reset_runtime"]

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
