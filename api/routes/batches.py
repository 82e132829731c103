"""/v1/batches: many prompts at once (JSON array or NDJSON), status and results."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from api.deps import get_enqueuer, get_rt, parse_id
from api.queue import Enqueuer
from api.schemas import BatchAccepted
from tierroute.db import session_scope
from tierroute.errors import InvalidInput
from tierroute.jobs import batch_results, batch_view, create_batch
from tierroute.runtime import Runtime
from tierroute.specs import JobSpec, parse_spec

router = APIRouter(prefix="/v1/batches", tags=["batches"])

MAX_BATCH = 100_000


def parse_batch_body(body: bytes, content_type: str) -> list[JobSpec]:
    """Read a JSON array or NDJSON body into specs; a bad line is named by its number."""
    text = body.decode("utf-8", errors="strict")
    stripped = text.lstrip()
    if not stripped:
        raise InvalidInput("body", "empty batch")
    if stripped.startswith("[") and "ndjson" not in content_type:
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput("body", f"not valid JSON: {exc.msg} at char {exc.pos}") from None
        numbered = list(enumerate(items, start=1))
        label = "item"
    else:
        numbered = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                numbered.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"line {number}", f"not valid JSON: {exc.msg}") from None
        label = "line"
    if len(numbered) > MAX_BATCH:
        raise InvalidInput("body", f"{len(numbered)} prompts; a batch holds at most {MAX_BATCH}")
    if not numbered:
        raise InvalidInput("body", "empty batch")
    return [parse_spec(item, f"{label} {number}") for number, item in numbered]


@router.post("", status_code=202, response_model=BatchAccepted)
async def submit_batch(
    request: Request,
    rt: Annotated[Runtime, Depends(get_rt)],
    enqueuer: Annotated[Enqueuer, Depends(get_enqueuer)],
) -> BatchAccepted:
    """Accept many prompts as a JSON array or NDJSON (one JSON object per line)."""
    body = await request.body()
    specs = parse_batch_body(body, request.headers.get("content-type", ""))

    def store() -> tuple[str, list[Any]]:
        with session_scope() as session:
            batch, ids = create_batch(
                session, specs, default_max_tokens=rt.settings.default_max_tokens
            )
            return str(batch.id), ids

    batch_id, ids = await run_in_threadpool(store)
    await run_in_threadpool(enqueuer.classify, ids)
    return BatchAccepted(id=batch_id, count=len(ids))


@router.get("/{batch_id}")
def read_batch(batch_id: str) -> dict[str, Any]:
    """Counts by status, cost so far, and progress."""
    with session_scope() as session:
        return batch_view(session, parse_id("batch", batch_id))


@router.get("/{batch_id}/results")
def read_batch_results(batch_id: str) -> StreamingResponse:
    """Finished jobs of a batch as NDJSON, streamed."""
    parsed = parse_id("batch", batch_id)
    with session_scope() as session:
        batch_view(session, parsed)  # 404 before the stream starts

    def lines() -> Iterator[bytes]:
        with session_scope() as session:
            for view in batch_results(session, parsed):
                yield (json.dumps(view) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")
