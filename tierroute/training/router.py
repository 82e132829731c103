"""Build the local router from labelled sources: the one trainer behind `tierroute train`
and the cross-source report, so that the report judges exactly what ships.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tierroute.classify.features import is_multiple_choice
from tierroute.classify.model import FORMAT, LocalModel, content_id, squash
from tierroute.training.fit import Example
from tierroute.training.sources import Source
from tierroute.training.stacked import ExamRow, GapSet, TierRow, fit_stacked

# Sources labelled by model preference (a gap per prompt) rather than by tier.
PREFERENCE_SOURCES = ("alpaca-eval", "arena-bench")
# Accuracy on tier-labelled rows that a cheaper pair of thresholds may give up.
THRESHOLD_SLACK = 0.003
# MMLU rows on the tier scale: 0.1 + 0.5 × (strong correct − weak correct).
EXAM_LEVEL, EXAM_SPREAD = 0.1, 0.5


def source_examples(source: Source) -> list[Example]:
    """A source's prompts as training examples, each target on its source's own scale."""
    if source.name == "mmlu":
        pair = source.pairs[0]
        targets = EXAM_LEVEL + EXAM_SPREAD * (pair.strong - pair.weak)
    elif source.name in PREFERENCE_SOURCES:
        targets = source.gap()
    else:  # tier-labelled: the weak model's loss is the tier's target (0, 0.5, 1)
        targets = 1.0 - source.pairs[0].weak
    return [
        Example(p, float(t), 1.0, source.name) for p, t in zip(source.prompts, targets, strict=True)
    ]


def split_examples(
    examples: Sequence[Example],
) -> tuple[list[GapSet], list[ExamRow], list[TierRow]]:
    """What the examples teach: size gaps per source, exam targets, tier labels.

    Exam rows teach the size head too (their gap, standardised within the source like
    any other), not only the exam head: with them, the head holds on every left-out
    source of the cross-source report; without them, it loses alpaca-eval.
    """
    by_source: dict[str, list[Example]] = {}
    for example in examples:
        by_source.setdefault(example.source, []).append(example)
    gaps: list[GapSet] = []
    exams: list[ExamRow] = []
    tiers: list[TierRow] = []
    for name, rows in by_source.items():
        if name == "mmlu":
            exams += [ExamRow(e.prompt, e.target) for e in rows]
            gap_rows = rows
        else:
            gap_rows = [e for e in rows if not is_multiple_choice(e.prompt)]
            if name not in PREFERENCE_SOURCES:
                tiers += [TierRow(e.prompt, e.target) for e in rows]
        gaps.append(
            GapSet(name, [e.prompt for e in gap_rows], np.asarray([e.target for e in gap_rows]))
        )
    return gaps, exams, tiers


def choose_thresholds(z: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Latent cut points: the cheapest pair within `THRESHOLD_SLACK` of the best accuracy.

    Tier-labelled rows leave a wide range of cut points almost equally accurate; within
    it, a prompt on the fence goes to the cheaper tier (the product's reason to exist),
    where the range's centre would send it up.
    """
    if len(z) == 0:
        return 0.25, 0.75
    grid = np.round(np.arange(-0.2, 1.2001, 0.01), 4)
    low_grid, high_grid = np.meshgrid(grid, grid, indexing="ij")
    valid = high_grid >= low_grid
    predicted = np.where(
        z[None, None, :] < low_grid[..., None],
        0.0,
        np.where(z[None, None, :] >= high_grid[..., None], 1.0, 0.5),
    )
    accuracy = np.where(valid, (predicted == target[None, None, :]).mean(axis=2), -1.0)
    near = accuracy >= accuracy.max() - THRESHOLD_SLACK
    cost = np.where(near, low_grid + high_grid, -np.inf)
    i, j = np.unravel_index(int(np.argmax(cost)), cost.shape)
    return float(low_grid[i, j]), float(high_grid[i, j])


def build_model(examples: Sequence[Example], *, meta: dict[str, Any] | None = None) -> LocalModel:
    """Fit the stacked router on the examples and wrap it as a `LocalModel`."""
    gaps, exams, tiers = split_examples(examples)
    counts: dict[str, int] = {}
    for example in examples:
        counts[example.source] = counts.get(example.source, 0) + 1
    arrays = fit_stacked(gaps, exams, tiers)
    low, high = choose_thresholds(arrays.tier_rows_z, arrays.tier_rows_target)
    ident = content_id([arrays.weights, arrays.dense_weights, np.asarray([arrays.bias])])
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": f"stacked-{ident}",
        "haiku_max": round(squash(low), 6),
        "opus_min": round(squash(high), 6),
        "sigma": round(arrays.sigma, 4),
        "model": "stacked: length + size residual head; exam head on hashed n-grams",
        "trained_on": counts,
    }
    header.update(meta or {})
    return LocalModel(
        idf=arrays.idf,
        weights=arrays.weights,
        dense_mean=arrays.dense_mean,
        dense_std=arrays.dense_std,
        dense_weights=arrays.dense_weights,
        bias=arrays.bias,
        meta=header,
    )


def trainer(sources: Sequence[Source]) -> Callable[[Sequence[str]], np.ndarray]:
    """The cross-source report's trainer: build the model, score with its inference path."""
    model = build_model([e for s in sources for e in source_examples(s)])
    return model.scores
