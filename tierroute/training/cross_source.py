"""Leave-one-source-out evaluation: how a router does on a kind of traffic it never saw.

For each source, a router is trained on every other source and scored on the one left
out. A random split of one source flatters a router (its test prompts share templates,
topics and labellers with its training prompts); a left-out source does not. This
report, not a split, decides every modelling choice.

Per left-out source and weak/strong pair: APGR and CPT(50 %) of the router, of the
prompt-length baseline and of a random router; the pairs' mean is the source's figure.
Each source's margin over length comes with its noise: a paired bootstrap over the
source's prompts gives its standard deviation and the share of resamples in which the
router stays above length. A margin smaller than its noise is not a win.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tierroute.training.quality import apgr, cpt, random_apgr, routing_curve
from tierroute.training.sources import Pair, Source

# Trains on the given sources and returns a scorer: prompts -> scores (higher: stronger tier).
Trainer = Callable[[Sequence[Source]], Callable[[Sequence[str]], np.ndarray]]
# Resamples of the paired bootstrap, with a fixed seed so that a report can be repeated.
BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_SEED = 13


def _recoverable(pair: Pair, rows: np.ndarray) -> np.ndarray | None:
    """The rows both models were graded on, or None when the strong one gains nothing there."""
    rows = rows[pair.graded()[rows]]
    if len(rows) == 0 or float(np.mean(pair.strong[rows] - pair.weak[rows])) <= 0:
        return None
    return rows


def pair_figures(scores: np.ndarray, lengths: np.ndarray, pair: Pair) -> dict[str, float] | None:
    """APGR and CPT(50 %) of the router and the baselines on one pair (None: no gap to recover)."""
    rows = _recoverable(pair, np.arange(len(scores)))
    if rows is None:
        return None
    weak, strong = pair.weak[rows], pair.strong[rows]
    ours = routing_curve(scores[rows], weak, strong)
    by_length = routing_curve(lengths[rows], weak, strong)
    return {
        "apgr": apgr(ours),
        "cpt50": cpt(ours, 0.5),
        "length_apgr": apgr(by_length),
        "length_cpt50": cpt(by_length, 0.5),
        "random_apgr": random_apgr(weak, strong),
    }


def margin_noise(
    scores: np.ndarray, lengths: np.ndarray, pairs: Sequence[Pair]
) -> tuple[float, float]:
    """(standard deviation, share above zero) of the margin over length, over resamples.

    Each resample draws the source's prompts with replacement and scores the router and
    the length baseline on the same draw (paired), so what varies is which prompts the
    source happened to hold.
    """
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    n = len(scores)
    margins = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        drawn = rng.integers(0, n, n)
        per_pair = []
        for pair in pairs:
            rows = _recoverable(pair, drawn)
            if rows is None:
                continue
            weak, strong = pair.weak[rows], pair.strong[rows]
            ours = apgr(routing_curve(scores[rows], weak, strong))
            per_pair.append(ours - apgr(routing_curve(lengths[rows], weak, strong)))
        if per_pair:
            margins.append(float(np.mean(per_pair)))
    if not margins:
        return 0.0, 0.0
    values = np.asarray(margins)
    return float(np.std(values)), float(np.mean(values > 0))


def score_source(scores: np.ndarray, source: Source) -> dict[str, Any]:
    """The source's figures: the mean over its pairs, each pair's own, the margin's noise."""
    lengths = np.asarray([len(p) for p in source.prompts], dtype=np.float64)
    pairs = {}
    for pair in source.pairs:
        figures = pair_figures(scores, lengths, pair)
        if figures is not None:
            pairs[f"{pair.weak_name} < {pair.strong_name}"] = {
                k: round(v, 4) for k, v in figures.items()
            }
    keys = ("apgr", "cpt50", "length_apgr", "length_cpt50", "random_apgr")
    summary = {k: round(float(np.mean([p[k] for p in pairs.values()])), 4) for k in keys}
    summary["margin_over_length"] = round(summary["apgr"] - summary["length_apgr"], 4)
    sd, above = margin_noise(scores, lengths, source.pairs)
    summary["margin_sd"] = round(sd, 4)
    summary["above_length_share"] = round(above, 3)
    return {"prompts": len(source.prompts), **summary, "pairs": pairs}


def cross_source(sources: Sequence[Source], trainer: Trainer) -> dict[str, Any]:
    """Train on all sources but one, score the one left out, for each source in turn."""
    report: dict[str, Any] = {}
    for held in sources:
        scorer = trainer([s for s in sources if s.name != held.name])
        scores = np.asarray(scorer(held.prompts), dtype=np.float64)
        report[held.name] = score_source(scores, held)
    return report


def format_cross_source(report: dict[str, Any]) -> str:
    """The report as a table, one row per left-out source."""
    lines = [
        "leave-one-source-out: trained on the other sources, scored on this one",
        f"  {'left out':<12} {'prompts':>7}  {'APGR':>6}  {'length':>6}  {'random':>6}  "
        f"{'margin':>7}  {'± sd':>6}  {'above':>5}  {'CPT(50%)':>8}  {'length':>6}",
    ]
    for name, row in report.items():
        lines.append(
            f"  {name:<12} {row['prompts']:>7,}  {row['apgr']:>6.3f}  {row['length_apgr']:>6.3f}  "
            f"{row['random_apgr']:>6.3f}  {row['margin_over_length']:>+7.3f}  "
            f"{row['margin_sd']:>6.3f}  {row['above_length_share']:>5.0%}  "
            f"{row['cpt50']:>8.1%}  {row['length_cpt50']:>6.1%}"
        )
    lines += [
        "  (APGR and CPT are means over each source's weak/strong model pairs; ± sd and",
        "   above: the margin's spread, and how often it stays above length, over",
        f"   {BOOTSTRAP_RESAMPLES} bootstrap resamples of the source's prompts)",
    ]
    return "\n".join(lines)
