"""The simulated classifier: the lesson's three-tier rubric as keyword and length heuristics.

Tier 1 (Haiku) is simple, mechanical work; tier 2 (Sonnet) is moderate work such as
writing a well-defined function or explaining a concept; tier 3 (Opus) is complex
reasoning such as architecture reviews, proofs and trade-off analysis.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

# (tier, pattern, weight). Weights are tuned so one strong signal beats two weak ones.
_SIGNALS: tuple[tuple[int, str, float], ...] = (
    # Tier 1: formatting, extraction, conversion, short factual answers, labelling.
    (1, r"\b(?:re)?format(?:ting)?\b", 2.0),
    (1, r"\bconvert\b", 2.0),
    (1, r"\bextract\b", 2.0),
    (1, r"\btranslate\b", 2.0),
    (1, r"\bclassify\b|\bcategori[sz]e\b", 1.5),
    (1, r"\bspell(?:ing)?\b|\bgrammar\b|\btypos?\b|\bproofread\w*", 2.0),
    (1, r"\b(?:upper|lower)case\b|\bcapitali[sz]e\b", 1.5),
    (1, r"\bcapital of\b", 2.0),
    (1, r"^(?:what|who|when|where) (?:is|was|are|were)\b", 1.0),
    (1, r"\bdefine\b|\bdefinition of\b", 1.0),
    (1, r"\b(?:json|csv|yaml|xml|markdown table)\b", 1.0),
    (1, r"\bsentiment\b", 1.0),
    (1, r"\bsort (?:this|these|the)\b|\balphabeti[sz]e\b", 1.0),
    (1, r"\byes or no\b|\bone word\b", 1.0),
    # Tier 2: code for a well-defined task, explanations, summaries, drafts, debugging.
    (
        2,
        r"\bwrite (?:a |an |the )?(?:\w+ )?(?:function|script|class|program|method|query|regex)",
        2.0,
    ),
    (2, r"\bimplement\w*", 1.5),
    (2, r"\bfunction\b|\bcode\b|\bsnippet\b", 0.5),
    (2, r"\b(?:python|javascript|typescript|java|rust|golang|sql|c\+\+|bash)\b", 0.5),
    (2, r"\bexplain\w*", 1.5),
    (2, r"\bsummar(?:y|ise|ize|ising|izing)\b", 1.5),
    (2, r"\banaly[sz]\w*", 1.0),
    (2, r"\bdraft\w*", 1.5),
    (2, r"\bemail\b|\bcover letter\b", 1.0),
    (2, r"\b(?:essay|blog post|article|report|proposal|documentation)\b", 1.0),
    (2, r"\bdebug\w*|\bfix (?:this|the|my) (?:bug|code|error)", 1.5),
    (2, r"\bbug\b|\berror\b|\bexception\b|\bstack trace\b", 0.5),
    (2, r"\brefactor\w*", 1.5),
    (2, r"\bunit tests?\b", 1.0),
    (2, r"\bdescribe\b|\boutline\b|\breview\b", 0.5),
    (2, r"\bhow (?:does|do|can|should)\b|\bwhy\b", 0.75),
    (2, r"\bcompare\b|\bdifference between\b", 1.0),
    (2, r"\balgorithm\w*", 1.0),
    # Tier 3: system design, multi-constraint trade-offs, proofs, audits, research, strategy.
    (3, r"\barchitecture\b|\bsystem design\b", 2.0),
    (3, r"\bdistributed\b", 1.5),
    (3, r"\bscalab\w*", 1.5),
    (3, r"\btrade-?offs?\b", 1.5),
    (3, r"\bconsisten(?:cy|t)\b", 1.0),
    (3, r"\bfailure modes?\b|\bfault[- ]toleran\w*", 1.5),
    (3, r"\bbottlenecks?\b", 1.0),
    (3, r"\bsecurity (?:audit|review)\b|\bthreat model\w*|\baudit\w*", 2.5),
    (3, r"\bvulnerabilit\w*", 1.0),
    (3, r"\bprove\b|\bproof\b|\btheorem\b|\bderiv(?:e|ation)\b", 2.5),
    (3, r"\bresearch\b|\bliterature\b", 1.0),
    (3, r"\bsynthesi[sz]\w*", 1.5),
    (3, r"\bstrateg(?:y|ic)\b|\broadmap\b|\blong-term\b|\bbusiness plan\b", 1.5),
    (3, r"\bmulti-?step\b|\bmulti-?stage\b", 1.5),
    (3, r"\bconstraints?\b", 1.0),
    (3, r"\bmicroservices?\b|\bconcurrency\b|\brace conditions?\b", 1.0),
    (3, r"\bmigration plan\b|\brisk assessment\b", 1.5),
    (3, r"\bcomprehensive\b|\bin-depth\b|\brigorous\w*", 1.0),
)
_COMPILED = tuple((tier, re.compile(p, re.IGNORECASE | re.MULTILINE), w) for tier, p, w in _SIGNALS)
_PROMPT_TAG = re.compile(r"<prompt>(.*?)</prompt>", re.DOTALL | re.IGNORECASE)
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+", re.MULTILINE)

TIER_LABELS = {1: "simple", 2: "moderate", 3: "complex"}
TIER_MODELS = {1: "Haiku", 2: "Sonnet", 3: "Opus"}


@dataclass(frozen=True)
class Classification:
    """A rubric verdict: tier 1..3, a confidence in [0, 1] and a one-line reason."""

    tier: int
    confidence: float
    reasoning: str
    scores: dict[int, float] = field(default_factory=dict)


def prompt_to_classify(user_text: str) -> str:
    """The text between <prompt> and </prompt>, else the whole user message."""
    match = _PROMPT_TAG.search(user_text)
    return (match.group(1) if match else user_text).strip()


def _length_signals(prompt: str, scores: dict[int, float], hits: dict[int, list[str]]) -> None:
    """Long prompts and many listed requirements point to heavier tiers."""
    words = len(prompt.split())
    if words <= 12:
        scores[1] += 0.5
    elif words > 300:
        scores[2] += 1.0
        scores[3] += 1.0
        hits[3].append(f"{words} words")
    elif words > 120:
        scores[2] += 1.0
        hits[2].append(f"{words} words")
    if len(_LIST_ITEM.findall(prompt)) >= 4:
        scores[3] += 1.0
        hits[3].append("many listed requirements")


def _wobble(prompt: str) -> float:
    """A deterministic offset in [-0.02, 0.02] so confidences do not all look alike."""
    digest = hashlib.sha256(prompt.encode()).digest()
    return (digest[0] / 255.0 - 0.5) * 0.04


def classify(prompt: str) -> Classification:
    """Classify one prompt by the rubric; deterministic for the same text."""
    scores = {1: 0.0, 2: 0.0, 3: 0.0}
    hits: dict[int, list[str]] = {1: [], 2: [], 3: []}
    for tier, pattern, weight in _COMPILED:
        match = pattern.search(prompt)
        if match:
            scores[tier] += weight
            hits[tier].append(match.group(0).lower().strip())
    keyword_total = sum(scores.values())
    _length_signals(prompt, scores, hits)

    if keyword_total == 0:
        # Nothing in the rubric matched: guess from length and say we are unsure.
        tier = 1 if len(prompt.split()) <= 12 else 2
        confidence = 0.55 if tier == 1 else 0.6
        reason = "no rubric signals; guessed from length"
    else:
        # Ties go to the higher tier: under-serving a prompt costs more than over-serving.
        tier = max(scores, key=lambda t: (scores[t], t))
        best = scores[tier]
        second = max(score for t, score in scores.items() if t != tier)
        margin = (best - second) / best
        confidence = 0.5 + 0.3 * margin * min(1.0, best / 2.5) + 0.15 * min(best, 6.0) / 6.0
        signals = ", ".join(dict.fromkeys(hits[tier]).keys()) or "length"
        reason = f"signals: {signals}"
    confidence = round(min(0.97, max(0.35, confidence + _wobble(prompt))), 2)
    reasoning = f"[simulated rubric] {TIER_LABELS[tier]} task for {TIER_MODELS[tier]} ({reason})."
    return Classification(tier=tier, confidence=confidence, reasoning=reasoning, scores=scores)
