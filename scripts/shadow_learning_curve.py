"""The learning curve of shadow judging: APGR against the simulator's hidden rule by verdicts.

Trains as `tierroute train --no-mmlu` does (rubric and preference sets, plus verdicts,
a quarter held out), with each verdict what the simulated judge says under the hidden
rule (tierroute/devstack/simulator/topics.py), and scores fresh prompts with unseen asides.
Run: `python scripts/shadow_learning_curve.py 0 50 100 200 400 800 1500`.
"""

from __future__ import annotations

import sys

from tierroute.classify import artifacts
from tierroute.config import default_tier_table
from tierroute.devstack.simulator.topics import UNSEEN_ASIDES, topic_prompts
from tierroute.training.datasets import load_rubric
from tierroute.training.feedback import (
    JudgedJob,
    TrainingData,
    heldout_scores,
    promotion_verdict,
    rubric_examples,
    train_model,
    verdict_examples,
)
from tierroute.training.quality import apgr, routing_curve
from tierroute.training.router import PREFERENCE_SOURCES, source_examples
from tierroute.training.sources import load_source


def main(counts: list[int]) -> None:
    tiers = default_tier_table()
    ranks = {t.name: t.rank for t in tiers.tiers}
    fresh = topic_prompts(1000, seed=2, asides=UNSEEN_ASIDES)
    weak = [0.0 if hard else 1.0 for _, hard in fresh]

    def rule_apgr(model: object) -> float:
        scores = model.scores([p for p, _ in fresh])  # type: ignore[attr-defined]
        return apgr(routing_curve(scores, weak, [1.0] * len(fresh)))

    packaged = artifacts.load_packaged()
    print("| judged jobs | used for training | APGR vs the hidden rule | promoted |")
    print("|---|---|---|---|")
    base = TrainingData()
    rubric = load_rubric()
    base.fit += rubric_examples([i for i in rubric if i.split == "train"], ranks)
    base.rubric_holdout = [i for i in rubric if i.split == "holdout"]
    for name in PREFERENCE_SOURCES:
        base.fit += source_examples(load_source(name))
    for count in counts:
        if count == 0:
            print(f"| 0 (packaged) | 0 | {rule_apgr(packaged):.3f} | |")
            continue
        judged = [
            JudgedJob(f"job-{i}", prompt, 1, 2, not hard)
            for i, (prompt, hard) in enumerate(topic_prompts(count, seed=1))
        ]
        data = TrainingData(
            fit=base.fit + verdict_examples([j for j in judged if not j.heldout]),
            rubric_holdout=base.rubric_holdout,
            verdicts_holdout=[j for j in judged if j.heldout],
        )
        model = train_model(data)
        new = heldout_scores(model, data, ranks, tiers.top.rank)
        current = heldout_scores(packaged, data, ranks, tiers.top.rank)
        ok, _ = promotion_verdict(new, current)
        used = sum(not j.heldout for j in judged)
        print(f"| {count} | {used} | {rule_apgr(model):.3f} | {'yes' if ok else 'no'} |")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [0, 25, 50, 100, 200, 400, 800, 1500])
