"""The POST /v1/batches body: NDJSON, a JSON array, or an object with `jobs` and `mode`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO

from tierroute.domain.errors import InvalidInput
from tierroute.domain.json_array import ArrayError, object_summary
from tierroute.domain.specs import JobSpec
from tierroute.domain.status import BatchMode
from tierroute.store.ingest import MAX_ITEM_BYTES, json_array_specs, json_object_specs, ndjson_specs

OBJECT_KEYS = frozenset({"jobs", "mode"})


def parse_mode(value: object, where: str = "mode") -> BatchMode:
    """A batch mode from a client: 'live' or 'batch_api'."""
    try:
        return BatchMode(str(value))
    except ValueError:
        choices = ", ".join(mode.value for mode in BatchMode)
        raise InvalidInput(where, f"{value!r} is not a batch mode; use {choices}") from None


def resolve_mode(query: str | None, body: BatchMode | None) -> BatchMode:
    """The batch's mode from `?mode=` and the body's `mode`; they must agree when both are set."""
    from_query = parse_mode(query) if query is not None else None
    if from_query is not None and body is not None and from_query != body:
        raise InvalidInput("mode", f"?mode={from_query} and the body's mode {body} disagree")
    return from_query or body or BatchMode.LIVE


def _object_specs(
    members: dict[str, bytes], has_jobs: bool, body: IO[bytes]
) -> tuple[Iterator[JobSpec], BatchMode | None]:
    extra = sorted(set(members) - OBJECT_KEYS)
    if extra:
        raise InvalidInput(extra[0], "unknown field; a batch object has `jobs` and `mode`")
    if not has_jobs:
        raise InvalidInput("jobs", "must be an array of job objects")
    mode = None
    if "mode" in members:
        try:
            value = json.loads(members["mode"])
        except ValueError:
            raise InvalidInput("mode", "not valid JSON") from None
        mode = parse_mode(value) if value is not None else None
    return json_object_specs(body), mode


def read_batch_body(
    body: IO[bytes], content_type: str
) -> tuple[Iterator[JobSpec], BatchMode | None]:
    """The jobs of a batch body and the mode it names (None: not named)."""
    first = body.read(64).lstrip()
    body.seek(0)
    if "ndjson" not in content_type:
        if first.startswith(b"["):
            return json_array_specs(body), None
        if first.startswith(b"{"):
            # One JSON object with `jobs` or `mode` is the object form; NDJSON is more
            # than one object, or one without them. Checked in one pass that holds one
            # job at a time, then streamed in a second: `mode` may follow `jobs`, and a
            # batch's mode is set before its first row.
            try:
                members, has_jobs = object_summary(body, "jobs", MAX_ITEM_BYTES)
            except ArrayError:
                members, has_jobs = {}, False  # not one JSON object: NDJSON names the bad line
            body.seek(0)
            if has_jobs or members.keys() & OBJECT_KEYS:
                return _object_specs(members, has_jobs, body)
    return ndjson_specs(body), None
