"""The stacked router's fit: its batch latents are the inference path's, and its choices."""

from __future__ import annotations

import numpy as np

from tierroute.training.fit import Example
from tierroute.training.router import build_model, choose_thresholds, split_examples
from tierroute.training.stacked import HEAD_INDEX, LENGTH_INDEX, GapSet, fit_open, length_residual

OPEN = [
    "What is 2 + 2?",
    "Name a colour.",
    "Write a haiku about rain.",
    "Explain why the sky is blue, step by step, for a curious child.",
    "Implement a thread-safe LRU cache in Python and analyse its complexity.",
    "Prove that the sum of two even numbers is even.",
    "Translate 'cat' into French.",
    "Design a sharded key-value store with replication and explain the failure modes.",
    "Summarize this sentence: the cat sat on the mat.",
    "Write a SQL query for the top five customers by revenue.",
    "Who painted the Mona Lisa?",
    "Compare the trade-offs of optimistic and pessimistic locking in databases.",
]
EXAM = "Which is prime?\nA. 4\nB. 6\nC. 7\nD. 9"


def examples() -> list[Example]:
    tiers = [0.0, 0.0, 0.5, 0.5, 1.0, 1.0, 0.0, 1.0, 0.0, 0.5, 0.0, 1.0]
    rows = [Example(p, t, 1.0, "rubric") for p, t in zip(OPEN, tiers, strict=True)]
    gaps = np.linspace(-1, 1, len(OPEN))
    rows += [Example(p, float(g), 1.0, "alpaca-eval") for p, g in zip(OPEN, gaps, strict=True)]
    rows += [Example(EXAM + "\n" * i, 0.6, 1.0, "mmlu") for i in range(3)]
    return rows


def test_examples_split_by_what_they_teach() -> None:
    gaps, exams, tiers = split_examples(examples())
    # Exam rows teach the size head as well as the exam head.
    assert {g.name for g in gaps} == {"rubric", "alpaca-eval", "mmlu"}
    assert len(exams) == 3 and len(tiers) == len(OPEN)


def test_the_open_formula_reads_only_length_and_the_size_cues() -> None:
    words = [" ".join(["word"] * n) + "." * (n % 3) for n in range(1, 40)]
    gap = np.asarray([len(w.split()) % 5 for w in words], dtype=np.float64)
    _, _, weights = fit_open([GapSet("a", words, gap), GapSet("b", words[::-1], gap[::-1])])
    assert weights[LENGTH_INDEX] != 0
    others = np.delete(weights, [LENGTH_INDEX, *HEAD_INDEX])
    assert np.all(others == 0)
    assert np.any(weights[[i for i in HEAD_INDEX if i != LENGTH_INDEX]] != 0)


def test_the_artifact_scores_as_the_fit_does_and_orders_by_tier() -> None:
    model = build_model(examples())
    scores = model.scores(OPEN)
    assert np.all((scores > 0) & (scores < 1))
    tiers: dict[float, list[float]] = {0.0: [], 0.5: [], 1.0: []}
    for e, s in zip(examples()[: len(OPEN)], scores, strict=True):
        tiers[e.target].append(float(s))
    assert np.mean(tiers[0.0]) < np.mean(tiers[0.5]) < np.mean(tiers[1.0])
    assert 0 < model.haiku_max <= model.opus_min < 1


def test_length_residual_removes_what_length_explains() -> None:
    prompts = ["x" * n for n in (5, 50, 500, 5000)]
    gap = np.log1p([5, 50, 500, 5000])
    assert np.allclose(length_residual(prompts, gap), 0.0, atol=1e-9)


def test_thresholds_prefer_the_cheaper_tier_among_equally_accurate_cuts() -> None:
    z = np.asarray([0.0, 0.05, 0.6, 0.62, 1.0, 1.1])
    target = np.asarray([0.0, 0.0, 0.5, 0.5, 1.0, 1.0])
    low, high = choose_thresholds(z, target)
    # Every cut in (0.05, 0.6] x (0.62, 1.0] is perfect; the cheapest is the highest.
    assert low == 0.6 and high == 1.0
