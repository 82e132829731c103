"""Classifiers propose a tier for a prompt; `build_classifier` picks one from Settings."""

from __future__ import annotations

import anthropic

from tierroute.classify.base import Classifier
from tierroute.classify.hybrid import HybridClassifier
from tierroute.classify.llm import LlmClassifier
from tierroute.classify.local import LocalClassifier
from tierroute.config import Settings
from tierroute.domain.decisions import (
    MANUAL_OVERRIDE,
    RoutingDecision,
    RoutingPolicy,
    ScoreThresholds,
)
from tierroute.domain.errors import ConfigurationError
from tierroute.domain.tiers import TierTable
from tierroute.llm.ratelimit import LimiterSource

__all__ = [
    "MANUAL_OVERRIDE",
    "Classifier",
    "HybridClassifier",
    "LlmClassifier",
    "LocalClassifier",
    "RoutingDecision",
    "RoutingPolicy",
    "ScoreThresholds",
    "build_classifier",
    "build_local",
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
    if settings.classifier == "local":
        return build_local(settings, tiers)
    llm = LlmClassifier(
        client,
        tiers,
        policy,
        simulated=settings.simulated,
        timeout_s=settings.classify_timeout_s,
        limiter=limiter,
    )
    if settings.classifier == "llm":
        return llm
    if settings.classifier == "hybrid":
        return HybridClassifier(
            build_local(settings, tiers), llm, policy, settings.hybrid_confidence
        )
    raise ConfigurationError(f"unknown classifier {settings.classifier!r}")


def build_local(settings: Settings, tiers: TierTable) -> LocalClassifier:
    """The local classifier: the promoted trained version, else the packaged artifact."""
    from tierroute.classify.artifacts import load_current, resolve_thresholds

    model, _ = load_current(settings.router_path)
    try:
        thresholds = resolve_thresholds(settings, model)
    except ValueError as exc:
        raise ConfigurationError(f"router thresholds: {exc}") from exc
    return LocalClassifier(model, tiers, build_policy(settings, tiers), thresholds)
