"""Bulk ingestion: a batch of up to 100,000 prompts in one COPY, all or nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import IO, Any, cast

import psycopg
from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.orm import Session

from tierroute.errors import InvalidInput
from tierroute.models import Batch, BatchMode, JobStatus
from tierroute.specs import JobSpec, parse_spec

MAX_BATCH = 100_000
COPY_SQL = (
    "COPY jobs (id, batch_id, api_key_id, status, batch_api, prompt, system, max_tokens,"
    " force_tier, thinking_override, metadata, attempts, created_at, updated_at) FROM STDIN"
)
# COPY's text format: backslash escapes for the characters that delimit it.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
NULL = "\\N"
FLUSH_BYTES = 1 << 20


def _field(value: str | None) -> str:
    return NULL if value is None else value.translate(_COPY_ESCAPES)


def _json_field(value: Any) -> str:
    return NULL if value is None else _field(json.dumps(value, separators=(",", ":")))


def ndjson_specs(lines: Iterable[bytes]) -> Iterator[JobSpec]:
    """Specs from NDJSON lines; a bad line raises InvalidInput with its number."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            # pydantic parses the JSON itself: one pass, in Rust.
            yield JobSpec.model_validate_json(line)
        except ValidationError as exc:
            first = exc.errors()[0]
            if first["type"] == "json_invalid":
                raise InvalidInput(f"line {number}", "not valid JSON") from None
            yield parse_spec(json.loads(line), f"line {number}")  # raises with the field


def json_array_specs(stream: IO[bytes]) -> Iterator[JobSpec]:
    """Specs from a JSON array body; a bad item raises InvalidInput with its position."""
    try:
        items = json.load(stream)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput("body", f"not valid JSON: {exc}") from None
    if not isinstance(items, list):
        raise InvalidInput("body", "expected a JSON array of jobs or NDJSON lines")
    for number, item in enumerate(items, start=1):
        yield parse_spec(item, f"item {number}")


def copy_batch(
    session: Session,
    specs: Iterable[JobSpec],
    *,
    default_max_tokens: int,
    api_key_id: uuid.UUID | None = None,
    mode: BatchMode = BatchMode.LIVE,
) -> tuple[uuid.UUID, int]:
    """Insert a batch and its jobs with COPY in the session's transaction.

    In `batch_api` mode the jobs are answered through Message Batches (tierroute/batchapi).

    Nothing is committed here: a bad spec raises mid-stream and the caller's
    rollback leaves no trace of the batch.
    """
    batch = Batch(id=uuid.uuid4(), api_key_id=api_key_id, job_count=0, mode=mode)
    session.add(batch)
    session.flush()
    now = datetime.now(UTC).isoformat()
    key = _field(str(api_key_id) if api_key_id else None)
    batch_api = "t" if mode == BatchMode.BATCH_API else "f"
    fixed_head = f"{batch.id}\t{key}\t{JobStatus.QUEUED}\t{batch_api}"
    # COPY needs psycopg's own connection: the one under this session's transaction.
    raw = cast("psycopg.Connection[Any]", session.connection().connection.driver_connection)
    count = 0
    buffer: list[str] = []
    size = 0
    with raw.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
        for spec in specs:
            count += 1
            if count > MAX_BATCH:
                raise InvalidInput("body", f"more than {MAX_BATCH} prompts in one batch")
            row = "\t".join(
                (
                    str(uuid.uuid4()),
                    fixed_head,
                    _field(spec.prompt),
                    _field(spec.system),
                    str(spec.max_tokens or default_max_tokens),
                    _field(spec.force_tier),  # type: ignore[arg-type]  # normalised to a name
                    _json_field(spec.thinking.as_dict() if spec.thinking else None),
                    _json_field(spec.metadata),
                    "0",
                    now,
                    now,
                )
            )
            buffer.append(row)
            size += len(row)
            if size >= FLUSH_BYTES:
                copy.write("\n".join(buffer) + "\n")
                buffer, size = [], 0
        if buffer:
            copy.write("\n".join(buffer) + "\n")
    if count == 0:
        raise InvalidInput("body", "empty batch")
    session.execute(update(Batch).where(Batch.id == batch.id).values(job_count=count))
    return batch.id, count
