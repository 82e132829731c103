"""The lesson's classifier done right: Haiku with a three-tier rubric and structured output."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import anthropic

from tierroute.domain.decisions import RoutingDecision, RoutingPolicy
from tierroute.domain.errors import ProviderError
from tierroute.domain.status import CallPurpose
from tierroute.domain.tiers import TierTable
from tierroute.llm.admission import limited_call
from tierroute.llm.caching import cached_system
from tierroute.llm.provider import CallResult
from tierroute.llm.ratelimit import LimiterSource

RUBRIC = """You route prompts to the cheapest Claude model that will answer them well.
Read the prompt between <prompt> tags and choose a tier:

1 = simple (Haiku): formatting, extraction, conversion, classification, short factual
    questions, spelling and grammar, translating short text.
2 = moderate (Sonnet): writing a well-defined function, explaining a concept,
    summarising, standard analysis, drafting an email or document, debugging a snippet.
3 = complex (Opus): system or architecture design and review, multi-step reasoning,
    research synthesis, trade-offs across many constraints, proofs, security audits,
    long strategic plans.

Give your confidence in [0, 1] and one sentence of reasoning. Do not answer the prompt."""

# Structured output: the API guarantees the reply parses against this schema.
DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tier": {"type": "integer", "enum": [1, 2, 3]},
        "confidence": {"type": "number"},
        "reasoning": {"type": "string"},
    },
    "required": ["tier", "confidence", "reasoning"],
    "additionalProperties": False,
}

# The prompt's revision: a changed rubric or schema is a new classifier version.
RUBRIC_VERSION = (
    "rubric-"
    + hashlib.sha256((RUBRIC + json.dumps(DECISION_SCHEMA, sort_keys=True)).encode()).hexdigest()[
        :8
    ]
)
# The llm answers a tier, not a score: each tier reports the middle of its third of [0, 1].
TIER_SCORES = {1: 1 / 6, 2: 1 / 2, 3: 5 / 6}

CLASSIFY_MAX_TOKENS = 256
# Long prompts are cut for classification: the first few thousand characters show
# the kind of task, and the classifier is billed per input token.
CLASSIFY_PROMPT_CHARS = 8000


def build_classify_params(model: str, prompt: str, min_cache_tokens: int = 0) -> dict[str, Any]:
    """The `messages.create` arguments for one classification.

    The rubric gets a cache breakpoint once it reaches `min_cache_tokens` (the model's
    minimum cacheable length; 0: never), as every classification repeats it.
    """
    excerpt = prompt[:CLASSIFY_PROMPT_CHARS]
    return {
        "model": model,
        "max_tokens": CLASSIFY_MAX_TOKENS,
        "system": cached_system(RUBRIC, min_cache_tokens),
        "messages": [{"role": "user", "content": f"<prompt>\n{excerpt}\n</prompt>"}],
        "output_config": {"format": {"type": "json_schema", "schema": DECISION_SCHEMA}},
    }


class LlmClassifier:
    """Asks the cheapest tier's model which tier a prompt needs."""

    name = "llm"
    in_process = False

    def __init__(
        self,
        client: anthropic.Anthropic,
        tiers: TierTable,
        policy: RoutingPolicy,
        *,
        simulated: bool,
        timeout_s: float,
        limiter: LimiterSource | None = None,
    ) -> None:
        self._client = client
        self._tiers = tiers
        self._policy = policy
        self._simulated = simulated
        self._timeout_s = timeout_s
        self._limiter = limiter

    def classify(self, prompt: str, system: str | None = None) -> RoutingDecision:
        """Route `prompt`; any failure routes to the default tier with the reason recorded.

        Raises RateLimited, without calling, when the shared limiter says wait: a
        local limit is no reason to route without the classifier.
        """
        cheapest = self._tiers.cheapest
        params = build_classify_params(cheapest.model, prompt, cheapest.min_cache_tokens)
        try:
            result = limited_call(
                self._limiter() if self._limiter is not None else None,
                self._client,
                params,
                purpose=CallPurpose.CLASSIFY,
                tiers=self._tiers,
                simulated=self._simulated,
                timeout_s=self._timeout_s,
            )
        except ProviderError as exc:
            return self._policy.fallback(
                self.name, f"classifier call failed: {exc.detail}", version=RUBRIC_VERSION
            )
        return self._decide(result)

    def _decide(self, result: CallResult) -> RoutingDecision:
        call = result.record
        if result.message.stop_reason == "refusal":
            return self._policy.fallback(self.name, "classifier refused", call, RUBRIC_VERSION)
        try:
            answer = json.loads(result.text)
            rank = int(answer["tier"])
            confidence = float(answer["confidence"])
            reasoning = str(answer["reasoning"]).strip()
        except (ValueError, KeyError, TypeError) as exc:
            snippet = result.text[:120]
            reason = f"unparseable classifier output ({exc}): {snippet!r}"
            return self._policy.fallback(self.name, reason, call, RUBRIC_VERSION)
        if not 1 <= rank <= len(self._tiers.tiers):
            return self._policy.fallback(
                self.name, f"classifier chose tier {rank}", call, RUBRIC_VERSION
            )
        tier = self._tiers.by_rank(rank)
        proposal = RoutingDecision(
            tier=tier.name,
            proposed_tier=tier.name,
            confidence=min(max(confidence, 0.0), 1.0),
            reasoning=reasoning or "(no reasoning given)",
            classifier=self.name,
            cost_ratio=self._tiers.cost_ratio(tier),
            score=round(TIER_SCORES.get(rank, rank / (rank + 1)), 6),
            call=call,
            version=RUBRIC_VERSION,
        )
        return self._policy.accept(proposal)
