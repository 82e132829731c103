"""RouteLLM's routing metrics: the cost-quality curve, APGR and CPT.

A router ranks prompts by score; a threshold sends the top share of them to the
strong model. Sweeping the threshold from "no prompt" to "every prompt" traces
quality against the share of strong-model calls. With `weak` and `strong` the mean
quality of routing everything to one model:

- PGR(share) = (quality(share) - weak) / (strong - weak): the performance gap recovered.
- APGR = the area under PGR over share from 0 to 1 (trapezoidal rule). A random router
  scores 0.5 in expectation; an oracle can exceed 1 (it also avoids the prompts the
  strong model gets wrong and the weak one right).
- CPT(x) = the smallest share of strong calls at which PGR reaches x (linear between
  curve points), e.g. CPT(50 %) and CPT(80 %).

Prompts with equal scores cannot be split by a threshold, so the curve is evaluated
at the edges of each group of ties and is straight in between: the expectation of
breaking ties at random. This makes a constant-score router exactly the random one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Values = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class Curve:
    """Strong-call share and mean quality at each threshold, plus both endpoints' quality."""

    share: np.ndarray
    quality: np.ndarray
    weak: float
    strong: float
    # Score threshold at each point: prompts scoring >= it go to the strong model.
    thresholds: np.ndarray

    @property
    def pgr(self) -> np.ndarray:
        """Performance gap recovered at each point."""
        gap = self.strong - self.weak
        if gap <= 0:
            raise ValueError(
                f"the strong tier's mean quality ({self.strong:.4f}) must exceed the weak "
                f"tier's ({self.weak:.4f}) for APGR to be defined"
            )
        return (self.quality - self.weak) / gap


def routing_curve(scores: Values, weak: Values, strong: Values) -> Curve:
    """The curve of a router that sends the highest scores to the strong model first."""
    s = np.asarray(scores, dtype=np.float64)
    w = np.asarray(weak, dtype=np.float64)
    g = np.asarray(strong, dtype=np.float64) - w
    n = len(s)
    if n == 0 or len(w) != n or len(g) != n:
        raise ValueError("scores, weak and strong need the same, non-zero length")
    order = np.argsort(-s, kind="stable")
    sorted_scores = s[order]
    cum_gain = np.concatenate([[0.0], np.cumsum(g[order])])
    # A point after each group of equal scores (and one before the first).
    ends = np.flatnonzero(np.diff(sorted_scores) != 0) + 1
    edges = np.concatenate([[0], ends, [n]])
    base = w.sum()
    thresholds = np.concatenate([[np.inf], sorted_scores[edges[1:] - 1]])
    return Curve(
        share=edges / n,
        quality=(base + cum_gain[edges]) / n,
        weak=float(w.mean()),
        strong=float((w + g).mean()),
        thresholds=thresholds,
    )


def apgr(curve: Curve) -> float:
    """Average performance gap recovered: the area under PGR over share in [0, 1]."""
    return float(np.trapezoid(curve.pgr, curve.share))


def cpt(curve: Curve, target: float) -> float:
    """Share of strong calls needed to recover `target` (e.g. 0.5) of the quality gap."""
    pgr = curve.pgr
    hits = np.flatnonzero(pgr >= target - 1e-12)
    if len(hits) == 0:
        return 1.0
    i = int(hits[0])
    if i == 0:
        return float(curve.share[0])
    x0, x1, y0, y1 = curve.share[i - 1], curve.share[i], pgr[i - 1], pgr[i]
    return float(x0 + (target - y0) * (x1 - x0) / (y1 - y0))


def oracle_curve(weak: Values, strong: Values) -> Curve:
    """The best possible router: strong calls first where they gain the most."""
    gain = np.asarray(strong, dtype=np.float64) - np.asarray(weak, dtype=np.float64)
    return routing_curve(gain, weak, strong)


def random_apgr(weak: Values, strong: Values, draws: int = 20) -> float:
    """APGR of a router with uniformly random scores, averaged over seeded draws."""
    rng = np.random.default_rng(0)
    n = len(weak)
    return float(np.mean([apgr(routing_curve(rng.random(n), weak, strong)) for _ in range(draws)]))


def at_shares(curve: Curve, shares: Sequence[float]) -> list[dict[str, float | None]]:
    """Curve points at chosen strong-call shares (interpolated), for printing and JSON."""
    pgr = curve.pgr
    points = []
    for x in shares:
        i = int(np.searchsorted(curve.share, x, side="right") - 1)
        i = min(max(i, 0), len(curve.share) - 1)
        points.append(
            {
                "strong_share": round(float(x), 4),
                "quality": round(float(np.interp(x, curve.share, curve.quality)), 6),
                "pgr": round(float(np.interp(x, curve.share, pgr)), 6),
                "threshold": round(float(curve.thresholds[i]), 6)
                if np.isfinite(curve.thresholds[i])
                else None,
            }
        )
    return points
