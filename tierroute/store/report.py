"""The savings report: tier distribution, cost, cost if all Opus, savings, quality.

Every total reads the rollups (tierroute/store/rollups.py), so it keeps counting
calls and jobs whose raw rows were pruned.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from tierroute.domain.cost import batch_api_saving_usd
from tierroute.domain.tiers import TierTable
from tierroute.store import rollups

Rows = tuple[Mapping[Any, Any], Sequence[Mapping[Any, Any]], int]

# Shadow judging's learning cost (tierroute/pipeline/shadow.py): its calls, kept apart from
# the cost of answering, with today's (UTC) share of completion spend, which
# TIERROUTE_SHADOW_MAX_SHARE caps. Also counted in total_cost_usd and saved_usd.
VERDICTS = """
    SELECT count(*) AS judged_jobs, count(*) FILTER (WHERE v.as_good) AS cheaper_as_good
      FROM shadow_verdicts v JOIN jobs j ON j.id = v.job_id
     WHERE v.as_good IS NOT NULL {scope}
"""


def learning(session: Session, api_key_id: uuid.UUID | None = None) -> dict[str, Any]:
    """Shadow judging's cost, calls and verdicts, and today's learning share."""
    scope, params = rollups.key_scope(api_key_id)
    row = session.execute(text(rollups.LEARNING.format(scope=scope)), params).mappings().one()
    scope = "" if api_key_id is None else "AND j.api_key_id = :key"
    verdicts = session.execute(text(VERDICTS.format(scope=scope)), params).mappings().one()
    today, completion = float(row["learning_today_usd"]), float(row["completion_today_usd"])
    return {
        "learning_cost_usd": float(row["learning_cost_usd"]),
        "shadow_calls": int(row["shadow_calls"]),
        "judge_calls": int(row["judge_calls"]),
        "judged_jobs": int(verdicts["judged_jobs"]),
        "judged_cheaper_as_good": int(verdicts["cheaper_as_good"]),
        "learning_cost_today_usd": today,
        "learning_share_today_pct": round(100 * today / completion, 2) if completion else None,
    }


def decided_by(session: Session, api_key_id: uuid.UUID | None = None) -> dict[str, int]:
    """Routing decisions per classifier (manual overrides included), most first."""
    scope, params = rollups.key_scope(api_key_id, "WHERE")
    rows = session.execute(text(rollups.DECIDED_BY.format(scope=scope)), params)
    return {str(r.decided_by): int(r.decisions) for r in rows}


def _global_rows(session: Session) -> Rows:
    savings = dict(session.execute(text("SELECT * FROM savings")).mappings().one())
    savings.update(session.execute(text(rollups.GLOBAL_EXTRAS)).mappings().one())
    quality = list(session.execute(text("SELECT * FROM tier_quality")).mappings())
    return savings, quality, rollups.failed_jobs(session)


def _scoped_rows(session: Session, api_key_id: uuid.UUID) -> Rows:
    params = {"key": api_key_id}
    savings = dict(session.execute(text(rollups.SCOPED_SAVINGS), params).mappings().one())
    # The savings view has this column (its migration spells the batch rate out).
    savings["batch_api_savings_usd"] = batch_api_saving_usd(savings.pop("batch_api_cost_usd"))
    quality = list(session.execute(text(rollups.SCOPED_QUALITY), params).mappings())
    return savings, quality, rollups.failed_jobs(session, api_key_id)


def build_report(
    session: Session, tiers: TierTable, api_key_id: uuid.UUID | None = None
) -> dict[str, Any]:
    """The report as plain data: from the analyst views, or only one API key's jobs."""
    rollups.fold(session)
    if api_key_id is None:
        savings, rows, failed = _global_rows(session)
    else:
        savings, rows, failed = _scoped_rows(session, api_key_id)
    quality = {row["tier"]: row for row in rows}
    simulated, classifier_calls = savings["simulated"], savings["classifier_calls"]
    total_jobs = sum(int(row["jobs"]) for row in quality.values())
    distribution = []
    for name in tiers.names:
        row = quality.get(name)
        jobs = int(row["jobs"]) if row else 0
        distribution.append(
            {
                "tier": name,
                "model": tiers.get(name).model,
                "jobs": jobs,
                "share_pct": round(100 * jobs / total_jobs, 1) if total_jobs else 0.0,
                "cost_usd": float(row["cost_usd"]) if row else 0.0,
                "rated_jobs": int(row["rated_jobs"]) if row else 0,
                "avg_satisfaction": _maybe_float(row["avg_satisfaction"]) if row else None,
            }
        )
    return {
        "simulated": bool(simulated),
        "jobs_succeeded": total_jobs,
        "jobs_failed": int(failed),
        "distribution": distribution,
        "classifier_calls": int(classifier_calls),
        "classifier_cost_usd": float(savings["classifier_cost_usd"]),
        "completion_cost_usd": float(savings["completion_cost_usd"]),
        "total_cost_usd": float(savings["total_cost_usd"]),
        "cost_if_all_opus_usd": float(savings["cost_if_all_opus_usd"]),
        "saved_usd": float(savings["saved_usd"]),
        "saved_pct": _maybe_float(savings["saved_pct"]),
        # Separate from saved_usd, which compares like with like
        # (docs/batch-mode-and-caching.md).
        "cache_read_input_tokens": int(savings["cache_read_input_tokens"]),
        "cache_creation_input_tokens": int(savings["cache_creation_input_tokens"]),
        "cache_savings_usd": float(savings["cache_savings_usd"]),
        "batch_api_calls": int(savings["batch_api_calls"]),
        "batch_api_savings_usd": float(savings["batch_api_savings_usd"]),
        "decided_by": decided_by(session, api_key_id),
        **learning(session, api_key_id),
    }


def _maybe_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def format_report(report: dict[str, Any]) -> str:
    """The report as text, in the lesson's layout plus classifier cost and quality."""
    lines = ["", "=" * 60, "ROUTING REPORT".center(60), "=" * 60]
    if report["simulated"]:
        lines.append("NOTE: models were SIMULATED (no ANTHROPIC_API_KEY); dollars use list prices.")
    total = report["jobs_succeeded"]
    lines.append(f"Jobs answered: {total}    failed: {report['jobs_failed']}")
    lines.append("")
    lines.append("Distribution by tier:")
    for row in report["distribution"]:
        lines.append(
            f"  {row['tier']:<7} {row['model']:<20} {row['jobs']:>6} jobs "
            f"({row['share_pct']:5.1f}%)   ${row['cost_usd']:.6f}"
        )
    lines.append("")
    lines.append(
        f"Classifier cost:     ${report['classifier_cost_usd']:.6f}"
        f"  ({report['classifier_calls']} calls)"
    )
    lines.append(f"Completion cost:     ${report['completion_cost_usd']:.6f}")
    lines.append(f"Total cost:          ${report['total_cost_usd']:.6f}")
    lines.append(f"Cost if all Opus:    ${report['cost_if_all_opus_usd']:.6f}")
    pct = report["saved_pct"]
    pct_text = f"{pct:.1f}%" if pct is not None else "n/a"
    lines.append(f"Saved:               ${report['saved_usd']:.6f} ({pct_text})")
    if report.get("cache_read_input_tokens") or report.get("cache_creation_input_tokens"):
        lines.append(
            f"Cache savings:       ${report['cache_savings_usd']:.6f}"
            f"  ({report['cache_read_input_tokens']:,} tokens read from cache,"
            f" {report['cache_creation_input_tokens']:,} written)"
        )
    if report.get("batch_api_calls"):
        lines.append(
            f"Batch API savings:   ${report['batch_api_savings_usd']:.6f}"
            f"  ({report['batch_api_calls']:,} calls at the 50% batch rate)"
        )
    if report.get("shadow_calls") or report.get("judge_calls"):
        share = report.get("learning_share_today_pct")
        share_text = f"{share:.1f}% of today's completion cost" if share is not None else "n/a"
        lines.append(
            f"Learning cost:       ${report['learning_cost_usd']:.6f}"
            f"  ({report['judged_jobs']:,} jobs shadow-judged,"
            f" {report['judged_cheaper_as_good']:,} cheaper answers as good; {share_text})"
        )
    if report.get("decided_by"):
        decided = ", ".join(f"{name} {n:,}" for name, n in report["decided_by"].items())
        lines.append(f"Decided by:          {decided}")
    lines.append("")
    lines.append("Quality by tier (satisfaction 0..1):")
    rated = [row for row in report["distribution"] if row["rated_jobs"]]
    if not rated:
        lines.append("  no ratings yet: rate an answer with `tierroute rate JOB_ID SCORE`")
    for row in rated:
        lines.append(
            f"  {row['tier']:<7} {row['avg_satisfaction']:.2f} average "
            f"over {row['rated_jobs']} rated jobs"
        )
    lines.append("=" * 60)
    return "\n".join(lines)
