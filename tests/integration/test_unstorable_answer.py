"""An answer Postgres refuses to store (a NUL character in it) fails its job, billed once.

Before, the error was logged and the job stayed `running`; once its lease ran out
the stale-route watch sent it again, and every new call was paid for and refused alike.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.conftest import Services
from tests.integration.test_classify_batch import load_job
from tests.integration.test_complete_many import complete_calls_by_job, routed_by_tier, rt
from tests.steps import complete_job
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.status import JobStatus
from tierroute.pipeline.recovery import StaleRouteWatch
from tierroute.runtime import Runtime
from worker import tasks

pytestmark = pytest.mark.integration

__all__ = ["rt"]  # the fixture, shared with test_complete_many

PROMPTS = ["Convert 5 kilometres to miles.", "What is the capital of France?"]


@pytest.mark.parametrize("path", ["call loop", "one job"])
def test_an_answer_postgres_refuses_fails_the_job_with_its_bill_kept(
    rt: Runtime, sim: RunningSimulator, clean_db: Services, path: str
) -> None:
    tier, ids = next(iter(routed_by_tier(rt, PROMPTS).items()))
    sim.configure(answer_fault="nul_byte")
    if path == "call loop":
        tasks.complete_many.run([str(job_id) for job_id in ids], tier)
    else:
        for job_id in ids:
            assert complete_job(rt, job_id) is None

    for job_id in ids:
        job = load_job(job_id)
        assert job.status == JobStatus.FAILED
        assert job.error is not None and "could not be stored" in job.error
        assert job.lease_expires_at is None
    assert complete_calls_by_job() == Counter(ids)  # billed once, and the bill is kept

    # Nothing sends it again: no stale-route re-send, and a redelivery calls nobody.
    sent: list[object] = []
    assert StaleRouteWatch(sent.extend, after_s=0.001, interval_s=0).check() == 0
    tasks.complete_many.run([str(job_id) for job_id in ids], tier)
    assert complete_calls_by_job() == Counter(ids)
