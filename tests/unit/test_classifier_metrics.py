"""APGR, CPT and the cost-quality curve, checked against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from tierroute.training.quality import (
    apgr,
    at_shares,
    cpt,
    oracle_curve,
    random_apgr,
    routing_curve,
)

# Four prompts: the weak model gets only the first right, the strong one the first three.
WEAK = [1.0, 0.0, 0.0, 0.0]
STRONG = [1.0, 1.0, 1.0, 0.0]


def test_hand_computed_curve_apgr_and_cpt() -> None:
    # Strong calls go to scores 0.9, 0.8, 0.2, 0.1 in turn: gains 0, 1, 0, 1.
    curve = routing_curve([0.9, 0.8, 0.1, 0.2], WEAK, STRONG)
    assert list(curve.share) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert list(curve.quality) == [0.25, 0.25, 0.5, 0.5, 0.75]
    assert list(curve.pgr) == [0.0, 0.0, 0.5, 0.5, 1.0]
    # Trapezoids: 0.25 * (0 + 0.25 + 0.5 + 0.75) = 0.375.
    assert apgr(curve) == pytest.approx(0.375)
    assert cpt(curve, 0.5) == pytest.approx(0.5)
    # PGR 0.8 lies between 0.5 at 75 % and 1.0 at 100 %: 0.75 + 0.6 * 0.25.
    assert cpt(curve, 0.8) == pytest.approx(0.9)


def test_a_perfect_ranking_and_the_oracle() -> None:
    best = routing_curve([0.1, 0.9, 0.8, 0.0], WEAK, STRONG)
    assert apgr(best) == pytest.approx(0.75)  # PGR 0, .5, 1, 1, 1
    assert cpt(best, 0.5) == pytest.approx(0.25)
    oracle = oracle_curve(WEAK, STRONG)
    assert apgr(oracle) == pytest.approx(0.75)
    assert cpt(oracle, 0.8) == pytest.approx(0.4)


def test_the_oracle_can_exceed_one_when_the_weak_model_is_sometimes_better() -> None:
    weak = [1.0, 0.0, 0.0, 0.0]
    strong = [0.0, 1.0, 1.0, 0.0]  # strong wrong where weak is right
    oracle = oracle_curve(weak, strong)
    # Sending only the two prompts the strong model gains on gives quality 0.75 > 0.5.
    assert max(oracle.pgr) == pytest.approx(2.0)  # (0.75 - 0.25) / (0.5 - 0.25)
    assert apgr(oracle) > 1.0


def test_ties_count_as_random_order_so_a_constant_router_scores_one_half() -> None:
    curve = routing_curve([0.5] * 4, WEAK, STRONG)
    assert list(curve.share) == [0.0, 1.0]
    assert apgr(curve) == pytest.approx(0.5)


def test_random_router_is_about_one_half() -> None:
    rng = np.random.default_rng(7)
    weak = (rng.random(4000) < 0.6).astype(float)
    strong = np.maximum(weak, (rng.random(4000) < 0.5).astype(float))
    assert random_apgr(weak, strong) == pytest.approx(0.5, abs=0.02)


def test_a_reversed_router_is_worse_than_random() -> None:
    weak, strong = WEAK * 25, STRONG * 25
    gains = np.asarray(strong) - np.asarray(weak)
    assert (
        apgr(routing_curve(-gains, weak, strong)) < 0.5 < apgr(routing_curve(gains, weak, strong))
    )


def test_no_quality_gap_is_an_error() -> None:
    with pytest.raises(ValueError, match="must exceed"):
        apgr(routing_curve([0.1, 0.2], [1.0, 0.0], [0.0, 1.0]))


def test_points_interpolate_the_curve() -> None:
    curve = routing_curve([0.9, 0.8, 0.1, 0.2], WEAK, STRONG)
    points = at_shares(curve, [0.0, 0.5, 0.625, 1.0])
    assert [p["strong_share"] for p in points] == [0.0, 0.5, 0.625, 1.0]
    assert [p["pgr"] for p in points] == [0.0, 0.5, 0.5, 1.0]
    assert points[0]["threshold"] is None and points[1]["threshold"] == 0.8
