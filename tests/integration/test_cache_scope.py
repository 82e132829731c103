"""Prompt-cache entries are scoped per API key: one key's `usage` never shows another's.

Anthropic's cache is per organization (one per deployment) and prefix-exact, as the
simulator's is, so without a scope in the prefix a cache read on key B's call would
tell B that key A sent the same system prompt in the last five minutes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis
from sqlalchemy import select

from tests.conftest import Services, clear_settings_caches
from tests.steps import complete_job
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.specs import JobSpec
from tierroute.domain.status import BatchMode
from tierroute.llm.caching import KEY_PREFIX
from tierroute.pipeline.message_batches import poll_once
from tierroute.pipeline.steps import classify_job
from tierroute.runtime import Runtime, get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.ingest import copy_batch
from tierroute.store.jobs import create_job
from tierroute.store.keys import create_api_key
from tierroute.store.models import Job, ModelCall

pytestmark = pytest.mark.integration

# About 5,000 tokens at four characters a token: above every tier's minimum.
SYSTEM = "You answer questions about the internal HR handbook of ACME Corp. " * 300


@pytest.fixture
def rt(
    clean_db: Services, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "llm")
    monkeypatch.setenv("TIERROUTE_BATCH_API_POLL_S", "0.001")
    clear_settings_caches()
    client = redis.Redis.from_url(clean_db.broker_url)
    for key in client.scan_iter(match=f"{KEY_PREFIX}:*"):
        client.delete(key)
    client.close()
    httpx.post(f"{sim.base_url}/_sim/cache/clear").raise_for_status()
    sim.configure(batch_processing_s=0)
    yield get_runtime()
    clear_settings_caches()


def new_key(name: str) -> uuid.UUID:
    with session_scope() as session:
        key, _ = create_api_key(session, name)
        return key.id


def answer(rt: Runtime, key_id: uuid.UUID | None, prompt: str) -> ModelCall:
    """Submit, route and answer one job of `key_id` on haiku; its completion call."""
    with session_scope() as session:
        spec = JobSpec(prompt=prompt, system=SYSTEM, force_tier="haiku")
        job, _ = create_job(session, spec, default_max_tokens=100, api_key_id=key_id)
        job_id = job.id
    assert classify_job(rt, job_id) == "haiku"
    assert complete_job(rt, job_id) is None
    return completion_of([job_id])[0]


def completion_of(job_ids: list[uuid.UUID]) -> list[ModelCall]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(ModelCall).where(
                    ModelCall.job_id.in_(job_ids), ModelCall.purpose == "complete"
                )
            )
        )


def test_a_second_key_with_the_same_system_prompt_reads_nothing_from_the_cache(
    rt: Runtime,
) -> None:
    alice, bob = new_key("alice"), new_key("bob")
    first = answer(rt, alice, "How many vacation days do I get?")
    assert first.cache_creation_input_tokens > 0 and first.cache_read_input_tokens == 0
    # Bob, a minute later, with the same system prompt: no trace of Alice's call.
    bobs = answer(rt, bob, "What is the parental leave policy?")
    assert bobs.cache_read_input_tokens == 0
    assert bobs.cache_creation_input_tokens == first.cache_creation_input_tokens
    # Nor do keyless jobs (the CLI, an API without keys) share either key's entries.
    keyless = answer(rt, None, "Who approves expenses?")
    assert keyless.cache_read_input_tokens == 0
    # Within one key the cache still pays: Alice's next call reads her prefix.
    again = answer(rt, alice, "Can I carry days over to next year?")
    assert again.cache_read_input_tokens == first.cache_creation_input_tokens
    assert again.cache_creation_input_tokens == 0


def test_message_batches_are_scoped_per_key_too(rt: Runtime) -> None:
    alice, bob = new_key("alice"), new_key("bob")
    calls: dict[uuid.UUID, list[ModelCall]] = {}
    for key_id, prompts in ((alice, ["q1", "q2"]), (bob, ["q3"])):
        with session_scope() as session:
            specs = [JobSpec(prompt=p, system=SYSTEM, force_tier="haiku") for p in prompts]
            batch_id, _ = copy_batch(
                session,
                specs,
                default_max_tokens=100,
                mode=BatchMode.BATCH_API,
                api_key_id=key_id,
            )
        with session_scope() as session:
            ids = list(session.scalars(select(Job.id).where(Job.batch_id == batch_id)))
        for job_id in ids:
            assert classify_job(rt, job_id) is None  # held for its Message Batch
        assert poll_once(rt).submitted == 1
        deadline = time.monotonic() + 30
        while len(completion_of(ids)) < len(ids) and time.monotonic() < deadline:
            poll_once(rt)
        calls[key_id] = completion_of(ids)
        assert len(calls[key_id]) == len(ids)
    # Alice's two requests share her prefix; Bob's own batch reads none of it.
    assert sorted(c.cache_read_input_tokens > 0 for c in calls[alice]) == [False, True]
    assert [c.cache_read_input_tokens for c in calls[bob]] == [0]
