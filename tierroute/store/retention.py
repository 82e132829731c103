"""Retention: export finished jobs older than a cutoff, with their calls, then delete them.

What goes: jobs that finished (succeeded, failed, dead, cancelled) and were both
created and finished before the cutoff, with their routing decision, model calls,
ratings and shadow verdict (ON DELETE CASCADE), and /v1/route classifier calls
(no job) billed before it. Nothing in flight is touched, and a job a worker holds
locked is skipped (SKIP LOCKED) for a later run.

Month partitions of model_calls and routing_decisions (migration 0017) that end
before the cutoff and are left empty are then dropped, not left to vacuum.

What stays: the rollups (migrations 0009, 0016), folded before the first chunk and
never subtracted from by deletes, so the report, dashboard, /metrics and the analyst
views still count the pruned spend; batches and API keys. A pruned job's row in
`rollup_job_contrib` goes with it: the job can no longer change what it added.

It deletes in chunks of `chunk` jobs, each its own short transaction with a lock
timeout, so the pipeline's writers never wait long behind it, and it paces itself:
after a chunk it sleeps so that deleting takes at most `busy_share` of the wall time
(half by default), since the chunks compete with the pipeline for the same cores. With an archive
directory, each chunk is first appended to gzip-compressed JSONL files (one JSON
object a line, as Postgres's to_jsonb writes the row: exact numerics, ISO times).
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.orm import Session

from tierroute.domain.status import FINISHED
from tierroute.store import partitions
from tierroute.store.rollups import fold, start_of_day

_FINISHED = ", ".join(f"'{status}'" for status in sorted(FINISHED))
PICK_JOBS = f"""
    SELECT id FROM jobs
     WHERE created_at < :cutoff AND status IN ({_FINISHED})
       AND coalesce(finished_at, created_at) < :cutoff
     ORDER BY created_at
     LIMIT :chunk
       FOR UPDATE SKIP LOCKED
"""
EXPORT_JOBS = """
    SELECT (to_jsonb(j) || jsonb_build_object(
               'routing', (SELECT to_jsonb(d) - 'job_id' FROM routing_decisions d
                            WHERE d.job_id = j.id),
               'ratings', (SELECT jsonb_agg(to_jsonb(r) - 'job_id' ORDER BY r.id)
                             FROM ratings r WHERE r.job_id = j.id)))::text
      FROM jobs j WHERE j.id = ANY(:ids)
"""
EXPORT_CALLS = "SELECT to_jsonb(c)::text FROM model_calls c WHERE c.job_id = ANY(:ids)"
DELETE_JOB_CALLS = "DELETE FROM model_calls WHERE job_id = ANY(:ids)"
DELETE_JOBS = "DELETE FROM jobs WHERE id = ANY(:ids)"
DELETE_JOB_CONTRIBUTIONS = "DELETE FROM rollup_job_contrib WHERE job_id = ANY(:ids)"
PICK_JOBLESS_CALLS = """
    SELECT id FROM model_calls
     WHERE job_id IS NULL AND created_at < :cutoff
     ORDER BY created_at LIMIT :chunk FOR UPDATE SKIP LOCKED
"""
EXPORT_CALLS_BY_ID = "SELECT to_jsonb(c)::text FROM model_calls c WHERE c.id = ANY(:ids)"
DELETE_CALLS = "DELETE FROM model_calls WHERE id = ANY(:ids)"
MARK_PRUNED = """
    INSERT INTO rollup_state (id, pruned_before) VALUES (1, :cutoff)
    ON CONFLICT (id) DO UPDATE
       SET pruned_before = greatest(rollup_state.pruned_before, EXCLUDED.pruned_before)
"""


@dataclass
class PruneResult:
    """What one prune did."""

    cutoff: datetime
    jobs: int = 0
    calls: int = 0
    chunks: int = 0
    seconds: float = 0.0
    archive: list[str] = field(default_factory=list)
    # Month partitions of model_calls and routing_decisions left empty and dropped.
    partitions_dropped: list[str] = field(default_factory=list)


class _Archive:
    """The run's gzip JSONL files (jobs, calls), each opened on its first write."""

    def __init__(self, directory: Path | None, stamp: str) -> None:
        self._dir = directory
        self._stamp = stamp
        self._files: dict[str, IO[str]] = {}
        self._open = ExitStack()
        self.paths: list[str] = []

    def write(self, kind: str, lines: list[str]) -> None:
        if self._dir is None or not lines:
            return
        out = self._files.get(kind)
        if out is None:
            self._dir.mkdir(parents=True, exist_ok=True)
            path = self._dir / f"{kind}-{self._stamp}.jsonl.gz"
            opened = gzip.open(path, "at", encoding="utf-8")  # noqa: SIM115 (closed by close())
            out = self._open.enter_context(opened)
            self._files[kind] = out
            self.paths.append(str(path))
        out.write("\n".join(lines) + "\n")
        out.flush()  # on disk before the rows' delete commits

    def close(self) -> None:
        self._open.close()


def prune(
    session_scope: Callable[[], AbstractContextManager[Session]],
    cutoff: datetime,
    *,
    archive_dir: Path | None = None,
    chunk: int = 1_000,
    pause_s: float = 0.05,
    busy_share: float = 0.5,
    lock_timeout_ms: int = 2_000,
) -> PruneResult:
    """Export (when `archive_dir` is given) and delete rows older than `cutoff`.

    The cutoff is taken back to its UTC midnight: rollups older than two days are
    one row per day, and a rebuild redoes whole days from the raw rows.
    """
    cutoff = start_of_day(cutoff)
    started = time.monotonic()
    result = PruneResult(cutoff=cutoff)
    archive = _Archive(archive_dir, datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    params = {"cutoff": cutoff, "chunk": chunk}
    with session_scope() as session:  # what the rows to delete added is in the rollups
        fold(session)
    try:
        for pick in (PICK_JOBS, PICK_JOBLESS_CALLS):
            while True:
                chunk_started = time.monotonic()
                done = _chunk(session_scope, pick, params, archive, lock_timeout_ms)
                if done is None:
                    break
                result.jobs += done[0]
                result.calls += done[1]
                result.chunks += 1
                # Room for the pipeline's writers between chunks.
                time.sleep(pause_after(time.monotonic() - chunk_started, busy_share, pause_s))
        with session_scope() as session:
            session.execute(text(MARK_PRUNED), {"cutoff": cutoff})
        with session_scope() as session:
            result.partitions_dropped = partitions.drop_empty(session, cutoff)
    finally:
        archive.close()
    result.archive = archive.paths
    result.seconds = time.monotonic() - started
    return result


def pause_after(chunk_s: float, busy_share: float, min_pause_s: float) -> float:
    """Seconds to sleep after a chunk that took `chunk_s`, so that chunks take at most
    `busy_share` (0 < share <= 1) of the wall time; never less than `min_pause_s`."""
    if not 0 < busy_share <= 1:
        raise ValueError(f"busy_share must be in (0, 1], got {busy_share}")
    return max(min_pause_s, chunk_s * (1 - busy_share) / busy_share)


def _chunk(
    session_scope: Callable[[], AbstractContextManager[Session]],
    pick: str,
    params: dict[str, object],
    archive: _Archive,
    lock_timeout_ms: int,
) -> tuple[int, int] | None:
    """One transaction: pick rows, archive them, delete them; (jobs, calls) or None if done."""
    jobs = pick == PICK_JOBS
    with session_scope() as session:
        # A writer holding a row this chunk needs makes the chunk give up, not wait.
        session.execute(text(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}"))
        ids = list(session.execute(text(pick), params).scalars())
        if not ids:
            return None
        by_id = {"ids": ids}
        if jobs:
            archive.write("jobs", list(session.execute(text(EXPORT_JOBS), by_id).scalars()))
        calls_sql = EXPORT_CALLS if jobs else EXPORT_CALLS_BY_ID
        archive.write("calls", list(session.execute(text(calls_sql), by_id).scalars()))
        calls = session.execute(text(DELETE_JOB_CALLS if jobs else DELETE_CALLS), by_id)
        if jobs:
            session.execute(text(DELETE_JOBS), by_id)
            session.execute(text(DELETE_JOB_CONTRIBUTIONS), by_id)
        return (len(ids) if jobs else 0), int(calls.rowcount)  # type: ignore[attr-defined]
