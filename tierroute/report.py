"""The savings report: tier distribution, cost, cost if all Opus, savings, quality."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from tierroute.tiers import TierTable


def build_report(session: Session, tiers: TierTable) -> dict[str, Any]:
    """The report as plain data, read from the analyst views so both always agree."""
    savings = session.execute(text("SELECT * FROM savings")).mappings().one()
    quality = {
        row["tier"]: row for row in session.execute(text("SELECT * FROM tier_quality")).mappings()
    }
    failed = session.execute(
        text("SELECT count(*) FROM jobs WHERE status IN ('failed', 'dead')")
    ).scalar_one()
    simulated = session.execute(
        text("SELECT coalesce(bool_or(simulated), false) FROM model_calls")
    ).scalar_one()
    classifier_calls = session.execute(
        text("SELECT count(*) FROM model_calls WHERE purpose = 'classify'")
    ).scalar_one()
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
