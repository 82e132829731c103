"""A job's complete step in one call, for tests: claim, model call, finish.

A tier worker runs the same three steps apart, its call on an event loop
(worker/call_loop.py); here the call goes through the runtime's sync client, so a
test sees the outcome (None, or RetryLater) and any exception the steps raise.
"""

from __future__ import annotations

import uuid

from tierroute.domain.errors import ProviderError
from tierroute.domain.status import CallPurpose
from tierroute.llm.provider import CallResult, call_model
from tierroute.pipeline.steps import ClaimedCall, RetryLater, abandon_call, claim_call, finish_call
from tierroute.runtime import Runtime


def complete_job(rt: Runtime, job_id: uuid.UUID) -> RetryLater | None:
    """Answer a routed job on its tier; RetryLater when the task would retry."""
    claimed = claim_call(rt, job_id)
    if not isinstance(claimed, ClaimedCall):
        return claimed
    try:
        outcome: CallResult | ProviderError = call_model(
            rt.client,
            claimed.params,
            purpose=CallPurpose.COMPLETE,
            tiers=rt.tiers,
            simulated=rt.settings.simulated,
        )
    except ProviderError as exc:
        outcome = exc
    except BaseException:
        abandon_call(claimed)
        raise
    return finish_call(rt, claimed, outcome)
