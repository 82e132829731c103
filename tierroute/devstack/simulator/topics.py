"""Simulated traffic for shadow judging's hidden rule (simulator/judge.py).

Prompts about made-up topics, a fifth of them "hard" (the judge, told these words
as `judge_rule_words`, finds the cheaper tier's answer worse), the rest "easy". Both
kinds share the same templates and asides, so length, structure and every word
the router was trained on say nothing about which kind a prompt is: only the
topic word does, and only verdicts can teach it.

With a share h of hard prompts, a perfect router's APGR against the rule is 1 - h/2
(0.9 at h = 0.2: it recovers the whole gap once the hard fifth goes up), a random
one's 0.5.
"""

from __future__ import annotations

import random

HARD_TOPICS = (
    "zorblat", "quenvic", "drimmel", "pasquor", "velthane", "orvix",
    "trumbic", "skelloid", "mavrent", "qualtheen", "brissop", "nembrolt",
)  # fmt: skip
EASY_TOPICS = (
    "fendral", "wopsick", "glimmet", "tarvoo", "pollenix", "crundle",
    "yestral", "hobbage", "lurvine", "sprockle", "dunwhistle", "mirrack",
)  # fmt: skip
TEMPLATES = (
    "Tell me about the {topic} {aside}.",
    "What should I know about the {topic} {aside}?",
    "Give a short note on the {topic} {aside}.",
    "Describe the {topic} {aside} in a few lines.",
    "How does the {topic} work {aside}?",
    "Summarise what people say about the {topic} {aside}.",
)
ASIDES = (
    "for a beginner", "in the old harbour", "at the spring market", "for my team",
    "in plain words", "near the river", "during winter", "for a school project",
    "in our village", "on a small budget", "at the museum", "for the newsletter",
)  # fmt: skip


# Asides the prompts of learning traffic never use: fresh traffic for evaluation
# shares only the topic words with it.
UNSEEN_ASIDES = (
    "for my grandmother", "on the night train", "in the city archive", "for a podcast",
    "before the exam", "at the harbour fair", "for new staff", "in two sentences",
)  # fmt: skip
HARD_SHARE = 0.2


def topic_prompts(
    count: int, seed: int, hard_share: float = HARD_SHARE, asides: tuple[str, ...] = ASIDES
) -> list[tuple[str, bool]]:
    """`count` prompts and whether each is hard (`hard_share` of them), in a seeded order."""
    rng = random.Random(seed)
    prompts = []
    hard_count = round(count * hard_share)
    for i in range(count):
        hard = i < hard_count
        topic = rng.choice(HARD_TOPICS if hard else EASY_TOPICS)
        text = rng.choice(TEMPLATES).format(topic=topic, aside=rng.choice(asides))
        prompts.append((text, hard))
    rng.shuffle(prompts)
    return prompts
