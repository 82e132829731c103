"""`tierroute train`: fit the local router on labelled data and ratings, and promote it if better.

Sources, each turned into targets on the 0 (Haiku) .. 0.5 (Sonnet) .. 1 (Opus) scale:

- the rubric set's training split: the labelled tier;
- MMLU's training split: 0.1 + 0.5 × (strong correct − weak correct), weight 0.01 (many
  noisy rows; exam-style questions have weights of their own, see `features`);
- labelled JSONL files (`--labels`): `{"prompt": str, "tier": name or 1-3}`;
- the ratings table: a job's mean satisfaction below 0.5 on a tier means the prompt needed
  the next tier up; 0.7 or more on a tier below the top confirms that tier. Ratings of
  the top tier, and ratings in between, teach nothing about the cheaper tiers and are
  skipped. A quarter of rated jobs (by a hash of the job id) is held out.
- the shadow_verdicts table (tierroute/pipeline/shadow.py): a judge found the cheaper tier's
  answer as good as the dearer one's (the cheaper tier's target) or not (the dearer
  tier's). A quarter of judged jobs (by a hash of the job id) is held out.

A new version is compared with the current one on held-out data only: rubric accuracy,
MMLU APGR, agreement with held-out ratings and with held-out verdicts, whichever are
available, averaged. It is promoted only when that average is not lower.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from tierroute.classify.model import LocalModel
from tierroute.training.datasets import MmluRow, RubricItem
from tierroute.training.fit import Example
from tierroute.training.quality import apgr, routing_curve

TIER_TARGET = {1: 0.0, 2: 0.5, 3: 1.0}
MMLU_LEVEL, MMLU_SPREAD, MMLU_WEIGHT = 0.1, 0.5, 0.01
RATING_LOW, RATING_HIGH, RATING_WEIGHT = 0.5, 0.7, 1.0
VERDICT_WEIGHT = 1.0

RATED_JOBS_SQL = """
    SELECT j.id::text, j.prompt, j.tier, avg(r.satisfaction)::float8, count(*)
      FROM ratings r JOIN jobs j ON j.id = r.job_id
     WHERE j.tier IS NOT NULL
     GROUP BY j.id, j.prompt, j.tier
     ORDER BY j.id
"""


@dataclass(frozen=True)
class RatedJob:
    """A rated job: its prompt, the tier it ran on, and its mean satisfaction."""

    job_id: str
    prompt: str
    tier_rank: int
    satisfaction: float
    ratings: int

    @property
    def heldout(self) -> bool:
        """A quarter of rated jobs, by a hash of the id, is kept for evaluation."""
        return _held_out(self.job_id)

    def lesson(self, top_rank: int) -> tuple[str, int] | None:
        """('above', t): needed a tier above t; ('within', t): t was enough; None: no lesson."""
        if self.satisfaction < RATING_LOW and self.tier_rank < top_rank:
            return ("above", self.tier_rank)
        if self.satisfaction >= RATING_HIGH and self.tier_rank < top_rank:
            return ("within", self.tier_rank)
        return None


JUDGED_JOBS_SQL = """
    SELECT v.job_id::text, j.prompt, v.cheaper_tier, v.dearer_tier, v.as_good
      FROM shadow_verdicts v JOIN jobs j ON j.id = v.job_id
     WHERE v.as_good IS NOT NULL
     ORDER BY v.job_id
"""


def _held_out(job_id: str) -> bool:
    return int(hashlib.sha256(job_id.encode()).hexdigest(), 16) % 4 == 0


@dataclass(frozen=True)
class JudgedJob:
    """A shadow-judged job: its prompt, the two tiers compared, and the judge's verdict."""

    job_id: str
    prompt: str
    cheaper_rank: int
    dearer_rank: int
    as_good: bool

    @property
    def heldout(self) -> bool:
        """A quarter of judged jobs, by a hash of the id, is kept for evaluation."""
        return _held_out(self.job_id)

    @property
    def target_rank(self) -> int:
        """The cheapest tier the verdict says is enough."""
        return self.cheaper_rank if self.as_good else self.dearer_rank

    def agrees(self, predicted_rank: int) -> bool:
        """Whether a routing to `predicted_rank` is what the verdict asks for."""
        if self.as_good:
            return predicted_rank <= self.cheaper_rank
        return predicted_rank >= self.dearer_rank


def read_judged_jobs(database_url: str, tier_ranks: dict[str, int]) -> list[JudgedJob]:
    """Judged jobs from the shadow_verdicts table (joined with jobs)."""
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        rows = conn.execute(JUDGED_JOBS_SQL).fetchall()
    return [
        JudgedJob(str(r[0]), str(r[1]), tier_ranks[str(r[2])], tier_ranks[str(r[3])], bool(r[4]))
        for r in rows
        if str(r[2]) in tier_ranks and str(r[3]) in tier_ranks
    ]


def verdict_examples(jobs: Sequence[JudgedJob]) -> list[Example]:
    """What each verdict teaches: the target of the cheapest tier it found enough."""
    return [
        Example(j.prompt, TIER_TARGET[min(j.target_rank, 3)], VERDICT_WEIGHT, "verdicts")
        for j in jobs
    ]


def read_rated_jobs(database_url: str, tier_ranks: dict[str, int]) -> list[RatedJob]:
    """Rated jobs from the ratings table (joined with jobs)."""
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        rows = conn.execute(RATED_JOBS_SQL).fetchall()
    return [
        RatedJob(str(r[0]), str(r[1]), tier_ranks[str(r[2])], float(r[3]), int(r[4]))
        for r in rows
        if str(r[2]) in tier_ranks
    ]


def rubric_examples(items: Sequence[RubricItem], ranks: dict[str, int]) -> list[Example]:
    """Rubric prompts at their tier's target."""
    return [Example(i.prompt, TIER_TARGET[ranks[i.tier]], 1.0, "rubric") for i in items]


def mmlu_examples(rows: Sequence[MmluRow]) -> list[Example]:
    """MMLU rows: higher when only the strong model was right, lower when only the weak was."""
    return [
        Example(
            r.prompt, MMLU_LEVEL + MMLU_SPREAD * (int(r.strong) - int(r.weak)), MMLU_WEIGHT, "mmlu"
        )
        for r in rows
    ]


def rating_examples(jobs: Sequence[RatedJob], top_rank: int) -> list[Example]:
    """What each rating teaches, as a target: the next tier up, or the tier it confirmed."""
    examples = []
    for job in jobs:
        lesson = job.lesson(top_rank)
        if lesson is None:
            continue
        kind, rank = lesson
        target = TIER_TARGET[min(rank + 1, 3)] if kind == "above" else TIER_TARGET[rank]
        examples.append(Example(job.prompt, target, RATING_WEIGHT, "ratings"))
    return examples


def labelled_examples(path: Path, ranks: dict[str, int]) -> list[Example]:
    """A labelled JSONL file: one `{"prompt": str, "tier": name or rank}` a line."""
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        tier = record["tier"]
        rank = int(tier) if str(tier).isdigit() else ranks.get(str(tier))
        if rank not in TIER_TARGET:
            raise ValueError(f"{path} line {number}: unknown tier {tier!r}")
        examples.append(Example(str(record["prompt"]), TIER_TARGET[rank], 1.0, path.name))
    return examples


def _choose_thresholds(z: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Latent cut points that classify the labelled rows best (centre of the best range)."""
    grid = np.round(np.arange(-0.2, 1.2001, 0.01), 4)
    best: tuple[float, list[tuple[float, float]]] = (-1.0, [])
    for low in grid:
        for high in grid[grid >= low]:
            predicted = np.where(z < low, 0.0, np.where(z >= high, 1.0, 0.5))
            accuracy = float(np.mean(predicted == target))
            if accuracy > best[0] + 1e-12:
                best = (accuracy, [(low, high)])
            elif abs(accuracy - best[0]) <= 1e-12:
                best[1].append((low, high))
    lows = [p[0] for p in best[1]]
    highs = [p[1] for p in best[1]]
    low = float(np.median(lows))
    high = max(float(np.median(highs)), low)
    return low, high


@dataclass
class TrainingData:
    """Everything one training run uses, split into fitting and held-out parts."""

    fit: list[Example] = field(default_factory=list)
    rubric_holdout: list[RubricItem] = field(default_factory=list)
    mmlu_holdout: list[MmluRow] = field(default_factory=list)
    ratings_holdout: list[RatedJob] = field(default_factory=list)
    verdicts_holdout: list[JudgedJob] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def train_model(data: TrainingData, *, packaged: bool = False) -> LocalModel:
    """Fit the stacked router on `data.fit` and give it a version id."""
    from tierroute.training.router import build_model

    model = build_model(data.fit, meta={"trained_on": data.counts})
    ident = model.version.removeprefix("stacked-")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    model.meta["version"] = f"pkg-{ident}" if packaged else f"{stamp}-{ident[:6]}"
    if not packaged:
        model.meta["trained_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return model


def model_rank(model: LocalModel, score: float) -> int:
    """The tier rank a model's own default thresholds give a score."""
    if score < model.haiku_max:
        return 1
    return 3 if score >= model.opus_min else 2


def heldout_scores(
    model: LocalModel, data: TrainingData, ranks: dict[str, int], top_rank: int
) -> dict[str, float]:
    """Rubric accuracy, MMLU APGR, ratings and verdicts agreement on the held-out parts present."""
    scores: dict[str, float] = {}
    if data.rubric_holdout:
        hits = [
            model_rank(model, model.score(i.prompt)) == ranks[i.tier] for i in data.rubric_holdout
        ]
        scores["rubric_accuracy"] = round(float(np.mean(hits)), 4)
    if data.mmlu_holdout:
        rows = data.mmlu_holdout
        curve = routing_curve(
            model.scores([r.prompt for r in rows]),
            [float(r.weak) for r in rows],
            [float(r.strong) for r in rows],
        )
        scores["mmlu_apgr"] = round(apgr(curve), 4)
    agreements = []
    for job in data.ratings_holdout:
        lesson = job.lesson(top_rank)
        if lesson is None:
            continue
        kind, rank = lesson
        predicted = model_rank(model, model.score(job.prompt))
        agreements.append(predicted > rank if kind == "above" else predicted <= rank)
    if agreements:
        scores["ratings_agreement"] = round(float(np.mean(agreements)), 4)
    if data.verdicts_holdout:
        judged = data.verdicts_holdout
        hits = [j.agrees(model_rank(model, model.score(j.prompt))) for j in judged]
        scores["verdicts_agreement"] = round(float(np.mean(hits)), 4)
    if scores:
        scores["overall"] = round(float(np.mean(list(scores.values()))), 4)
    return scores


def promotion_verdict(new: dict[str, float], current: dict[str, float]) -> tuple[bool, str]:
    """Promote only when the new version's held-out average is not lower; say why."""
    shared = sorted((set(new) & set(current)) - {"overall"})
    if not shared:
        return True, "no held-out score to compare with; promoting"
    new_avg = float(np.mean([new[k] for k in shared]))
    old_avg = float(np.mean([current[k] for k in shared]))
    detail = ", ".join(f"{k} {new[k]:.4f} vs {current[k]:.4f}" for k in shared)
    if new_avg + 1e-9 < old_avg:
        return False, f"held-out average {new_avg:.4f} < current {old_avg:.4f} ({detail})"
    return True, f"held-out average {new_avg:.4f} >= current {old_avg:.4f} ({detail})"
