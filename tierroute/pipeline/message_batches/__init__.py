"""Batch mode: a batch's jobs, once routed, answered through Anthropic's Message Batches.

Jobs are classified as live jobs are. The classify step then leaves a batch-mode
job `routed` instead of queueing it on its tier; once every job of the batch is routed, the
poller submits one Message Batch per tier (split at 100,000 requests or 256 MB),
polls them, and maps the results back by custom_id (the job id). Calls are billed
at the 50 % batch rate. Errored, expired and cancelled requests follow
TIERROUTE_BATCH_API_FAILURE_POLICY: re-run live on the tier, or fail with the reason.
"""

from tierroute.pipeline.message_batches.body import read_batch_body, resolve_mode
from tierroute.pipeline.message_batches.poller import PollReport, poll_once
from tierroute.pipeline.message_batches.views import provider_batches_view, request_cancel

__all__ = [
    "PollReport",
    "poll_once",
    "provider_batches_view",
    "read_batch_body",
    "request_cancel",
    "resolve_mode",
]
