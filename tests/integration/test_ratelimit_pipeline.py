"""The shared rate limiter in the pipeline: local waits make no call and cost no attempt."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Services, clear_rate_limits, clear_settings_caches
from tests.steps import complete_job
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.specs import JobSpec
from tierroute.domain.status import JobStatus
from tierroute.pipeline.steps import RetryLater, classify_job
from tierroute.runtime import Runtime, get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.job_reads import read_job_view
from tierroute.store.jobs import create_job

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _llm_classifier(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests are about the Haiku classifier's call (billing, faults, limits,
    # logs); the default classifier is the local one, which makes no call.
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "llm")


PROMPT = "Write a Python function to merge two sorted lists into one sorted list"


@pytest.fixture
def limited(clean_db: Services, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    # One request a minute for Sonnet and Haiku: the second call must wait.
    monkeypatch.setenv(
        "TIERROUTE_RATE_LIMIT_OVERRIDES", '{"sonnet": {"rpm": 1}, "haiku": {"rpm": 1}}'
    )
    clear_settings_caches()
    return get_runtime()


def submit(**fields: object) -> uuid.UUID:
    with session_scope() as session:
        job, _ = create_job(session, JobSpec(prompt=PROMPT, **fields), default_max_tokens=256)
        return job.id


def view(job_id: uuid.UUID) -> dict[str, object]:
    return read_job_view(job_id)


def calls(sim: RunningSimulator, rt: Runtime, tier: str) -> int:
    by_model = sim.stats()["by_model"].get(rt.tiers.get(tier).model, {})
    return sum(by_model.values())


def test_a_local_limit_retries_later_without_a_call_or_an_attempt(
    limited: Runtime, sim: RunningSimulator
) -> None:
    first, second = submit(force_tier="sonnet"), submit(force_tier="sonnet")
    assert classify_job(limited, first) == "sonnet" and classify_job(limited, second) == "sonnet"
    assert complete_job(limited, first) is None
    retry = complete_job(limited, second)
    assert isinstance(retry, RetryLater) and "rate limited locally" in retry.reason
    assert 30 < retry.delay_s <= limited.settings.retry_backoff_max_s  # ~60 s, capped
    assert calls(sim, limited, "sonnet") == 1
    waiting = view(second)
    assert waiting["status"] == JobStatus.RUNNING and waiting["attempts"] == 0
    clear_rate_limits(limited.settings.broker_url or "")  # the minute has passed
    assert complete_job(limited, second) is None
    done = view(second)
    assert done["status"] == JobStatus.SUCCEEDED and done["attempts"] == 1
    assert done["error"] is None


def test_a_429_with_retry_after_pauses_the_model_for_other_jobs(
    clean_db: Services, sim: RunningSimulator
) -> None:
    rt = get_runtime()
    first, second = submit(force_tier="sonnet"), submit(force_tier="sonnet")
    classify_job(rt, first)
    classify_job(rt, second)
    sim.configure(fault_sequence=[429], retry_after_s=5)
    retry = complete_job(rt, first)
    assert retry is not None and retry.delay_s >= 5
    assert calls(sim, rt, "sonnet") == 1
    paused = complete_job(rt, second)  # another job, as another worker would run it
    assert isinstance(paused, RetryLater) and paused.delay_s >= 4
    assert "cooldown" in paused.reason
    assert calls(sim, rt, "sonnet") == 1  # no call during the cooldown
    assert view(second)["attempts"] == 0


def test_a_rate_limited_classifier_retries_instead_of_falling_back(
    limited: Runtime, sim: RunningSimulator
) -> None:
    first, second = submit(), submit()
    assert classify_job(limited, first) == "sonnet"
    retry = classify_job(limited, second)
    assert isinstance(retry, RetryLater) and "rate limited locally" in retry.reason
    assert calls(sim, limited, "haiku") == 1  # only the first job's classifier call
    waiting = view(second)
    assert waiting["status"] == JobStatus.CLASSIFYING and waiting["tier"] is None
    clear_rate_limits(limited.settings.broker_url or "")
    assert classify_job(limited, second) == "sonnet"
    routing = view(second)["routing"]
    assert isinstance(routing, dict) and routing["classifier"] == "llm"
    assert routing["fallback_reason"] is None  # the classifier decided, not a fallback


def test_an_unreachable_limiter_means_wait_not_an_unmetered_call(
    clean_db: Services, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIERROUTE_BROKER_URL", "redis://127.0.0.1:1/0")  # nothing listens
    clear_settings_caches()
    rt = get_runtime()
    job_id = submit(force_tier="sonnet")
    assert classify_job(rt, job_id) == "sonnet"
    retry = complete_job(rt, job_id)
    assert isinstance(retry, RetryLater) and "unavailable" in retry.reason
    assert calls(sim, rt, "sonnet") == 0 and view(job_id)["attempts"] == 0
