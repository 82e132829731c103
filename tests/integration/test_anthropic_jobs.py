"""Anthropic-shaped jobs through classify → complete on real Postgres and the simulator."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import Services, clear_settings_caches
from tests.steps import complete_job
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.specs import JobSpec
from tierroute.domain.status import JobStatus
from tierroute.pipeline.classify_chunk import classify_batch
from tierroute.pipeline.steps import classify_job
from tierroute.runtime import Runtime, get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.job_reads import read_job_view
from tierroute.store.jobs import create_job
from tierroute.store.models import Job

pytestmark = pytest.mark.integration

HARD = (
    "Review this distributed system architecture for scalability bottlenecks, "
    "consistency trade-offs, and failure modes: three API nodes, one Postgres primary, "
    "Redis for sessions, and a nightly batch that rebuilds the search index."
)
EASY = 'Format this JSON: {"name":"John","age":30}'


@pytest.fixture(autouse=True)
def _llm_classifier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "llm")


@pytest.fixture
def rt(clean_db: Services, sim: RunningSimulator) -> Runtime:
    return get_runtime()


def submit(body: dict[str, Any]) -> uuid.UUID:
    with session_scope() as session:
        job, _ = create_job(session, JobSpec.model_validate(body), default_max_tokens=256)
        return job.id


def run(rt: Runtime, job_id: uuid.UUID) -> dict[str, Any]:
    assert classify_job(rt, job_id) is not None
    assert complete_job(rt, job_id) is None
    return read_job_view(job_id)


def request_params(job_id: uuid.UUID) -> dict[str, Any]:
    with session_scope() as session:
        stored = session.scalar(select(Job.request_params).where(Job.id == job_id))
        assert stored is not None
        return stored


def test_a_multi_turn_request_is_answered_and_its_adaptations_kept(rt: Runtime) -> None:
    body = {
        "messages": [
            {"role": "user", "content": "Name a prime."},
            {"role": "assistant", "content": "7"},
            {"role": "user", "content": "Write a Python function to merge two sorted lists"},
        ],
        "system": "Be brief.",
        "temperature": 0.3,
        "force_tier": "sonnet",
        "custom_id": "q-1",
    }
    job_id = submit(body)
    view = run(rt, job_id)
    assert view["status"] == JobStatus.SUCCEEDED and view["tier"] == "sonnet"
    params = request_params(job_id)
    assert params["custom_id"] == "q-1" and len(params["messages"]) == 3
    assert params["adapted_for"] == "claude-sonnet-4-6"
    assert params["adaptations"] == [
        "thinking: the sonnet tier's default thinking is off, as temperature is set"
    ]


def test_structured_output_goes_to_the_model(rt: Runtime) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    body = {
        "prompt": "Pick a number",
        "output_config": {"format": {"type": "json_schema", "schema": schema}},
        "force_tier": "haiku",
    }
    view = run(rt, submit(body))
    assert view["status"] == JobStatus.SUCCEEDED
    # The simulator answers a json_schema format with JSON that follows it.
    assert '"n"' in view["result"]


def test_a_sticky_conversation_never_moves_down_a_tier(rt: Runtime) -> None:
    first = run(rt, submit({"prompt": HARD, "metadata": {"conversation_id": "conv-1"}}))
    assert first["tier"] == "opus"
    # The same easy follow-up: on its own it goes to haiku, in the conversation to opus.
    alone = run(rt, submit({"prompt": EASY}))
    assert alone["tier"] == "haiku"
    follow_up = {
        "messages": [
            {"role": "user", "content": HARD},
            {"role": "assistant", "content": "Here is the review."},
            {"role": "user", "content": EASY},
        ],
        "metadata": {"conversation_id": "conv-1"},
    }
    second = run(rt, submit(follow_up))
    assert second["tier"] == "opus"
    assert "Sticky" in second["routing"]["reasoning"]
    # Another conversation (or another key's) is not held up by this one.
    other = run(rt, submit({**follow_up, "metadata": {"conversation_id": "conv-2"}}))
    assert other["tier"] == "haiku"


def test_sticky_true_keys_a_conversation_by_its_opening(rt: Runtime) -> None:
    opening = {"role": "user", "content": HARD}
    first = run(rt, submit({"messages": [opening], "sticky": True}))
    assert first["tier"] == "opus"
    turns = [opening, {"role": "assistant", "content": "ok"}, {"role": "user", "content": EASY}]
    assert run(rt, submit({"messages": turns, "sticky": True}))["tier"] == "opus"


def test_a_tool_call_answer_keeps_its_blocks(rt: Runtime) -> None:
    tool = {
        "name": "lookup",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    body = {
        "prompt": "Weather in Rome?",
        "tools": [tool],
        "tool_choice": {"type": "tool", "name": "lookup"},
        "force_tier": "sonnet",
    }
    job_id = submit(body)
    view = run(rt, job_id)
    assert view["status"] == JobStatus.SUCCEEDED and view["stop_reason"] == "tool_use"
    blocks = request_params(job_id)["response_content"]
    call = next(block for block in blocks if block["type"] == "tool_use")
    assert call["name"] == "lookup" and isinstance(call["input"], dict)
    # A plain answer stores no blocks: its text is the whole answer.
    plain = submit({"prompt": "hello", "temperature": 0.5, "force_tier": "haiku"})
    run(rt, plain)
    assert "response_content" not in request_params(plain)


def test_a_chunk_routed_at_once_keeps_conversations_on_their_tier(
    clean_db: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The in-process classifier routes a feeder's chunk in one statement (classify_chunk).
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "local")
    clear_settings_caches()
    rt = get_runtime()
    assert rt.classifier.in_process
    first = submit({"prompt": HARD, "force_tier": "opus", "metadata": {"conversation_id": "k"}})
    assert classify_job(rt, first) == "opus"
    turns = [
        {"role": "user", "content": HARD},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": EASY},
    ]
    follow_up = submit({"messages": turns, "metadata": {"conversation_id": "k"}})
    alone = submit({"messages": turns})
    routing = classify_batch(rt, [follow_up, alone])
    tiers = dict(routing.hand_on)
    assert tiers[follow_up] == "opus"
    assert tiers[alone] != "opus"  # the same turns outside the conversation
