"""The simulated judge of shadow judging: the hidden rule, or the rubric without one."""

from __future__ import annotations

from tierroute.devstack.simulator.judge import hidden_rule_says_as_good, judge_verdict
from tierroute.devstack.simulator.topics import HARD_TOPICS, UNSEEN_ASIDES, topic_prompts
from tierroute.domain.tiers import load_tier_table
from tierroute.pipeline.shadow import build_judge_params

TABLE = load_tier_table()
HARD_PROMPT = (
    "Design a system for a global leaderboard with ten million players, covering "
    "consistency, sharding and failure handling, and prove its bounds."
)


def judge_text(prompt: str, cheaper: str = "haiku") -> str:
    params = build_judge_params(TABLE.top, prompt, TABLE.get(cheaper), "short", "long")
    return str(params["messages"][0]["content"])


def test_the_hidden_rule_keys_on_whole_topic_words_in_any_case() -> None:
    assert not hidden_rule_says_as_good("Tell me about the ZORBLAT today.", ["zorblat"])
    assert hidden_rule_says_as_good("Tell me about the zorblatting today.", ["zorblat"])
    assert judge_verdict(judge_text("The zorblat, please."), ["zorblat"])[0] is False
    assert judge_verdict(judge_text("The fendral, please."), ["zorblat"])[0] is True


def test_without_a_rule_the_rubric_decides_against_the_cheaper_tier() -> None:
    assert judge_verdict(judge_text("What is the capital of Peru?"), [])[0] is True
    assert judge_verdict(judge_text(HARD_PROMPT), [])[0] is False
    # The same prompt against a Sonnet answer: only an Opus-level prompt fails it.
    assert judge_verdict(judge_text("What is the capital of Peru?", "sonnet"), [])[0] is True


def test_topic_traffic_has_its_share_of_hard_prompts_and_unseen_wording() -> None:
    prompts = topic_prompts(500, seed=3)
    hard = [p for p, h in prompts if h]
    assert len(hard) == 100
    assert all(not hidden_rule_says_as_good(p, list(HARD_TOPICS)) for p in hard)
    assert all(hidden_rule_says_as_good(p, list(HARD_TOPICS)) for p, h in prompts if not h)
    fresh = topic_prompts(200, seed=4, asides=UNSEEN_ASIDES)
    assert not {p for p, _ in fresh} & {p for p, _ in prompts}
