"""Deterministic simulated prose: answers and thinking whose length depends on model and prompt."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from tierroute.devstack.simulator.tokens import CHARS_PER_TOKEN

_SENTENCES = (
    "This is a simulated answer produced offline, not by a real model.",
    "The key point is addressed first, then the supporting details follow.",
    "A careful answer would weigh the stated requirements against each other.",
    "Each step below builds on the previous one to reach a conclusion.",
    "Edge cases are worth checking before relying on the result.",
    "In practice the simplest approach that meets the constraints is best.",
    "The example illustrates the general idea in a concrete setting.",
    "Further detail is available on request if any part is unclear.",
    "Assumptions are stated explicitly so they can be checked.",
    "The answer is deterministic: the same request always gets the same text.",
)
_THOUGHTS = (
    "Let me work out what is being asked.",
    "The request has a few parts; I will take them in order.",
    "Checking the constraints before answering.",
    "Considering alternatives and their costs.",
    "That approach seems sound; verifying the details.",
    "Summarising the plan before writing the answer.",
)
# Bigger models write longer answers; unknown models sit in the middle.
_MODEL_VERBOSITY = {"haiku": 1.0, "sonnet": 1.6, "opus": 2.2}
_EFFORT_SCALE = {"low": 0.3, "medium": 0.6, "high": 1.0, "xhigh": 1.3, "max": 1.6}
# Cap on the natural length of an answer so huge max_tokens do not mean huge bodies.
MAX_NATURAL_TOKENS = 2000


def request_seed(model: str, body: dict[str, Any]) -> int:
    """A seed from the model and the conversation: same request, same reply."""
    key = json.dumps(
        [model, body.get("system"), body.get("messages"), body.get("output_config")],
        sort_keys=True,
        default=str,
    )
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def model_verbosity(model: str) -> float:
    """How long-winded a model is, relative to Haiku."""
    for family, factor in _MODEL_VERBOSITY.items():
        if family in model:
            return factor
    return 1.3


def label(model: str) -> str:
    """The prefix that marks every simulated answer as such."""
    return f"[simulated {model}]"


def natural_answer_tokens(model: str, input_tokens: int, rng: random.Random) -> int:
    """How many tokens the model would like to write before any max_tokens limit."""
    base = 40 + 0.5 * min(input_tokens, 2000)
    jitter = 0.8 + 0.4 * rng.random()
    return min(MAX_NATURAL_TOKENS, max(8, int(base * model_verbosity(model) * jitter)))


def _fill(prefix: str, pool: tuple[str, ...], tokens: int, rng: random.Random) -> str:
    """`prefix` then whole sentences from `pool`, stopping before about `tokens` tokens.

    Always at least one sentence, so the result may be longer than asked for when
    `tokens` is tiny; callers cut it to their hard limit.
    """
    target = tokens * CHARS_PER_TOKEN
    text = f"{prefix} {rng.choice(pool)}"
    while True:
        sentence = rng.choice(pool)
        if len(text) + 1 + len(sentence) > target:
            return text
        text = f"{text} {sentence}"


def answer_text(model: str, prompt: str, tokens: int, rng: random.Random) -> str:
    """A labelled answer of about `tokens` tokens that quotes the start of the prompt."""
    topic = " ".join(prompt.split())[:80] or "an empty prompt"
    prefix = f"{label(model)} Regarding \u201c{topic}\u201d:"
    return _fill(prefix, _SENTENCES, tokens, rng)


def thinking_tokens_wanted(
    model: str, input_tokens: int, effort: str | None, rng: random.Random
) -> int:
    """How much an adaptive thinker thinks: more for longer prompts, bigger models, more effort."""
    base = (60 + 0.3 * min(input_tokens, 4000)) * model_verbosity(model)
    scale = _EFFORT_SCALE.get(effort or "high", 1.0) * (0.8 + 0.4 * rng.random())
    return max(16, int(base * scale))


def thinking_text(model: str, tokens: int, rng: random.Random) -> str:
    """Labelled simulated reasoning of about `tokens` tokens."""
    return _fill(f"[simulated thinking by {model}]", _THOUGHTS, tokens, rng)


def signature(thinking: str) -> str:
    """An opaque, deterministic stand-in for the thinking block signature."""
    return "sim" + hashlib.sha256(thinking.encode()).hexdigest()[:40]
