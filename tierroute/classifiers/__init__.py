"""Classifiers propose a tier for a prompt; `build_classifier` picks one from Settings."""

from __future__ import annotations

import anthropic

from tierroute.classifiers.base import MANUAL_OVERRIDE, Classifier, RoutingDecision, RoutingPolicy
from tierroute.classifiers.llm import LlmClassifier
from tierroute.config import Settings
from tierroute.errors import ConfigurationError
from tierroute.ratelimit import LimiterSource
from tierroute.tiers import TierTable

__all__ = [
    "MANUAL_OVERRIDE",
    "Classifier",
    "LlmClassifier",
    "RoutingDecision",
    "RoutingPolicy",
    "build_classifier",
    "build_policy",
]


def build_policy(settings: Settings, tiers: TierTable) -> RoutingPolicy:
    """The routing policy (threshold and default tier) from Settings."""
    return RoutingPolicy(tiers, settings.default_tier, settings.confidence_threshold)


def build_classifier(
    settings: Settings,
    tiers: TierTable,
    client: anthropic.Anthropic,
    limiter: LimiterSource | None = None,
) -> Classifier:
    """The classifier named by TIERROUTE_CLASSIFIER."""
    policy = build_policy(settings, tiers)
    if settings.classifier == "llm":
        return LlmClassifier(
            client,
            tiers,
            policy,
            simulated=settings.simulated,
            timeout_s=settings.classify_timeout_s,
            limiter=limiter,
        )
    raise ConfigurationError(f"unknown classifier {settings.classifier!r}")
