"""The simulated judge of shadow judging: is the cheaper tier's answer as good as the dearer's?

A judge request (tierroute/pipeline/shadow.py) asks for JSON with `cheaper_as_good` and
`reasoning`, and shows the prompt between <prompt> tags and the cheaper answer in a
<cheaper_answer tier="N"> tag. The verdict follows a rule:

- with `judge_rule_words` set, a hidden rule: the cheaper answer falls short exactly
  when the prompt mentions one of those words (whole words, any case). Tests key it
  on topic words the router never saw, so only verdicts can teach it;
- otherwise the rubric's tier for the prompt: the cheaper answer is as good when the
  rubric puts the prompt at or below the cheaper tier.
"""

from __future__ import annotations

import re
from typing import Any

from tierroute.devstack.simulator.rubric import classify, prompt_to_classify

JUDGE_KEYS = frozenset({"cheaper_as_good", "reasoning"})
_CHEAPER_TIER = re.compile(r'<cheaper_answer tier="(\d+)">')
_WORD = re.compile(r"[a-z0-9]+")


def is_judge_schema(properties: Any) -> bool:
    """True when a schema's properties are the shadow judge's."""
    return isinstance(properties, dict) and set(properties) >= JUDGE_KEYS


def hidden_rule_says_as_good(prompt: str, rule_words: list[str]) -> bool:
    """The hidden rule alone: as good unless the prompt names one of `rule_words`."""
    words = set(_WORD.findall(prompt.lower()))
    return not words & {w.lower() for w in rule_words}


def judge_verdict(user_text: str, rule_words: list[str]) -> tuple[bool, str]:
    """(cheaper_as_good, reasoning) for a judge request's user message."""
    prompt = prompt_to_classify(user_text)
    if rule_words:
        as_good = hidden_rule_says_as_good(prompt, rule_words)
        why = "the topic is within the cheaper model's reach" if as_good else "a hard topic"
        return as_good, f"simulated judge (hidden rule): {why}"
    match = _CHEAPER_TIER.search(user_text)
    cheaper_rank = int(match.group(1)) if match else 1
    needed = classify(prompt).tier
    as_good = needed <= cheaper_rank
    return as_good, f"simulated judge (rubric): the prompt needs tier {needed}"
