"""`tierroute eval`: route an eval set, sweep thresholds, report APGR, CPT, cost and savings.

The sweep is RouteLLM's binary one: the cheapest tier is the weak model, the dearest
the strong one, and a threshold on the classifier's score decides between them. The
classifier's own decisions at the configured thresholds (three tiers when the set
grades the middle one) give the cost, quality and savings against sending every
prompt to the dearest tier. A prompt routed to a tier the set does not grade is
counted at the next dearer graded tier (with two tiers: the dearest).

Costs use the tier table's prices with an assumed token count per prompt: input =
characters / 4 (cost.typical_tokens: a typical count, not the rate limiter's upper
bound), output = `output_tokens` (300 unless told otherwise), plus the classifier's own
billed calls.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tierroute.classify.base import Classifier
from tierroute.domain.cost import TokenCounts, cost_usd, typical_tokens
from tierroute.domain.decisions import RoutingDecision
from tierroute.domain.tiers import Tier, TierTable
from tierroute.training.datasets import EvalItem
from tierroute.training.quality import (
    apgr,
    at_shares,
    cpt,
    oracle_curve,
    random_apgr,
    routing_curve,
)

DEFAULT_OUTPUT_TOKENS = 300
CURVE_SHARES = tuple(i / 20 for i in range(21))


def prompt_cost(tier: Tier, prompt: str, output_tokens: int) -> float:
    """USD for one answer on `tier` under the token assumption."""
    tokens = TokenCounts(input_tokens=typical_tokens(prompt), output_tokens=output_tokens)
    return float(cost_usd(tokens, tier))


def _graded_tier(tier: Tier, graded: set[str], tiers: TierTable) -> str:
    for candidate in tiers.tiers:
        if candidate.rank >= tier.rank and candidate.name in graded:
            return candidate.name
    return tiers.top.name


def length_apgr(items: Sequence[EvalItem], weak: Sequence[float], strong: Sequence[float]) -> float:
    """APGR of the baseline that sends the longest prompts to the strong tier first.

    A router that cannot beat it has learnt nothing that the prompt's length does not say.
    """
    return apgr(routing_curve([len(i.prompt) for i in items], weak, strong))


def decide_all(
    classifier: Classifier, items: Sequence[EvalItem]
) -> tuple[list[RoutingDecision], float]:
    """The classifier's decision for every prompt, and the median seconds per decision."""
    decisions, times = [], []
    for item in items:
        started = time.perf_counter()
        decisions.append(classifier.classify(item.prompt))
        times.append(time.perf_counter() - started)
    return decisions, float(np.median(times))


def evaluate(
    classifier: Classifier,
    items: Sequence[EvalItem],
    tiers: TierTable,
    *,
    output_tokens: int = DEFAULT_OUTPUT_TOKENS,
) -> dict[str, Any]:
    """The full report: curve, APGR, CPT50/80, random and oracle, and cost at the thresholds."""
    weak_tier, strong_tier = tiers.cheapest, tiers.top
    decisions, median_s = decide_all(classifier, items)
    scores = [
        d.score if d.score is not None else tiers.get(d.tier).rank / len(tiers.tiers)
        for d in decisions
    ]
    weak = [i.quality[weak_tier.name] for i in items]
    strong = [i.quality[strong_tier.name] for i in items]
    curve = routing_curve(scores, weak, strong)
    oracle = oracle_curve(weak, strong)
    report: dict[str, Any] = {
        "classifier": classifier.name,
        "version": getattr(classifier, "version", None),
        "prompts": len(items),
        "weak_tier": weak_tier.name,
        "strong_tier": strong_tier.name,
        "weak_quality": round(curve.weak, 6),
        "strong_quality": round(curve.strong, 6),
        "apgr": round(apgr(curve), 4),
        "cpt50": round(cpt(curve, 0.5), 4),
        "cpt80": round(cpt(curve, 0.8), 4),
        "random_apgr": round(random_apgr(weak, strong), 4),
        "length_apgr": round(length_apgr(items, weak, strong), 4),
        "oracle_apgr": round(apgr(oracle), 4),
        "oracle_cpt50": round(cpt(oracle, 0.5), 4),
        "oracle_cpt80": round(cpt(oracle, 0.8), 4),
        "points": at_shares(curve, CURVE_SHARES),
        "median_decision_ms": round(median_s * 1000, 4),
        "configured": _at_configured(decisions, items, tiers, output_tokens),
    }
    escalations = sum(
        1 for d in decisions if d.classifier == "hybrid" and "asked llm" in d.reasoning
    )
    if classifier.name == "hybrid":
        report["llm_asked"] = escalations
        report["llm_asked_share"] = round(escalations / len(items), 4)
    report["_curves"] = {"ours": curve, "oracle": oracle}
    return report


def _at_configured(
    decisions: Sequence[RoutingDecision],
    items: Sequence[EvalItem],
    tiers: TierTable,
    output_tokens: int,
) -> dict[str, Any]:
    graded = set(items[0].quality)
    for item in items[1:]:
        graded &= set(item.quality)
    counts: Counter[str] = Counter()
    quality = cost = if_top = classifier_cost = 0.0
    for decision, item in zip(decisions, items, strict=True):
        tier = tiers.get(_graded_tier(tiers.get(decision.tier), graded, tiers))
        counts[tier.name] += 1
        quality += item.quality[tier.name]
        cost += prompt_cost(tier, item.prompt, output_tokens)
        if_top += prompt_cost(tiers.top, item.prompt, output_tokens)
        if decision.call is not None:
            classifier_cost += float(decision.call.cost_usd)
    n = len(items)
    total = cost + classifier_cost
    top_quality = sum(i.quality[tiers.top.name] for i in items) / n
    return {
        "shares": {t.name: round(counts[t.name] / n, 4) for t in tiers.tiers},
        "quality": round(quality / n, 6),
        "quality_if_all_top": round(top_quality, 6),
        "cost_usd": round(total, 6),
        "classifier_cost_usd": round(classifier_cost, 6),
        "cost_if_all_top_usd": round(if_top, 6),
        "saved_usd": round(if_top - total, 6),
        "saved_pct": round(100 * (if_top - total) / if_top, 2) if if_top else 0.0,
        "assumed_output_tokens": output_tokens,
        "assumed_input_tokens": "characters / 4",
    }


def public(report: dict[str, Any]) -> dict[str, Any]:
    """The report without its plotting internals, ready for JSON."""
    return {k: v for k, v in report.items() if not k.startswith("_")}


def format_report(report: dict[str, Any]) -> str:
    """The report as text: the curve, then the headline figures."""
    lines = [
        f"classifier {report['classifier']} ({report['version']}), {report['prompts']:,} prompts; "
        f"weak = {report['weak_tier']} (quality {report['weak_quality']:.4f}), "
        f"strong = {report['strong_tier']} (quality {report['strong_quality']:.4f})",
        "",
        "cost-quality curve (threshold sweep):",
        f"  {'strong calls':>12}  {'quality':>8}  {'PGR':>7}  {'threshold':>9}",
    ]
    for p in report["points"]:
        threshold = "-" if p["threshold"] is None else f"{p['threshold']:.4f}"
        lines.append(
            f"  {p['strong_share']:>11.0%}  {p['quality']:>8.4f}  {p['pgr']:>7.3f}  {threshold:>9}"
        )
    lines += [
        "",
        f"APGR      {report['apgr']:.4f}   (prompt length {report['length_apgr']:.4f}, "
        f"random {report['random_apgr']:.4f}, oracle {report['oracle_apgr']:.4f})",
        f"CPT(50%)  {report['cpt50']:.2%} strong calls   (oracle {report['oracle_cpt50']:.2%})",
        f"CPT(80%)  {report['cpt80']:.2%} strong calls   (oracle {report['oracle_cpt80']:.2%})",
        f"median decision time {report['median_decision_ms']:.3f} ms",
    ]
    if "llm_asked" in report:
        lines.append(
            f"llm classifier asked for {report['llm_asked']:,} prompts "
            f"({report['llm_asked_share']:.1%})"
        )
    c = report["configured"]
    shares = ", ".join(f"{name} {share:.1%}" for name, share in c["shares"].items())
    lines += [
        "",
        f"at the configured thresholds: {shares}",
        f"  quality {c['quality']:.4f} "
        f"(all {report['strong_tier']}: {c['quality_if_all_top']:.4f})",
        f"  cost ${c['cost_usd']:.4f} (classifier ${c['classifier_cost_usd']:.4f}) vs "
        f"${c['cost_if_all_top_usd']:.4f} all {report['strong_tier']}: "
        f"saved ${c['saved_usd']:.4f} ({c['saved_pct']:.1f}%)",
        f"  assuming input = characters/4 tokens and {c['assumed_output_tokens']} output tokens "
        "per prompt, at the tier table's prices",
    ]
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> Path:
    """Our curve, the random router and the oracle, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours, oracle = report["_curves"]["ours"], report["_curves"]["oracle"]
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot(
        ours.share * 100, ours.quality, label=f"{report['classifier']} (APGR {report['apgr']:.3f})"
    )
    ax.plot(
        [0, 100],
        [ours.weak, ours.strong],
        linestyle=":",
        label=f"random (APGR {report['random_apgr']:.3f})",
    )
    ax.plot(
        oracle.share * 100,
        oracle.quality,
        linestyle="--",
        label=f"oracle (APGR {report['oracle_apgr']:.3f})",
    )
    ax.axhline(ours.weak, color="grey", linewidth=0.8, label=f"all {report['weak_tier']}")
    ax.axhline(ours.strong, color="black", linewidth=0.8, label=f"all {report['strong_tier']}")
    ax.set_xlabel(f"calls to {report['strong_tier']} (%)")
    ax.set_ylabel("quality")
    ax.set_title(f"Cost-quality curve, {report['prompts']:,} prompts")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
