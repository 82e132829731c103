"""A Message Batch answer Postgres refuses (a NUL character) fails its job, billed once.

Before, the refused answer rolled back the poll's whole transaction: no result of
that Message Batch was ever applied, and every poll tried again, for ever.
"""

from __future__ import annotations

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
from tierroute.domain.status import JobStatus
from tierroute.pipeline.message_batches import poll_once

pytestmark = pytest.mark.integration

__all__ = ["configure"]  # the fixture, shared with test_batch_api


def test_an_answer_postgres_refuses_fails_its_job_and_the_rest_apply(
    configure: Configure, sim: RunningSimulator
) -> None:
    rt = configure()
    haiku_batch, haiku_ids = submit([f"{PROMPTS['haiku']} #{n}" for n in range(2)], force_tier=1)
    opus_batch, opus_ids = submit([f"{PROMPTS['opus']} #{n}" for n in range(2)], force_tier=3)
    classify_all(rt, haiku_ids + opus_ids)
    sim.configure(answer_fault="nul_byte", fault_models=[rt.tiers.get("haiku").model])
    report = poll_once(rt)  # submitted, ended at once (batch_processing_s=0), applied
    assert report.submitted == 2 and report.ended == 2
    refused = jobs(haiku_batch)
    assert {j.status for j in refused} == {JobStatus.FAILED}
    assert all("could not be stored" in str(j.error) for j in refused)
    assert len(completions(haiku_batch)) == len(haiku_ids)  # billed, once
    assert {j.status for j in jobs(opus_batch)} == {JobStatus.SUCCEEDED}
    assert poll_once(rt).ended == 0  # nothing left to apply
    assert len(completions(haiku_batch)) == len(haiku_ids)
