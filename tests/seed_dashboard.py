"""A week of jobs, calls, ratings and batches for two keys, written straight to Postgres."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from tierroute.domain.cost import TokenCounts, cache_savings_usd, cost_usd
from tierroute.domain.status import JobStatus
from tierroute.domain.tiers import TierTable
from tierroute.store.keys import create_api_key
from tierroute.store.models import Batch, Job, ModelCall, Rating

DAYS = 7
# Jobs per tier on each of the DAYS days (oldest first) for the main key.
JOBS_PER_DAY = {"haiku": [6, 4, 7, 5, 8, 6, 9], "sonnet": [3, 4, 2, 5, 3, 4, 2],
                "opus": [1, 2, 1, 0, 2, 1, 3]}  # fmt: skip
LATENCY_MS = {"haiku": 300, "sonnet": 1500, "opus": 4000}
SATISFACTION = {"haiku": 0.7, "sonnet": 0.85, "opus": 0.95}


@dataclass(frozen=True)
class Seeded:
    """The keys the seed created (raw secrets, for HTTP) and their ids."""

    key_id: uuid.UUID
    raw_key: str
    other_key_id: uuid.UUID
    other_raw_key: str
    batch_ids: list[uuid.UUID]
    other_batch_id: uuid.UUID


def _call(
    tiers: TierTable,
    job: Job,
    tier: str,
    purpose: str,
    tokens: TokenCounts,
    at: datetime,
    latency_ms: int,
) -> ModelCall:
    own = cost_usd(tokens, tiers.get(tier))
    if_opus = Decimal(0) if purpose == "classify" else cost_usd(tokens, tiers.top)
    return ModelCall(
        job_id=job.id,
        purpose=purpose,
        model=tiers.get(tier).model,
        tier=tier,
        input_tokens=tokens.input_tokens,
        output_tokens=tokens.output_tokens,
        cache_creation_input_tokens=tokens.cache_creation_input_tokens,
        cache_read_input_tokens=tokens.cache_read_tokens,
        cost_usd=own,
        cost_if_opus_usd=if_opus,
        cache_savings_usd=cache_savings_usd(tokens, tiers.get(tier)),
        latency_ms=latency_ms,
        simulated=True,
        created_at=at,
    )


def _job(
    session: Session,
    tiers: TierTable,
    key_id: uuid.UUID,
    tier: str,
    at: datetime,
    n: int,
    batch: Batch | None,
    status: JobStatus = JobStatus.SUCCEEDED,
) -> Job:
    job = Job(
        id=uuid.uuid4(),
        api_key_id=key_id,
        batch_id=batch.id if batch else None,
        status=status,
        prompt=f"seeded prompt {n} for {tier}",
        max_tokens=1024,
        tier=tier,
        created_at=at,
        finished_at=at + timedelta(seconds=5),
    )
    session.add(job)
    session.flush()
    classify = TokenCounts(input_tokens=420 + n % 50, output_tokens=60)
    session.add(_call(tiers, job, "haiku", "classify", classify, at, 350 + n % 100))
    if status is JobStatus.SUCCEEDED:
        # Some sonnet answers write a long system prompt to the cache (some for an
        # hour, which costs more), others read it.
        writes = tier == "sonnet" and n % 3 == 1
        hour = writes and n % 2 == 0
        reads = tier == "sonnet" and n % 3 == 0
        tokens = TokenCounts(
            input_tokens=150 + 7 * (n % 30),
            output_tokens={"haiku": 120, "sonnet": 600, "opus": 1500}[tier] + 3 * (n % 40),
            cache_write_5m_tokens=2000 if writes and not hour else 0,
            cache_write_1h_tokens=2000 if hour else 0,
            cache_read_tokens=2000 if reads else 0,
        )
        latency = LATENCY_MS[tier] + 37 * (n % 11)
        session.add(_call(tiers, job, tier, "complete", tokens, at + timedelta(seconds=1), latency))
        if n % 2 == 0:
            session.add(Rating(job_id=job.id, satisfaction=SATISFACTION[tier], created_at=at))
    return job


def seed_dashboard(session: Session, tiers: TierTable, now: datetime | None = None) -> Seeded:
    """Write the seed; returns the keys. Committing is the caller's session scope's job."""
    now = now or datetime.now(UTC)
    key, raw = create_api_key(session, "dashboard-analyst")
    other, other_raw = create_api_key(session, "dashboard-other")
    today = datetime(now.year, now.month, now.day, 9, tzinfo=UTC)
    batches = [Batch(id=uuid.uuid4(), api_key_id=key.id, job_count=0) for _ in range(3)]
    # Days 0-2 in the first batch, 3-4 in the second, 5 in the third, the last day single jobs.
    batch_of_day: list[Batch | None] = [*[batches[0]] * 3, *[batches[1]] * 2, batches[2], None]
    for i, new_batch in enumerate(batches):
        new_batch.created_at = today - timedelta(days=DAYS - 1 - [0, 3, 5][i])
        session.add(new_batch)
    session.flush()
    n = 0
    for day in range(DAYS):
        at = today - timedelta(days=DAYS - 1 - day)
        batch = batch_of_day[day]
        for tier, counts in JOBS_PER_DAY.items():
            for _ in range(counts[day]):
                n += 1
                _job(session, tiers, key.id, tier, at + timedelta(minutes=n), n, batch)
                if batch is not None:
                    batch.job_count += 1
    # One job that failed after its classifier call: billed, never answered.
    _job(session, tiers, key.id, "opus", today, 999, None, JobStatus.FAILED)
    # The other key: one expensive batch today, which the first key must never see.
    other_batch = Batch(id=uuid.uuid4(), api_key_id=other.id, job_count=4, created_at=today)
    session.add(other_batch)
    session.flush()
    for i in range(4):
        _job(session, tiers, other.id, "opus", today + timedelta(minutes=i), 500 + i, other_batch)
    session.flush()
    return Seeded(
        key_id=key.id,
        raw_key=raw,
        other_key_id=other.id,
        other_raw_key=other_raw,
        batch_ids=[b.id for b in batches],
        other_batch_id=other_batch.id,
    )
