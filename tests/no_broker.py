"""An enqueuer for API tests that need no broker: it swallows every send."""

from __future__ import annotations

import uuid
from collections.abc import Iterable


class NoBroker:
    """Stands in for api.queue.Enqueuer: nothing is sent, so nothing runs the jobs."""

    def classify(self, job_ids: Iterable[uuid.UUID]) -> int:
        return len(list(job_ids))

    def ping(self) -> None:
        pass

    def close(self) -> None:
        pass
