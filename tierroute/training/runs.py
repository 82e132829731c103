"""The train and calibrate use cases behind the CLI: gather data, fit, compare, write."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tierroute.classify import artifacts
from tierroute.config import Settings, default_tier_table
from tierroute.domain.errors import InvalidInput, TierrouteError
from tierroute.training.datasets import default_mmlu_dir, load_mmlu, load_rubric, read_eval_jsonl
from tierroute.training.feedback import (
    TrainingData,
    heldout_scores,
    labelled_examples,
    mmlu_examples,
    promotion_verdict,
    rating_examples,
    read_judged_jobs,
    read_rated_jobs,
    rubric_examples,
    train_model,
    verdict_examples,
)
from tierroute.training.router import PREFERENCE_SOURCES, source_examples
from tierroute.training.sources import load_source


def gather(
    settings: Settings,
    *,
    mmlu_dir: Path | None,
    use_mmlu: bool,
    use_ratings: bool,
    labels: list[Path],
    echo: Callable[[str], None],
    use_preferences: bool = True,
) -> TrainingData:
    """Training and held-out data from every available source."""
    tiers = default_tier_table()
    ranks = {t.name: t.rank for t in tiers.tiers}
    data = TrainingData()
    rubric = load_rubric()
    train_part = [i for i in rubric if i.split == "train"]
    data.rubric_holdout = [i for i in rubric if i.split == "holdout"]
    data.fit += rubric_examples(train_part, ranks)
    data.counts["rubric"] = len(train_part)
    directory = mmlu_dir or default_mmlu_dir()
    if use_mmlu and directory.is_dir():
        rows = load_mmlu(directory)
        from tierroute.training.datasets import mmlu_split

        train_rows = [r for r in rows if mmlu_split(r.prompt) == "train"]
        data.mmlu_holdout = [r for r in rows if mmlu_split(r.prompt) == "holdout"]
        data.fit += mmlu_examples(train_rows)
        data.counts["mmlu"] = len(train_rows)
    elif use_mmlu:
        echo(f"note: no MMLU data at {directory}; training without it")
    if use_preferences:
        for name in PREFERENCE_SOURCES:
            try:
                source = load_source(name)
            except InvalidInput as exc:
                echo(f"note: {exc.detail}; training without {name}")
                continue
            data.fit += source_examples(source)
            data.counts[name] = len(source.prompts)
    for path in labels:
        extra = labelled_examples(path, ranks)
        data.fit += extra
        data.counts[path.name] = len(extra)
    if use_ratings:
        if settings.database_url is None:
            echo("note: TIERROUTE_DATABASE_URL is unset; training without ratings")
        else:
            jobs = read_rated_jobs(settings.database_url, ranks)
            fit_jobs = [j for j in jobs if not j.heldout]
            data.ratings_holdout = [j for j in jobs if j.heldout]
            lessons = rating_examples(fit_jobs, tiers.top.rank)
            data.fit += lessons
            data.counts["ratings"] = len(lessons)
            echo(
                f"ratings: {len(jobs)} rated jobs, {len(lessons)} lessons for training, "
                f"{len(data.ratings_holdout)} jobs held out"
            )
            # Shadow judging's verdicts come from the same database, under the same guard.
            judged = read_judged_jobs(settings.database_url, ranks)
            fit_judged = [j for j in judged if not j.heldout]
            data.verdicts_holdout = [j for j in judged if j.heldout]
            if judged:
                data.fit += verdict_examples(fit_judged)
                data.counts["verdicts"] = len(fit_judged)
                echo(
                    f"verdicts: {len(judged)} judged jobs, {len(fit_judged)} for training, "
                    f"{len(data.verdicts_holdout)} held out"
                )
    return data


def run_training(
    settings: Settings,
    *,
    mmlu_dir: Path | None = None,
    use_mmlu: bool = True,
    use_ratings: bool = True,
    labels: list[Path] | None = None,
    packaged: bool = False,
    force: bool = False,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train a version, score it and the current one on held-out data, promote or refuse."""
    tiers = default_tier_table()
    ranks = {t.name: t.rank for t in tiers.tiers}
    data = gather(
        settings,
        mmlu_dir=mmlu_dir,
        use_mmlu=use_mmlu,
        use_ratings=use_ratings,
        labels=labels or [],
        echo=echo,
    )
    counts = ", ".join(f"{k} {v:,}" for k, v in data.counts.items())
    echo(f"training on {counts}")
    model = train_model(data, packaged=packaged)
    new = heldout_scores(model, data, ranks, tiers.top.rank)
    model.meta["heldout"] = new
    root = settings.router_path
    try:
        current_model, current_source = (
            (artifacts.load_packaged(), "packaged") if packaged else artifacts.load_current(root)
        )
        current = heldout_scores(current_model, data, ranks, tiers.top.rank)
        current_version: str | None = current_model.version
    except (OSError, ValueError):  # no usable artifact yet: nothing to beat
        current, current_version, current_source = {}, None, "none"
    ok, why = promotion_verdict(new, current)
    echo(f"new version {model.version}: {new}")
    echo(f"current {current_version} ({current_source}): {current}")
    outcome: dict[str, Any] = {
        "version": model.version,
        "heldout": new,
        "current_version": current_version,
        "current_heldout": current,
        "reason": why,
    }
    if packaged:
        path = model.save(artifacts.packaged_path())
        outcome.update(promoted=True, path=str(path))
        echo(f"wrote the packaged artifact {path} ({path.stat().st_size / 1e6:.2f} MB)")
        return outcome
    path = model.save(artifacts.version_path(root, model.version))
    outcome["path"] = str(path)
    if ok or force:
        artifacts.promote(root, model.version, new)
        outcome["promoted"] = True
        note = " (forced)" if force and not ok else ""
        echo(f"promoted {model.version}{note}: {why}; workers load it when they next start")
    else:
        outcome["promoted"] = False
        echo(f"NOT promoted: {why}. The version is kept at {path}")
    return outcome


def run_calibration(
    settings: Settings,
    *,
    haiku_share: float | None,
    opus_share: float | None,
    quality_target: float | None,
    dataset: Path | None,
    days: int,
    rescore: bool,
    output_tokens: int,
    write: bool,
) -> dict[str, Any]:
    """Thresholds for target shares (recent traffic) or a quality target (an eval set)."""
    from tierroute.training import calibration

    model, _ = artifacts.load_current(settings.router_path)
    tiers = default_tier_table()
    if quality_target is not None:
        if dataset is None:
            raise InvalidInput("--dataset", "--quality-target needs an eval set")
        items = read_eval_jsonl(dataset, tiers.names)
        result = calibration.for_quality(model, items, tiers, quality_target, output_tokens)
        thresholds, details = result.thresholds, result.details
    else:
        if haiku_share is None or opus_share is None:
            raise InvalidInput("shares", "give --haiku-share and --opus-share, or --quality-target")
        if haiku_share + opus_share > 1:
            raise InvalidInput("shares", "--haiku-share + --opus-share must not exceed 1")
        if settings.database_url is None:
            raise TierrouteError("TIERROUTE_DATABASE_URL is not set: no traffic to calibrate on")
        scores: list[float] = []
        source = "recorded scores"
        if not rescore:
            scores = calibration.recorded_scores(settings.database_url, model.version, days)
        if len(scores) < calibration.MIN_RECORDED:
            prompts = calibration.recent_prompts(settings.database_url, days)
            scores = [float(s) for s in model.scores(prompts)]
            source = "recent prompts re-scored"
        if not scores:
            raise TierrouteError(f"no jobs in the last {days} days to calibrate on")
        thresholds = calibration.thresholds_for_shares(scores, haiku_share, opus_share)
        details = {
            "method": "shares",
            "source": source,
            "target_shares": {"haiku": haiku_share, "opus": opus_share},
            "shares": calibration.shares_of(scores, thresholds),
            "prompts": len(scores),
            "days": days,
            "model_version": model.version,
        }
    result_out: dict[str, Any] = {
        "haiku_max_score": round(thresholds.haiku_max, 6),
        "opus_min_score": round(thresholds.opus_min, 6),
        **details,
    }
    if write:
        saved = artifacts.save_thresholds(settings.router_path, thresholds, details)
        result_out["path"] = str(saved)
    return result_out
