"""The POST /v1/batches body: NDJSON, a JSON array, or an object with `jobs` and `mode`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from tierroute.errors import InvalidInput
from tierroute.ingest import json_array_specs, ndjson_specs
from tierroute.models import BatchMode
from tierroute.specs import JobSpec, parse_spec

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


def _first_line_is_a_job(body: IO[bytes]) -> bool:
    # NDJSON's first line is a whole job object; an object body's first line is not
    # (pretty-printed) or has `jobs` (one line).
    line = body.readline()
    body.seek(0)
    try:
        item = json.loads(line)
    except ValueError:
        return False
    return isinstance(item, dict) and "jobs" not in item


def _object_specs(item: dict[str, Any]) -> tuple[Iterator[JobSpec], BatchMode | None]:
    extra = sorted(set(item) - OBJECT_KEYS)
    if extra:
        raise InvalidInput(extra[0], "unknown field; a batch object has `jobs` and `mode`")
    jobs = item.get("jobs")
    if not isinstance(jobs, list):
        raise InvalidInput("jobs", "must be an array of job objects")
    mode = parse_mode(item["mode"]) if item.get("mode") is not None else None
    specs = (parse_spec(job, f"jobs item {n}") for n, job in enumerate(jobs, start=1))
    return specs, mode


def read_batch_body(
    body: IO[bytes], content_type: str
) -> tuple[Iterator[JobSpec], BatchMode | None]:
    """The jobs of a batch body and the mode it names (None: not named)."""
    first = body.read(64).lstrip()
    body.seek(0)
    if "ndjson" not in content_type:
        if first.startswith(b"["):
            return json_array_specs(body), None
        if first.startswith(b"{") and not _first_line_is_a_job(body):
            try:
                item = json.load(body)
            except (ValueError, UnicodeDecodeError):
                body.seek(0)  # not one JSON object: NDJSON names the bad line
            else:
                if isinstance(item, dict):
                    return _object_specs(item)
                body.seek(0)
    return ndjson_specs(body), None
