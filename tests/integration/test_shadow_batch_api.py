"""Shadow judging of batch_api jobs through Message Batches, on real Postgres, Redis and
the simulator with the real SDK: half-price learning calls, under the learning-cost cap,
and nothing lost or billed twice when a poller dies."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text

from tests.integration.test_batch_api import PROMPTS, Configure, classify_all, configure, submit
from tests.integration.test_batch_create_unanswered import batch_ids, batches_created_since
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.cost import BATCH_RATE, TokenCounts, cost_usd
from tierroute.domain.errors import RetryableProviderError
from tierroute.pipeline.message_batches import poll_once, provider_batches_view, sdk
from tierroute.runtime import Runtime
from tierroute.store.engine import session_scope
from tierroute.store.models import Job, ModelCall, ProviderBatch, ShadowVerdict

pytestmark = pytest.mark.integration

__all__ = ["configure"]  # the fixture, shared with test_batch_api

SHADOWED = {"shadow_rate": 1, "shadow_max_share": 100}


def verdicts(batch_id: uuid.UUID) -> list[ShadowVerdict]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(ShadowVerdict)
                .join(Job, Job.id == ShadowVerdict.job_id)
                .where(Job.batch_id == batch_id)
            )
        )


def learning_calls(batch_id: uuid.UUID) -> list[ModelCall]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(ModelCall)
                .join(Job, Job.id == ModelCall.job_id)
                .where(Job.batch_id == batch_id, ModelCall.purpose.in_(["shadow", "judge"]))
                .order_by(ModelCall.id)
            )
        )


def spend(batch_id: uuid.UUID) -> tuple[Decimal, Decimal]:
    """(completion, learning) billed for the batch's jobs."""
    with session_scope() as session:
        calls = session.scalars(
            select(ModelCall).join(Job, Job.id == ModelCall.job_id).where(Job.batch_id == batch_id)
        ).all()
    completion = sum((c.cost_usd for c in calls if c.purpose == "complete"), Decimal(0))
    learning = sum((c.cost_usd for c in calls if c.purpose != "complete"), Decimal(0))
    return completion, learning


def purposes(batch_id: uuid.UUID) -> list[str]:
    with session_scope() as session:
        rows = session.scalars(
            select(ProviderBatch.purpose)
            .where(ProviderBatch.batch_id == batch_id)
            .order_by(ProviderBatch.id)
        )
        return list(rows)


def poll_until_judged(rt: Runtime, batch_id: uuid.UUID, ticks: int = 8) -> None:
    for _ in range(ticks):
        poll_once(rt)
        pending = [v for v in verdicts(batch_id) if v.as_good is None]
        if verdicts(batch_id) and not pending:
            return
    raise AssertionError(f"still pending after {ticks} polls: {verdicts(batch_id)}")


def test_batch_jobs_are_judged_through_message_batches_at_half_price(
    configure: Configure,
) -> None:
    rt = configure(**SHADOWED)
    batch_id, ids = submit([PROMPTS[t] for t in ("haiku", "sonnet", "opus")])
    classify_all(rt, ids)
    poll_until_judged(rt, batch_id)

    judged = verdicts(batch_id)
    assert {v.job_id for v in judged} == set(ids)
    assert all(v.as_good is not None and v.reasoning for v in judged)
    assert all(v.batch_stage == "judge" and v.reserved_usd is None for v in judged)
    assert all(v.shadow_text is None and v.budget_hold_id is None for v in judged)
    # One Message Batch of answers per tier, then shadow and judge ones: no live call.
    kinds = purposes(batch_id)
    assert kinds[:3] == ["complete"] * 3 and set(kinds[3:]) == {"shadow", "judge"}
    calls = learning_calls(batch_id)
    assert sorted(c.purpose for c in calls) == ["judge"] * 3 + ["shadow"] * 3
    assert all(c.batch_api for c in calls)
    for call in calls:
        tokens = TokenCounts(call.input_tokens, call.output_tokens)
        assert call.cost_usd == BATCH_RATE * cost_usd(tokens, rt.tiers.get(call.tier)) > 0
        assert call.cost_if_opus_usd == 0  # learning saves nothing against Opus
    assert {c.tier for c in calls if c.purpose == "judge"} == {rt.tiers.top.name}
    completion, learning = spend(batch_id)
    assert learning <= Decimal(str(rt.settings.shadow_max_share)) * completion
    with session_scope() as session:
        shown = provider_batches_view(session, batch_id)
    assert len(shown) == 3  # the batch's own Message Batches; the learning ones are not its jobs
    # Nothing left to do, nothing billed twice.
    poll_once(rt)
    assert len(learning_calls(batch_id)) == 6


def test_the_learning_cost_cap_holds_for_batch_jobs(configure: Configure) -> None:
    # A learning judgement reserves many times what a short haiku answer costs: at
    # this share the batch's answers leave room for a few of its jobs, not all.
    rt = configure(shadow_rate=1, shadow_max_share="8")
    prompts = [f"{PROMPTS['haiku']} #{n}" for n in range(24)]
    batch_id, ids = submit(prompts)
    classify_all(rt, ids)
    poll_until_judged(rt, batch_id)
    judged = verdicts(batch_id)
    # The cap binds: some jobs are judged, the others left out.
    assert 0 < len(judged) < len(ids)
    completion, learning = spend(batch_id)
    assert learning <= Decimal("8") * completion
    assert len(learning_calls(batch_id)) == 2 * len(judged)


def test_a_poller_that_dies_applying_shadow_results_loses_and_bills_nothing_twice(
    configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = configure(**SHADOWED)
    batch_id, ids = submit([PROMPTS["haiku"], PROMPTS["sonnet"]])
    classify_all(rt, ids)
    poll_once(rt)  # answers in, judgements claimed
    assert {v.batch_stage for v in verdicts(batch_id)} == {"shadow"}

    real_results = sdk.results

    def dies_midway(client: Any, batch_id_: str) -> Iterator[Any]:
        stream = real_results(client, batch_id_)
        yield next(stream)
        raise SystemExit("poller killed")

    monkeypatch.setattr(sdk, "results", dies_midway)
    with pytest.raises(SystemExit):
        poll_once(rt)  # the shadow Message Batch is created, then its poll dies
    monkeypatch.undo()
    # Rolled back: no call billed, the requests still in their Message Batch.
    assert learning_calls(batch_id) == []
    assert all(v.provider_batch_id is not None for v in verdicts(batch_id))

    poll_until_judged(rt, batch_id)  # a fresh poll carries on from Postgres
    assert sorted(c.purpose for c in learning_calls(batch_id)) == ["judge"] * 2 + ["shadow"] * 2


def test_an_unanswered_shadow_create_is_found_not_made_twice(
    configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = configure(**SHADOWED)
    batch_id, ids = submit([PROMPTS["haiku"], f"{PROMPTS['haiku']} Briefly."])
    classify_all(rt, ids)
    poll_once(rt)
    began = batch_ids(rt)

    real_create = sdk.create

    def accepted_unanswered(client: Any, requests: list[dict[str, Any]]) -> Any:
        real_create(client, requests)
        raise RetryableProviderError("create message batch: request timed out")

    monkeypatch.setattr(sdk, "create", accepted_unanswered)
    assert poll_once(rt).learning == 0
    monkeypatch.undo()
    [accepted] = batches_created_since(rt, began)
    assert all(v.create_sent_at is not None for v in verdicts(batch_id))

    poll_until_judged(rt, batch_id)
    shadow_batches = batches_created_since(rt, began)
    assert accepted in shadow_batches and len(shadow_batches) == 2  # its shadow, then its judge
    assert sorted(c.purpose for c in learning_calls(batch_id)) == ["judge"] * 2 + ["shadow"] * 2


def test_forced_tier_batch_jobs_are_not_judged(configure: Configure) -> None:
    rt = configure(**SHADOWED)
    batch_id, ids = submit([PROMPTS["haiku"]], force_tier="sonnet")
    classify_all(rt, ids)
    for _ in range(3):
        poll_once(rt)
    assert verdicts(batch_id) == [] and learning_calls(batch_id) == []


def test_a_failed_shadow_request_drops_its_judgement_and_its_budget_hold(
    configure: Configure, sim: RunningSimulator
) -> None:
    rt = configure(**SHADOWED, daily_budget_usd=100)
    batch_id, ids = submit([PROMPTS["haiku"], f"{PROMPTS['haiku']} Briefly."])
    classify_all(rt, ids)
    poll_once(rt)  # answers in, judgements claimed with a budget hold each
    assert all(v.budget_hold_id is not None for v in verdicts(batch_id))
    sim.configure(batch_processing_s=0, batch_result_sequence=["errored"])
    poll_until_judged(rt, batch_id)
    [judged] = verdicts(batch_id)  # the other's shadow request errored: not judged
    assert judged.as_good is not None
    assert sorted(c.purpose for c in learning_calls(batch_id)) == ["judge", "shadow"]
    with session_scope() as session:
        holds = session.execute(text("SELECT count(*) FROM budget_holds")).scalar_one()
    assert holds == 0
