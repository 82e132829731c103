"""What the broker holds: queue depth and memory, read from Redis itself."""

from __future__ import annotations

from dataclasses import dataclass

import redis

CLASSIFY_QUEUE = "classify"
PIPELINE_QUEUES = (CLASSIFY_QUEUE, "haiku", "sonnet", "opus")
# kombu's Redis transport keeps delivered, unacknowledged messages in this hash.
UNACKED_KEY = "unacked"


@dataclass(frozen=True)
class QueueSnapshot:
    """One reading of the broker."""

    used_memory: int
    depth: int
    unacked: int
    key_bytes: int

    def per_message(self, before: QueueSnapshot) -> tuple[int, float | None, float | None]:
        """Messages added since `before`, and bytes per message by INFO and by key."""
        added = (self.depth + self.unacked) - (before.depth + before.unacked)
        if added <= 0:
            return added, None, None
        by_info = (self.used_memory - before.used_memory) / added
        by_key = (self.key_bytes - before.key_bytes) / added
        return added, by_info, by_key


class QueueProbe:
    """Reads depth and memory of the pipeline's queues on one Redis database.

    Every queue counts: with an in-process classifier the classify worker moves jobs
    on to the tier queues at once, so the classify queue alone would undercount
    the messages Redis holds.
    """

    def __init__(self, broker_url: str, queues: tuple[str, ...] = PIPELINE_QUEUES) -> None:
        self.queues = queues
        self.client = redis.Redis.from_url(broker_url)

    def depth(self) -> int:
        """Messages waiting in the queues (LLEN)."""
        return sum(int(self.client.llen(queue)) for queue in self.queues)

    def snapshot(self) -> QueueSnapshot:
        """INFO used_memory (server-wide, so others' traffic is noise) and the keys' own size."""
        # MEMORY USAGE with SAMPLES 0 walks the whole list: exact, and only our keys.
        key_bytes = sum(
            int(self.client.execute_command("MEMORY", "USAGE", queue, "SAMPLES", "0") or 0)
            for queue in self.queues
        )
        return QueueSnapshot(
            used_memory=int(self.client.info("memory")["used_memory"]),
            depth=self.depth(),
            unacked=int(self.client.hlen(UNACKED_KEY)),
            key_bytes=key_bytes,
        )

    def close(self) -> None:
        self.client.close()
