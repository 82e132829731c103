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

from tierroute.domain.anthropic_batch import (
    batch_line_spec_from_json,
    is_batch_line,
    spec_from_batch_line,
)
from tierroute.domain.errors import InvalidInput
from tierroute.domain.ids import uuid7
from tierroute.domain.json_array import ArrayError, array_items, object_array_items
from tierroute.domain.specs import JobSpec, parse_spec
from tierroute.domain.status import BatchMode, JobStatus
from tierroute.domain.tiers import active_tier_table
from tierroute.store.models import Batch

MAX_BATCH = 100_000
# Blank lines are skipped, but each costs a turn of the loop inside the open COPY:
# a megabyte of gzip holds a billion of them. As many as prompts is plenty.
MAX_BLANK_LINES = MAX_BATCH
# One NDJSON line, like one POST /v1/jobs body: a prompt and a system of 800,000
# characters each at up to 4 bytes in UTF-8, plus metadata. Lines are read at most
# this long, so one endless line cannot fill memory.
MAX_ITEM_BYTES = 8 << 20
COPY_SQL = (
    "COPY jobs (id, batch_id, api_key_id, status, batch_api, prompt, system, max_tokens,"
    " force_tier, thinking_override, metadata, attempts, created_at, updated_at,"
    " request_params) FROM STDIN"
)
# COPY's text format: backslash escapes for the characters that delimit it.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
NULL = "\\N"
FLUSH_BYTES = 1 << 20


def _field(value: str | None) -> str:
    return NULL if value is None else value.translate(_COPY_ESCAPES)


# One encoder for every row: json.dumps with any option builds a new encoder per call,
# a few microseconds on each of 100,000 request_params values.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def _json_field(value: Any) -> str:
    return NULL if value is None else _field(_COMPACT_JSON.encode(value))


def _bounded_lines(source: Iterable[bytes]) -> Iterator[bytes]:
    readline = getattr(source, "readline", None)
    if readline is None:  # a list of lines, already in memory
        yield from source
        return
    while line := readline(MAX_ITEM_BYTES + 1):
        yield line


def _spec_from_json(raw: bytes, where: str) -> JobSpec:
    if b'"custom_id"' in raw and b'"params"' in raw:
        # Perhaps a Message Batches request line; a job with those fields is refused below.
        spec = batch_line_spec_from_json(raw, active_tier_table())
        if spec is not None:
            return spec
        item = _loads(raw, where)
        if is_batch_line(item):
            return spec_from_batch_line(item, active_tier_table(), where)
    try:
        # pydantic parses the JSON itself: one pass, in Rust.
        return JobSpec.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            # The parser counts lines within the item: "column 38" is all it can say.
            why = str(first.get("ctx", {}).get("error", "")).replace("line 1 column", "column")
            raise InvalidInput(where, f"not valid JSON: {why}".rstrip(": ")) from None
        return parse_spec(json.loads(raw), where)  # raises with the field


def _loads(raw: bytes, where: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(where, f"not valid JSON: {exc}") from None


def ndjson_specs(lines: Iterable[bytes]) -> Iterator[JobSpec]:
    """Specs from NDJSON lines; a bad line raises InvalidInput with its number."""
    blank = 0
    for number, line in enumerate(_bounded_lines(lines), start=1):
        if len(line) > MAX_ITEM_BYTES:
            raise InvalidInput(f"line {number}", f"longer than {MAX_ITEM_BYTES >> 20} MiB")
        if not line.strip():
            blank += 1
            if blank > MAX_BLANK_LINES:
                raise InvalidInput("body", f"more than {MAX_BLANK_LINES} blank lines")
            continue
        yield _spec_from_json(line, f"line {number}")


def json_array_specs(stream: IO[bytes]) -> Iterator[JobSpec]:
    """Specs from a JSON array body, parsed item by item as the caller takes them;
    a bad item raises InvalidInput with its position."""
    # Streamed, so a batch over MAX_BATCH is refused at item MAX_BATCH + 1 (in
    # copy_batch), not after parsing millions of items; each item is parsed as an
    # NDJSON line is, so both say the same about the same job.
    items = array_items(stream, MAX_ITEM_BYTES)
    try:
        for number, raw in enumerate(items, start=1):
            yield _spec_from_json(raw, f"item {number}")
    except ArrayError as exc:
        raise InvalidInput("body", f"not valid JSON: {exc}") from None


def json_object_specs(stream: IO[bytes]) -> Iterator[JobSpec]:
    """Specs from the `jobs` array of a `{"jobs": [...], ...}` body, item by item; the
    object's shape has been checked already (object_summary)."""
    items = object_array_items(stream, "jobs", MAX_ITEM_BYTES)
    try:
        for number, raw in enumerate(items, start=1):
            yield _spec_from_json(raw, f"jobs item {number}")
    except ArrayError as exc:
        raise InvalidInput("body", f"not valid JSON: {exc}") from None


def copy_batch(
    session: Session,
    specs: Iterable[JobSpec],
    *,
    default_max_tokens: int,
    api_key_id: uuid.UUID | None = None,
    mode: BatchMode = BatchMode.LIVE,
) -> tuple[uuid.UUID, int]:
    """Insert a batch and its jobs with COPY in the session's transaction.

    In `batch_api` mode the jobs are answered through Message Batches (pipeline/message_batches).

    Nothing is committed here: a bad spec raises mid-stream and the caller's
    rollback leaves no trace of the batch.
    """
    batch = Batch(id=uuid7(), api_key_id=api_key_id, job_count=0, mode=mode)
    session.add(batch)
    session.flush()
    now = datetime.now(UTC).isoformat()
    key = _field(str(api_key_id) if api_key_id else None)
    batch_api = "t" if mode == BatchMode.BATCH_API else "f"
    fixed_head = f"{batch.id}\t{key}\t{JobStatus.QUEUED}\t{batch_api}"
    # COPY needs psycopg's own connection: the one under this session's transaction.
    raw = cast("psycopg.Connection[Any]", session.connection().connection.driver_connection)
    count = 0
    custom_ids: set[str] = set()
    buffer: list[str] = []
    size = 0
    with raw.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
        for spec in specs:
            count += 1
            if count > MAX_BATCH:
                raise InvalidInput("body", f"more than {MAX_BATCH} prompts in one batch")
            if spec.custom_id is not None:
                # Results are keyed by custom_id, as in Anthropic's Message Batches.
                if spec.custom_id in custom_ids:
                    raise InvalidInput(
                        f"job {count}", f"custom_id {spec.custom_id!r} is used twice"
                    )
                custom_ids.add(spec.custom_id)
            stored = spec.stored()
            row = "\t".join(
                (
                    str(uuid7()),
                    fixed_head,
                    _field(stored.prompt),
                    _field(stored.system),
                    str(spec.max_tokens or default_max_tokens),
                    _field(spec.force_tier),  # type: ignore[arg-type]  # normalised to a name
                    _json_field(stored.thinking_override),
                    _json_field(spec.metadata),
                    "0",
                    now,
                    now,
                    _json_field(stored.request_params),
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
