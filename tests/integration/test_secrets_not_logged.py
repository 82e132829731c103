"""No Anthropic key appears in any log line, even with every logger at DEBUG."""

from __future__ import annotations

import logging
import uuid

import pytest

from tests.conftest import Services, clear_settings_caches
from tests.steps import complete_job
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.specs import JobSpec
from tierroute.pipeline.steps import classify_job
from tierroute.runtime import get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.jobs import create_job

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _llm_classifier(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests are about the Haiku classifier's call (billing, faults, limits,
    # logs); the default classifier is the local one, which makes no call.
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "llm")


SECRET = "sk-ant-api03-" + uuid.uuid4().hex  # the simulator accepts any key


def test_the_anthropic_key_is_never_logged(
    clean_db: Services,
    sim: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)  # a "real" key, still pointed at the simulator
    monkeypatch.setenv("ANTHROPIC_LOG", "debug")
    clear_settings_caches()
    caplog.set_level(logging.DEBUG)
    rt = get_runtime(role="test")
    assert rt.settings.simulated is False
    with session_scope() as session:
        job, _ = create_job(session, JobSpec(prompt="Format this JSON: {}"), default_max_tokens=64)
    sim.configure(fault_sequence=[200, 429], retry_after_s=1)  # an error path logs too
    assert classify_job(rt, job.id) == "haiku"
    assert complete_job(rt, job.id) is not None  # the 429
    logged = "\n".join(record.getMessage() for record in caplog.records)
    logged += "\n".join(str(record.args) for record in caplog.records)
    assert caplog.records, "expected DEBUG records from the SDK and tierroute"
    assert SECRET not in logged
    assert SECRET[-12:] not in logged  # not even a tail of it
