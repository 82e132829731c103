"""What a classifier is: anything that proposes a tier for a prompt."""

from __future__ import annotations

from typing import Protocol

from tierroute.domain.decisions import RoutingDecision


class Classifier(Protocol):
    """Anything that proposes a tier for a prompt. It must never raise for a bad answer.

    Every decision carries the tier and its confidence, a score in [0, 1] (higher: the
    prompt needs a stronger tier), the reasoning, the classifier's own cost (`call`,
    None when it is free) and the classifier's version.
    """

    name: str
    # True when classify() never waits on the network (no model call): the pipeline
    # then routes a job inside the transaction that claims it.
    in_process: bool

    def classify(self, prompt: str, system: str | None = None) -> RoutingDecision: ...
