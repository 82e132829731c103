"""A key's report (scoped SQL) and the global one (the analyst views) agree when the
key owns every call: batch and cache savings included."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from tests.conftest import Services
from tierroute.config import default_tier_table, get_settings
from tierroute.domain.cost import BATCH_RATE, TokenCounts, cache_savings_usd, cost_usd
from tierroute.domain.status import JobStatus
from tierroute.store.engine import init_engine, session_scope
from tierroute.store.keys import create_api_key
from tierroute.store.models import Job, ModelCall
from tierroute.store.report import build_report

pytestmark = pytest.mark.integration
TIERS = default_tier_table()


def add_job(key_id: uuid.UUID, tier: str, tokens: TokenCounts, batch_api: bool) -> None:
    price = BATCH_RATE if batch_api else Decimal(1)
    with session_scope() as session:
        job = Job(
            id=uuid.uuid4(),
            api_key_id=key_id,
            status=JobStatus.SUCCEEDED,
            prompt="p",
            max_tokens=64,
            tier=tier,
            batch_api=batch_api,
        )
        session.add(job)
        session.flush()
        session.add(
            ModelCall(
                job_id=job.id,
                purpose="complete",
                model=TIERS.get(tier).model,
                tier=tier,
                input_tokens=tokens.input_tokens,
                output_tokens=tokens.output_tokens,
                cache_creation_input_tokens=tokens.cache_creation_input_tokens,
                cache_read_input_tokens=tokens.cache_read_tokens,
                cost_usd=price * cost_usd(tokens, TIERS.get(tier)),
                cost_if_opus_usd=price * cost_usd(tokens, TIERS.top),
                cache_savings_usd=price * cache_savings_usd(tokens, TIERS.get(tier)),
                latency_ms=10,
                batch_api=batch_api,
            )
        )


def test_a_keys_report_is_the_global_one_when_it_owns_every_call(clean_db: Services) -> None:
    init_engine(get_settings())
    with session_scope() as session:
        key, _ = create_api_key(session, "only")
        key_id = key.id
    add_job(key_id, "haiku", TokenCounts(1200, 300, cache_read_tokens=4000), batch_api=True)
    add_job(key_id, "sonnet", TokenCounts(800, 900, cache_write_1h_tokens=2000), batch_api=True)
    add_job(key_id, "opus", TokenCounts(500, 700, cache_read_tokens=2000), batch_api=False)
    with session_scope() as session:
        scoped = build_report(session, TIERS, api_key_id=key_id)
        everyone = build_report(session, TIERS)
    assert scoped["batch_api_calls"] == everyone["batch_api_calls"] == 2
    assert scoped["batch_api_savings_usd"] == everyone["batch_api_savings_usd"] > 0
    assert scoped["cache_savings_usd"] == everyone["cache_savings_usd"] != 0
    for figure in ("total_cost_usd", "cost_if_all_opus_usd", "saved_usd", "saved_pct"):
        assert scoped[figure] == everyone[figure], figure
