"""A Message Batch create that timed out after Anthropic accepted it is not created again.

Before, the next poll simply created the batch anew: every request ran and was
billed twice. Now the next poll looks for the accepted batch first and adopts it.
"""

from __future__ import annotations

import time

import pytest

from tests.integration.test_batch_api import (
    PROMPTS,
    Configure,
    classify_all,
    completions,
    configure,
    jobs,
    submit,
)
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.errors import RetryableProviderError
from tierroute.domain.status import JobStatus
from tierroute.pipeline.message_batches import poll_once, sdk
from tierroute.runtime import Runtime

pytestmark = pytest.mark.integration

__all__ = ["configure"]  # the fixture, shared with test_batch_api

PROCESSING_S = 1.0


def batch_ids(rt: Runtime) -> set[str]:
    """Ids of every Message Batch the simulator holds (the list endpoint)."""
    return {b.id for b in rt.client.messages.batches.list(limit=1000)}


def batches_created_since(rt: Runtime, before: set[str]) -> list[str]:
    """Ids of the Message Batches created since `before` was taken.

    By id, not by time: other tests share the session's simulator, and their batches
    can be created within the same second.
    """
    return sorted(batch_ids(rt) - before)


def test_a_create_accepted_but_unanswered_is_found_not_made_twice(
    configure: Configure, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = configure()
    began = batch_ids(rt)
    batch_id, ids = submit([f"{PROMPTS['haiku']} #{n}" for n in range(3)], force_tier="haiku")
    classify_all(rt, ids)

    # Accepted by the API, answered only after our client gave up.
    sim.configure(
        batch_processing_s=PROCESSING_S, batch_create_fault="hang_after_accept", timeout_sleep_s=5
    )
    monkeypatch.setattr(sdk, "TRANSFER_TIMEOUT_S", 0.5)
    assert poll_once(rt).submitted == 0
    assert {j.status for j in jobs(batch_id)} == {JobStatus.ROUTED}
    [accepted] = batches_created_since(rt, began)

    sim.configure(batch_create_fault=None)
    monkeypatch.undo()
    # The accepted batch still runs: wait for it rather than create another.
    submitted = poll_once(rt).submitted
    assert batches_created_since(rt, began) == [accepted], "the batch was created twice"
    assert submitted == 0
    assert all("Message Batch create unanswered" in str(j.error) for j in jobs(batch_id))
    time.sleep(PROCESSING_S)
    # It has ended and its results are this chunk's: adopted, and its results applied.
    report = poll_once(rt)
    assert report.submitted == 1 and report.ended == 1
    assert batches_created_since(rt, began) == [accepted]
    assert {j.status for j in jobs(batch_id)} == {JobStatus.SUCCEEDED}
    assert len(completions(batch_id)) == len(ids)  # each request billed once


def test_a_create_never_accepted_is_made_on_the_next_poll(
    configure: Configure, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = configure()
    began = batch_ids(rt)
    batch_id, ids = submit([f"{PROMPTS['haiku']} #{n}" for n in range(2)], force_tier="haiku")
    classify_all(rt, ids)
    sim.configure(batch_processing_s=0, fault_sequence=[])
    monkeypatch.setattr(sdk, "create", _refused_connection)
    assert poll_once(rt).submitted == 0
    monkeypatch.undo()
    assert batches_created_since(rt, began) == []

    assert poll_once(rt).submitted == 1  # nothing to find: created now
    poll_once(rt)
    assert len(batches_created_since(rt, began)) == 1
    assert {j.status for j in jobs(batch_id)} == {JobStatus.SUCCEEDED}
    assert len(completions(batch_id)) == len(ids)


def _refused_connection(client: object, requests: object) -> object:
    raise RetryableProviderError("create message batch: connection failed: refused")
