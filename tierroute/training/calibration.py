"""`tierroute calibrate`: choose score thresholds from recent traffic or for a quality target.

By shares: the thresholds are quantiles of recent scores, so that about `haiku_share`
of prompts score below `haiku_max_score` and `opus_share` at or above `opus_min_score`.
Scores come from routing_decisions of the last `days` days made by the model version
now in use; when there are too few, the prompts of recent jobs are scored again.

By quality: on an eval set (`tierroute eval`'s JSONL), the cheapest pair of thresholds
whose mean quality reaches `quality_target` × the quality of sending everything to the
dearest tier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tierroute.classify.model import LocalModel
from tierroute.domain.decisions import ScoreThresholds
from tierroute.domain.tiers import TierTable
from tierroute.training.datasets import EvalItem
from tierroute.training.evaluation import prompt_cost

MIN_RECORDED = 50

RECORDED_SCORES_SQL = """
    SELECT d.score FROM routing_decisions d
     WHERE d.score IS NOT NULL AND d.classifier IN ('local', 'hybrid')
       AND d.classifier_version LIKE %(version)s
       AND d.created_at > now() - make_interval(days => %(days)s)
"""
RECENT_PROMPTS_SQL = """
    SELECT prompt FROM jobs WHERE created_at > now() - make_interval(days => %(days)s)
     ORDER BY created_at DESC LIMIT %(limit)s
"""


@dataclass(frozen=True)
class Calibration:
    """Thresholds and how they were found."""

    thresholds: ScoreThresholds
    details: dict[str, Any]


def thresholds_for_shares(
    scores: Sequence[float], haiku_share: float, opus_share: float
) -> ScoreThresholds:
    """Quantile thresholds that put the given shares of `scores` on the cheapest and top tiers."""
    if not (0 <= haiku_share <= 1 and 0 <= opus_share <= 1 and haiku_share + opus_share <= 1):
        raise ValueError("shares must be within [0, 1] and add up to at most 1")
    s = np.sort(np.asarray(scores, dtype=np.float64))
    if len(s) == 0:
        raise ValueError("no scores to calibrate on")
    n = len(s)

    def cut(count: int) -> float:
        # The threshold between the `count` lowest scores and the rest.
        if count <= 0:
            return 0.0
        if count >= n:
            return 1.0
        return float((s[count - 1] + s[count]) / 2)

    low = cut(round(haiku_share * n))
    high = cut(n - round(opus_share * n))
    return ScoreThresholds(low, max(low, high), "calibrated")


def shares_of(scores: Sequence[float], thresholds: ScoreThresholds) -> dict[str, float]:
    """The shares of cheapest, middle and top tier those thresholds give."""
    ranks = [thresholds.rank(s) for s in scores]
    n = max(1, len(ranks))
    return {str(r): round(ranks.count(r) / n, 4) for r in (1, 2, 3)}


def recorded_scores(database_url: str, version: str, days: int) -> list[float]:
    """Scores the current model version recorded in routing_decisions recently."""
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        rows = conn.execute(RECORDED_SCORES_SQL, {"version": f"{version}%", "days": days})
        return [float(r[0]) for r in rows.fetchall()]


def recent_prompts(database_url: str, days: int, limit: int = 20_000) -> list[str]:
    """Prompts of recent jobs, newest first."""
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        rows = conn.execute(RECENT_PROMPTS_SQL, {"days": days, "limit": limit})
        return [str(r[0]) for r in rows.fetchall()]


def for_quality(
    model: LocalModel,
    items: Sequence[EvalItem],
    tiers: TierTable,
    target: float,
    output_tokens: int,
) -> Calibration:
    """The cheapest thresholds whose mean quality reaches `target` × the all-top quality."""
    names = [t.name for t in tiers.tiers]
    scores = model.scores([i.prompt for i in items])
    # Quality and cost of each prompt on each tier; an ungraded tier counts as the next one up.
    quality = np.zeros((len(items), len(names)))
    cost = np.zeros((len(items), len(names)))
    for j in range(len(names)):
        graded = next((n for n in names[j:] if all(n in i.quality for i in items)), names[-1])
        quality[:, j] = [i.quality[graded] for i in items]
        cost[:, j] = [prompt_cost(tiers.get(graded), i.prompt, output_tokens) for i in items]
    goal = target * float(quality[:, -1].mean())
    cuts = np.unique(np.concatenate([[0.0, 1.0], np.quantile(scores, np.linspace(0, 1, 41))]))
    best: tuple[float, float, float, float] | None = None
    for low in cuts:
        for high in cuts[cuts >= low]:
            rank = np.where(scores < low, 0, np.where(scores >= high, len(names) - 1, 1))
            rows = np.arange(len(items))
            q, c = float(quality[rows, rank].mean()), float(cost[rows, rank].sum())
            if q + 1e-12 >= goal and (best is None or c < best[2] - 1e-12):
                best = (float(low), float(high), c, q)
    if best is None:
        raise ValueError(f"no thresholds reach {target:.0%} of the top tier's quality")
    low, high, c, q = best
    thresholds = ScoreThresholds(low, high, "calibrated")
    return Calibration(
        thresholds,
        {
            "method": "quality",
            "quality_target": target,
            "quality": round(q, 6),
            "quality_if_all_top": round(float(quality[:, -1].mean()), 6),
            "cost_usd": round(c, 6),
            "cost_if_all_top_usd": round(float(cost[:, -1].sum()), 6),
            "prompts": len(items),
            "model_version": model.version,
        },
    )
