"""A model call ends within its timeout, all of it, and so within the job's lease.

The SDK's timeout bounds each read, not the call: an answer that trickles in, each
piece well within the read timeout, used to run on past the timeout and past the
lease (timeout + 30 s), and another worker would claim the job and call again.
"""

from __future__ import annotations

from collections import Counter
from unittest import mock

import pytest

from tests.conftest import Services
from tests.integration.test_classify_batch import configure, load_job
from tests.integration.test_complete_many import complete_calls_by_job, routed_by_tier
from tests.steps import complete_job
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.status import JobStatus
from tierroute.pipeline.steps import RetryLater
from tierroute.runtime import Runtime
from worker import tasks

pytestmark = pytest.mark.integration

TIMEOUT_S = 1.0


@pytest.fixture
def rt(clean_db: Services, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.delenv("TIERROUTE_DAILY_BUDGET_USD", raising=False)
    return configure(monkeypatch, classifier="local", request_timeout_s=TIMEOUT_S)


@pytest.mark.parametrize("path", ["call loop", "one job"])
def test_an_answer_trickling_in_past_the_timeout_is_cut_off_and_retried(
    rt: Runtime, sim: RunningSimulator, path: str
) -> None:
    tier, [job_id, *_] = next(iter(routed_by_tier(rt, ["What is 2 + 2?"]).items()))
    # Every piece within the read timeout, the whole answer three times past it.
    sim.configure(trickle_s=3 * TIMEOUT_S)
    if path == "call loop":
        with mock.patch.object(tasks.complete, "apply_async") as retried:
            tasks.complete_many.run([str(job_id)], tier)
        retried.assert_called_once()
        assert retried.call_args.kwargs["args"] == [str(job_id)]
    else:
        assert isinstance(complete_job(rt, job_id), RetryLater)

    job = load_job(job_id)
    assert job.status == JobStatus.RUNNING  # released for its retry
    assert job.lease_expires_at is None
    assert job.error is not None and "timed out" in job.error
    assert complete_calls_by_job() == Counter()  # the late answer is not kept

    sim.configure(trickle_s=0)  # the retry gets its answer in time
    assert complete_job(rt, job_id) is None
    assert load_job(job_id).status == JobStatus.SUCCEEDED
    assert complete_calls_by_job() == Counter([job_id])
