"""The local and hybrid classifiers: lesson examples, thresholds, confidence, speed, size."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tierroute.classify import HybridClassifier, LocalClassifier, artifacts, build_classifier
from tierroute.classify.model import LocalModel
from tierroute.config import Settings, default_tier_table
from tierroute.domain.decisions import RoutingDecision, RoutingPolicy, ScoreThresholds
from tierroute.training.datasets import load_rubric

TIERS = default_tier_table()
POLICY = RoutingPolicy(TIERS, "sonnet", 0.7)
LESSON_EXAMPLES = {
    "haiku": 'Format this JSON: {"name":"John","age":30}',
    "sonnet": "Write a Python function to merge two sorted lists into one sorted list",
    "opus": (
        "Review this distributed system architecture for scalability bottlenecks, "
        "consistency trade-offs, and failure modes: three API nodes, one Postgres primary, "
        "Redis for sessions, and a nightly batch that rebuilds the search index."
    ),
}


@pytest.fixture(scope="module")
def model() -> LocalModel:
    return artifacts.load_packaged()


@pytest.fixture(scope="module")
def local(model: LocalModel) -> LocalClassifier:
    return LocalClassifier(model, TIERS, POLICY, ScoreThresholds(model.haiku_max, model.opus_min))


@pytest.mark.parametrize("tier", ["haiku", "sonnet", "opus"])
def test_lesson_examples_route_as_the_lesson_intends(local: LocalClassifier, tier: str) -> None:
    decision = local.classify(LESSON_EXAMPLES[tier])
    assert decision.tier == tier and decision.proposed_tier == tier
    assert decision.confidence >= 0.7 and decision.fallback_reason is None
    assert decision.classifier == "local" and decision.version == local.version
    assert decision.call is None  # free: no API call, no cost
    assert decision.score is not None and 0.0 <= decision.score <= 1.0


def test_scores_order_the_lesson_examples(local: LocalClassifier) -> None:
    scores = [local.classify(LESSON_EXAMPLES[t]).score for t in ("haiku", "sonnet", "opus")]
    assert scores == sorted(scores)


def test_heldout_rubric_accuracy_with_the_policy(local: LocalClassifier) -> None:
    items = load_rubric("holdout")
    assert len(items) >= 75
    hits = [local.classify(i.prompt).tier == i.tier for i in items]
    assert sum(hits) / len(hits) >= 0.85


def test_rubric_set_is_large_varied_and_split() -> None:
    items = load_rubric()
    assert len(items) >= 300
    assert {i.tier for i in items} == {"haiku", "sonnet", "opus"}
    assert min(sum(i.tier == t for i in items) for t in ("haiku", "sonnet", "opus")) >= 100
    assert len({i.family for i in items}) >= 45
    assert len({i.prompt for i in items}) == len(items)
    # Verbs shared across tiers: no single keyword separates them.
    for verb in ("write", "explain", "review", "design"):
        tiers = {i.tier for i in items if verb in i.prompt.lower()}
        assert len(tiers) >= 2, verb
    assert {i.split for i in items} == {"train", "holdout"}


def test_thresholds_map_scores_to_tiers(model: LocalModel) -> None:
    th = ScoreThresholds(0.3, 0.7)
    assert [th.rank(s) for s in (0.0, 0.29, 0.3, 0.69, 0.7, 1.0)] == [1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError):
        ScoreThresholds(0.8, 0.2)
    # Everything to the top tier when both thresholds are 0; to haiku when both are 1.
    everything_up = LocalClassifier(model, TIERS, POLICY, ScoreThresholds(0.0, 0.0))
    everything_down = LocalClassifier(model, TIERS, POLICY, ScoreThresholds(1.0, 1.0))
    for prompt in LESSON_EXAMPLES.values():
        assert everything_up.propose(prompt).tier == "opus"
        assert everything_down.propose(prompt).tier == "haiku"


def test_an_unsure_proposal_goes_to_the_default_tier(model: LocalModel) -> None:
    score = model.score(LESSON_EXAMPLES["sonnet"])
    # A haiku band ending just above the score: haiku, but barely.
    edge = LocalClassifier(model, TIERS, POLICY, ScoreThresholds(score + 0.001, 0.99))
    decision = edge.classify(LESSON_EXAMPLES["sonnet"])
    assert decision.proposed_tier == "haiku" and decision.confidence < 0.7
    assert decision.tier == "sonnet" and "below threshold" in str(decision.fallback_reason)


def test_settings_thresholds_win_over_calibrated_and_model(
    model: LocalModel, tmp_path: Path
) -> None:
    settings = Settings(router_dir=tmp_path)
    assert artifacts.resolve_thresholds(settings, model).source.startswith("model")
    artifacts.save_thresholds(tmp_path, ScoreThresholds(0.2, 0.6), {"method": "test"})
    calibrated = artifacts.resolve_thresholds(settings, model)
    assert (calibrated.haiku_max, calibrated.opus_min, calibrated.source) == (
        0.2,
        0.6,
        "calibrated",
    )
    pinned = artifacts.resolve_thresholds(
        Settings(router_dir=tmp_path, haiku_max_score=0.1, opus_min_score=0.9), model
    )
    assert (pinned.haiku_max, pinned.opus_min, pinned.source) == (0.1, 0.9, "settings")


def test_settings_refuse_bad_thresholds() -> None:
    with pytest.raises(ValueError, match="haiku_max_score"):
        Settings(haiku_max_score=0.8, opus_min_score=0.2)
    with pytest.raises(ValueError):
        Settings(opus_min_score=1.5)


def test_local_is_the_default_classifier(tmp_path: Path) -> None:
    settings = Settings(router_dir=tmp_path)
    assert settings.classifier == "local"
    classifier = build_classifier(settings, TIERS, client=None)  # type: ignore[arg-type]
    assert isinstance(classifier, LocalClassifier)


def test_the_artifact_is_packaged_and_small() -> None:
    path = artifacts.packaged_path()
    assert path.exists() and path.stat().st_size <= 20 * 1024 * 1024


def test_save_and_load_round_trip(model: LocalModel, tmp_path: Path) -> None:
    copy = LocalModel.load(model.save(tmp_path / "copy.npz"))
    assert copy.version == model.version
    for prompt in LESSON_EXAMPLES.values():
        assert copy.score(prompt) == pytest.approx(model.score(prompt))


class FakeLlm:
    """Stands in for the Haiku classifier: always answers `tier`, or fails."""

    name = "llm"

    def __init__(self, tier: str | None) -> None:
        self.tier = tier
        self.calls = 0

    def classify(self, prompt: str, system: str | None = None) -> RoutingDecision:
        self.calls += 1
        if self.tier is None:
            return POLICY.fallback("llm", "classifier call failed: boom", version="rubric-x")
        return RoutingDecision(
            tier=self.tier,
            proposed_tier=self.tier,
            confidence=0.9,
            reasoning="fake llm",
            classifier="llm",
            cost_ratio=TIERS.cost_ratio(TIERS.get(self.tier)),
            version="rubric-x",
        )


def test_hybrid_asks_the_llm_only_when_the_local_model_is_unsure(local: LocalClassifier) -> None:
    llm = FakeLlm("opus")
    hybrid = HybridClassifier(local, llm, POLICY, min_confidence=0.7)
    for prompt in LESSON_EXAMPLES.values():
        decision = hybrid.classify(prompt)
        assert decision.classifier == "hybrid" and "not asked" in decision.reasoning
    assert llm.calls == 0
    # A local model that is never sure enough: every prompt goes to the llm.
    unsure = HybridClassifier(local, llm, POLICY, min_confidence=1.01)
    decision = unsure.classify(LESSON_EXAMPLES["haiku"])
    assert llm.calls == 1 and decision.tier == "opus" and "asked llm" in decision.reasoning
    assert decision.version == f"{local.version}+llm"
    # The score is moved into the band of the tier the llm chose.
    assert decision.score is not None and decision.score >= local.thresholds.opus_min
    assert (unsure.escalations, unsure.decisions, unsure.escalation_rate) == (1, 1, 1.0)


def test_hybrid_keeps_the_local_decision_when_the_llm_fails(local: LocalClassifier) -> None:
    hybrid = HybridClassifier(local, FakeLlm(None), POLICY, min_confidence=1.01)
    decision = hybrid.classify(LESSON_EXAMPLES["opus"])
    assert decision.tier == "opus" and "failed" in decision.reasoning
    assert decision.fallback_reason and "boom" in decision.fallback_reason


def test_decisions_carry_a_version_for_routing_decisions(local: LocalClassifier) -> None:
    decision = local.classify("What is the capital of Peru?")
    assert replace(decision, call=None).version == local.version
    assert local.version.startswith("pkg-")


def test_the_demo_sample_set_written_separately_routes_as_labelled(local: LocalClassifier) -> None:
    import json

    from tierroute.classify.artifacts import packaged_path

    labels = {"simple": "haiku", "moderate": "sonnet", "complex": "opus"}
    path = packaged_path().with_name("sample_prompts.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    hits = [local.classify(r["prompt"]).tier == labels[r["metadata"]["rubric"]] for r in rows]
    assert len(rows) == 66 and sum(hits) / len(hits) >= 0.9


TRANSLATED = {
    "opus": (
        "请审查这个分布式系统架构的可扩展性瓶颈、一致性权衡和故障模式：三个API节点、"
        "一个Postgres主库、用于会话的Redis，以及每晚重建搜索索引的批处理任务。",
        "この分散システムのアーキテクチャを、スケーラビリティのボトルネック、一貫性の"
        "トレードオフ、障害モードの観点からレビューしてください。APIノードが3つ、Postgresの"
        "プライマリが1つ、セッション用のRedis、そして毎晩検索インデックスを再構築するバッチが"
        "あります。",
    ),
    "haiku": ("法国的首都是哪里？", "フランスの首都はどこですか？"),
}


@pytest.mark.parametrize("tier", sorted(TRANSLATED))
def test_chinese_and_japanese_prompts_route_by_what_they_ask(
    local: LocalClassifier, tier: str
) -> None:
    # Without spaces a whole prompt once counted as one word: the lesson's Opus example,
    # in Chinese or Japanese, went to Haiku.
    for prompt in TRANSLATED[tier]:
        assert local.classify(prompt).tier == tier, prompt


def test_handwritten_lesson_tier_prompts_route_to_their_tier(local: LocalClassifier) -> None:
    import json

    path = Path(__file__).resolve().parents[1] / "data" / "handwritten_tiers.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    hits = [local.classify(r["prompt"]).tier == r["tier"] for r in rows]
    # Written by hand after the lesson's tier descriptions, never trained on.
    assert len(rows) == 36 and sum(hits) / len(hits) >= 0.85
