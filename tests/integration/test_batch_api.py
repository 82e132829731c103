"""Batch mode on real Postgres and Redis, with the real SDK against the simulator's batches."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from api.app import create_app
from api.deps import get_enqueuer
from tests.conftest import Services, clear_settings_caches
from tests.integration.test_api_auth import NoBroker, bearer, new_key
from tests.steps import complete_job
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.cost import BATCH_RATE, TokenCounts, cost_usd
from tierroute.domain.errors import PermanentProviderError
from tierroute.domain.specs import JobSpec
from tierroute.domain.status import BatchMode, JobStatus
from tierroute.pipeline.message_batches import poll_once, provider_batches_view, request_cancel, sdk
from tierroute.pipeline.steps import classify_job
from tierroute.runtime import Runtime, get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.ingest import copy_batch
from tierroute.store.jobs import batch_view
from tierroute.store.models import Job, ModelCall, ProviderBatch
from tierroute.store.report import build_report, format_report

pytestmark = pytest.mark.integration

PROMPTS = {
    "haiku": 'Format this JSON: {"name":"John","age":30}',
    "sonnet": "Write a Python function to merge two sorted lists into one sorted list",
    "opus": (
        "Review this distributed system architecture for scalability bottlenecks, "
        "consistency trade-offs, and failure modes: three API nodes, one Postgres primary."
    ),
}
Configure = Callable[..., Runtime]


@pytest.fixture
def configure(
    clean_db: Services, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Configure]:
    """A runtime with these TIERROUTE_* settings (llm classifier, poll gap ~0)."""
    sim.configure(batch_processing_s=0)

    def runtime(**settings: object) -> Runtime:
        values = {"classifier": "llm", "batch_api_poll_s": "0.001", **settings}
        for name, value in values.items():
            monkeypatch.setenv(f"TIERROUTE_{name.upper()}", str(value))
        clear_settings_caches()
        return get_runtime()

    yield runtime
    clear_settings_caches()


def submit(
    prompts: list[str], mode: BatchMode = BatchMode.BATCH_API, **fields: Any
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    with session_scope() as session:
        specs = [JobSpec(prompt=p, **fields) for p in prompts]
        batch_id, _ = copy_batch(session, specs, default_max_tokens=200, mode=mode)
    with session_scope() as session:
        ids = session.scalars(select(Job.id).where(Job.batch_id == batch_id)).all()
    return batch_id, list(ids)


def jobs(batch_id: uuid.UUID) -> list[Job]:
    with session_scope() as session:
        return list(session.scalars(select(Job).where(Job.batch_id == batch_id)))


def completions(batch_id: uuid.UUID) -> list[ModelCall]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(ModelCall)
                .join(Job, Job.id == ModelCall.job_id)
                .where(Job.batch_id == batch_id, ModelCall.purpose == "complete")
            )
        )


def classify_all(rt: Runtime, ids: list[uuid.UUID]) -> None:
    for job_id in ids:
        assert classify_job(rt, job_id) is None  # held for its Message Batch, not queued


def test_routed_jobs_go_in_one_message_batch_per_tier_at_half_price(
    configure: Configure, sim: RunningSimulator
) -> None:
    rt = configure()
    sim.configure(batch_processing_s=1.0)
    batch_id, ids = submit([PROMPTS[t] for t in ("haiku", "sonnet", "opus")] * 2)
    classify_all(rt, ids)
    assert {j.status for j in jobs(batch_id)} == {JobStatus.ROUTED}
    assert complete_job(rt, ids[0]) is None  # the complete task never takes a batch-mode job
    assert poll_once(rt).submitted == 3
    running = jobs(batch_id)
    assert {j.status for j in running} == {JobStatus.RUNNING}
    assert all(j.attempts == 1 and j.provider_batch_id is not None for j in running)
    with session_scope() as session:
        providers = provider_batches_view(session, batch_id)
    assert sorted(p["tier"] for p in providers) == ["haiku", "opus", "sonnet"]
    assert all(p["request_counts"]["processing"] == 2 for p in providers)
    assert all(p["processing_status"] == "in_progress" for p in providers)

    time.sleep(1.0)
    report = poll_once(rt)
    assert report.ended == 3 and report.submitted == 0
    done = jobs(batch_id)
    assert {j.status for j in done} == {JobStatus.SUCCEEDED}
    assert all(str(j.result_text).startswith("[simulated") for j in done)
    calls = completions(batch_id)
    assert len(calls) == 6 and all(c.batch_api for c in calls)
    for call in calls:
        tier = rt.tiers.get(call.tier)
        tokens = TokenCounts(call.input_tokens, call.output_tokens)
        assert call.cost_usd == BATCH_RATE * cost_usd(tokens, tier) > 0
        assert call.cost_if_opus_usd == BATCH_RATE * cost_usd(tokens, rt.tiers.top)
    with session_scope() as session:
        view = batch_view(session, batch_id)
        providers = provider_batches_view(session, batch_id)
        saved = session.execute(text("SELECT batch_api_savings_usd FROM savings")).scalar_one()
        built = build_report(session, rt.tiers)
    assert view["done"] and view["mode"] == "batch_api"
    assert all(p["processing_status"] == "ended" and p["results_processed"] for p in providers)
    assert all(p["request_counts"]["succeeded"] == 2 for p in providers)
    assert saved == sum(c.cost_usd for c in calls)  # the same calls live cost twice as much
    assert built["batch_api_calls"] == 6
    assert built["batch_api_savings_usd"] == pytest.approx(float(saved))
    assert "Batch API savings:" in format_report(built)
    assert poll_once(rt).ended == 0  # nothing left to do, nothing done twice
    assert len(completions(batch_id)) == 6


def test_a_batch_call_costs_half_the_same_call_live(configure: Configure) -> None:
    rt = configure()
    live_batch, live_ids = submit([PROMPTS["sonnet"]], BatchMode.LIVE, force_tier="sonnet")
    assert classify_job(rt, live_ids[0]) == "sonnet"
    assert complete_job(rt, live_ids[0]) is None
    batch_id, ids = submit([PROMPTS["sonnet"]], force_tier="sonnet")
    classify_all(rt, ids)
    poll_once(rt)
    poll_once(rt)
    (live,), (batched,) = completions(live_batch), completions(batch_id)
    assert (batched.input_tokens, batched.output_tokens) == (live.input_tokens, live.output_tokens)
    assert not live.batch_api and batched.batch_api
    assert batched.cost_usd == live.cost_usd / 2
    assert batched.cost_if_opus_usd == live.cost_if_opus_usd / 2


def test_nothing_is_submitted_until_every_job_of_the_batch_is_routed(
    configure: Configure,
) -> None:
    rt = configure()
    _, ids = submit([PROMPTS["haiku"]] * 3)
    classify_all(rt, ids[:2])
    assert poll_once(rt).submitted == 0
    classify_all(rt, ids[2:])
    assert poll_once(rt).submitted == 1


def test_a_batch_is_split_at_the_request_and_byte_limits(configure: Configure) -> None:
    rt = configure(batch_api_max_requests=2)
    batch_id, ids = submit([f"{PROMPTS['haiku']} #{n}" for n in range(5)], force_tier="haiku")
    classify_all(rt, ids)
    assert poll_once(rt).submitted == 3
    with session_scope() as session:
        sizes = sorted(p["requests"] for p in provider_batches_view(session, batch_id))
    assert sizes == [1, 2, 2]

    rt = configure(batch_api_max_requests=100, batch_api_max_bytes=4000)
    long_prompt = "Extract the names. " + "x" * 1500
    batch_id, ids = submit([f"{long_prompt} #{n}" for n in range(4)], force_tier="haiku")
    classify_all(rt, ids)
    assert poll_once(rt).submitted == 2  # about 1.6 kB a request: two fit in 4 kB
    poll_once(rt)
    assert {j.status for j in jobs(batch_id)} == {JobStatus.SUCCEEDED}


@pytest.mark.parametrize("policy", ["live", "fail"])
def test_errored_and_expired_requests_follow_the_failure_policy(
    configure: Configure, sim: RunningSimulator, policy: str
) -> None:
    rt = configure(batch_api_failure_policy=policy)
    sim.configure(batch_processing_s=0, batch_result_sequence=["errored", "expired"])
    batch_id, ids = submit([f"{PROMPTS['haiku']} #{n}" for n in range(3)], force_tier="haiku")
    classify_all(rt, ids)
    poll_once(rt)
    poll_once(rt)
    by_status: dict[str, list[Job]] = {}
    for job in jobs(batch_id):
        by_status.setdefault(job.status, []).append(job)
    assert len(by_status[JobStatus.SUCCEEDED]) == 1
    failed = by_status[JobStatus.QUEUED if policy == "live" else JobStatus.FAILED]
    errors = sorted(str(job.error) for job in failed)
    assert len(errors) == 2
    assert "errored: api_error: Simulated error in a batch request" in errors[0]
    assert "request expired" in errors[1]
    if policy == "fail":
        assert all(job.finished_at is not None for job in failed)
        return
    # Live: back to the feeder as live jobs that keep their tier; classify queues them.
    assert all(not job.batch_api and job.tier == "haiku" for job in failed)
    assert all("re-running live" in str(job.error) for job in failed)
    for job in failed:
        assert classify_job(rt, job.id) == "haiku"
        assert complete_job(rt, job.id) is None
    assert {j.status for j in jobs(batch_id)} == {JobStatus.SUCCEEDED}
    calls = completions(batch_id)
    assert sorted(c.batch_api for c in calls) == [False, False, True]
    haiku = rt.tiers.get("haiku")
    for call in (c for c in calls if not c.batch_api):
        assert call.cost_usd == cost_usd(TokenCounts(call.input_tokens, call.output_tokens), haiku)


def test_an_invalid_request_is_an_errored_result(configure: Configure) -> None:
    rt = configure(batch_api_failure_policy="fail")
    batch_id, ids = submit([PROMPTS["haiku"]], force_tier="haiku")
    classify_all(rt, ids)
    with session_scope() as session:
        # A temperature the API refuses (max_tokens beyond the model's is lowered by rule).
        session.execute(
            text(
                "UPDATE jobs SET request_params = '{\"temperature\": 5}',"
                ' thinking_override = \'{"request_params": true, "thinking": "none"}\''
                " WHERE batch_id = :b"
            ),
            {"b": batch_id},
        )
    poll_once(rt)
    poll_once(rt)
    (job,) = jobs(batch_id)
    assert job.status == JobStatus.FAILED
    assert "errored: invalid_request_error: temperature" in str(job.error)


def test_a_refused_message_batch_follows_the_failure_policy(
    configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = configure(batch_api_failure_policy="live")
    batch_id, ids = submit([PROMPTS["haiku"]] * 2, force_tier="haiku")
    classify_all(rt, ids)

    def refuse(client: object, requests: object) -> None:
        raise PermanentProviderError("HTTP 400: requests: too many")

    monkeypatch.setattr(sdk, "create", refuse)
    assert poll_once(rt).submitted == 0
    assert {(j.status, j.batch_api, j.tier) for j in jobs(batch_id)} == {
        (JobStatus.QUEUED, False, "haiku")
    }
    assert all("Message Batch refused" in str(j.error) for j in jobs(batch_id))


def test_two_pollers_submit_once_and_bill_once(configure: Configure) -> None:
    rt = configure()
    batch_id, ids = submit([f"{PROMPTS[t]} #{n}" for t in PROMPTS for n in range(4)])
    classify_all(rt, ids)

    def race() -> None:
        start = threading.Barrier(3)

        def poller() -> None:
            start.wait()
            poll_once(rt)

        threads = [threading.Thread(target=poller) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    race()  # submit
    race()  # apply results
    poll_once(rt)  # any a racing poller skipped
    with session_scope() as session:
        providers = session.scalar(select(func.count()).select_from(ProviderBatch))
    assert providers == 3
    assert {j.status for j in jobs(batch_id)} == {JobStatus.SUCCEEDED}
    assert len(completions(batch_id)) == len(ids)


def test_cancelling_the_batch_cancels_its_message_batches(
    configure: Configure, sim: RunningSimulator
) -> None:
    rt = configure()
    sim.configure(batch_processing_s=60)
    batch_id, ids = submit([PROMPTS["haiku"]] * 2, force_tier="haiku")
    classify_all(rt, ids)
    poll_once(rt)
    with session_scope() as session:
        assert request_cancel(session, batch_id) == 1
    poll_once(rt)  # cancels; the simulated batch ends at once
    poll_once(rt)
    assert {j.status for j in jobs(batch_id)} == {JobStatus.CANCELLED}
    with session_scope() as session:
        (provider,) = provider_batches_view(session, batch_id)
    assert provider["request_counts"]["canceled"] == 2 and provider["cancel_requested"]
    assert completions(batch_id) == []


def test_api_takes_the_mode_from_the_body_or_the_query(configure: Configure) -> None:
    configure()
    app = create_app()
    app.dependency_overrides[get_enqueuer] = NoBroker
    _, raw = new_key()
    with TestClient(app) as client:
        body = {"mode": "batch_api", "jobs": [{"prompt": "a"}, {"prompt": "b"}]}
        first = client.post("/v1/batches", json=body, headers=bearer(raw))
        assert first.status_code == 202, first.text
        ndjson = b'{"prompt": "a"}\n{"prompt": "b"}\n'
        headers = {**bearer(raw), "content-type": "application/x-ndjson"}
        second = client.post("/v1/batches?mode=batch_api", content=ndjson, headers=headers)
        live = client.post("/v1/batches", content=ndjson, headers=headers)
        clash = client.post("/v1/batches?mode=live", json=body, headers=bearer(raw))
        unknown = client.post("/v1/batches?mode=cheap", content=ndjson, headers=headers)
        view = client.get(f"/v1/batches/{first.json()['id']}", headers=bearer(raw)).json()
        with session_scope() as session:
            modes = {str(r[0]): r[1] for r in session.execute(text("SELECT id, mode FROM batches"))}
            flags = {
                row[0]: row[1]
                for row in session.execute(
                    text(
                        "SELECT b.mode, bool_and(j.batch_api) FROM jobs j "
                        "JOIN batches b ON b.id = j.batch_id GROUP BY b.mode"
                    )
                )
            }
    assert second.status_code == 202 and live.status_code == 202
    assert clash.status_code == 422 and "disagree" in clash.json()["detail"]
    assert unknown.status_code == 422 and "not a batch mode" in unknown.json()["detail"]
    assert view["mode"] == "batch_api" and view["provider_batches"] == []
    assert modes[first.json()["id"]] == "batch_api" and modes[second.json()["id"]] == "batch_api"
    assert modes[live.json()["id"]] == "live"
    assert flags == {"batch_api": True, "live": False}


def test_batch_costs_keep_the_report_honest(configure: Configure) -> None:
    """saved_usd compares like with like (both sides at the batch rate)."""
    rt = configure()
    batch_id, ids = submit([PROMPTS["haiku"]], force_tier="haiku")
    classify_all(rt, ids)
    poll_once(rt)
    poll_once(rt)
    (call,) = completions(batch_id)
    with session_scope() as session:
        report = build_report(session, rt.tiers)
    assert report["total_cost_usd"] == pytest.approx(float(call.cost_usd))
    assert report["cost_if_all_opus_usd"] == pytest.approx(5 * float(call.cost_usd))
    assert report["saved_usd"] == pytest.approx(4 * float(call.cost_usd))
    assert report["batch_api_savings_usd"] == pytest.approx(float(call.cost_usd))
    assert Decimal(str(report["saved_pct"])) == Decimal("80.0")
