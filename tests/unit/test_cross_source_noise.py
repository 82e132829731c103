"""The cross-source report's noise: a margin over length comes with its bootstrap spread."""

from __future__ import annotations

import numpy as np

from tierroute.training.cross_source import format_cross_source, margin_noise, score_source
from tierroute.training.sources import Pair, Source

RNG = np.random.default_rng(3)
N = 300
PROMPTS = ["x" * int(n) for n in RNG.integers(1, 400, N)]
LENGTHS = np.asarray([len(p) for p in PROMPTS], dtype=np.float64)
# The strong model helps on a random half of the prompts, whatever their length.
HELPS = RNG.random(N) < 0.5
PAIR = Pair("weak", "strong", np.where(HELPS, 0.0, 1.0), np.ones(N))
SOURCE = Source("toy", PROMPTS, [PAIR])


def test_ranking_by_length_itself_has_no_margin_and_no_spread() -> None:
    sd, above = margin_noise(LENGTHS, LENGTHS, [PAIR])
    assert sd == 0.0 and above == 0.0


def test_an_oracle_is_above_length_in_every_resample() -> None:
    oracle = HELPS.astype(np.float64) + LENGTHS / 1e6  # ties broken, still the oracle's order
    sd, above = margin_noise(oracle, LENGTHS, [PAIR])
    assert above == 1.0 and 0.0 < sd < 0.2


def test_a_router_no_better_than_length_is_reported_as_noise() -> None:
    noise = RNG.random(N)
    row = score_source(noise, SOURCE)
    assert row["margin_sd"] > 0.01
    assert 0.0 < row["above_length_share"] < 1.0
    # The same scores give the same figures: the resamples are seeded.
    assert score_source(noise, SOURCE) == row


def test_the_text_report_shows_the_noise() -> None:
    text = format_cross_source({"toy": score_source(LENGTHS + HELPS, SOURCE)})
    assert "± sd" in text and "above" in text and "bootstrap" in text
    assert "100%" in text.splitlines()[2]
