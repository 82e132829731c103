"""Simulated Message Batches: create, list, retrieve, cancel and a JSONL results file.

Each request is answered at creation exactly as /v1/messages would answer it (same
text, usage and prompt cache), with `service_tier: "batch"`; a request that fails
validation is an `errored` result. The batch reports `in_progress` until
`batch_processing_s` has passed, then `ended` with its request counts.
`batch_result_sequence` injects errored, expired or canceled results.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tierroute.devstack.simulator.cache import PromptCache, apply_to_usage
from tierroute.devstack.simulator.faults import error_response, wait_unless_disconnected
from tierroute.devstack.simulator.reply import build_reply, message_body
from tierroute.devstack.simulator.state import SimulatorState
from tierroute.devstack.simulator.tokens import count_input_tokens
from tierroute.devstack.simulator.validation import InvalidRequest, validate_request

MAX_REQUESTS = 100_000
MAX_BODY_BYTES = 256_000_000
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
EXPIRY = timedelta(hours=24)
OUTCOMES = ("succeeded", "errored", "canceled", "expired")


def _rfc3339(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


@dataclass
class SimBatch:
    """One Message Batch and its precomputed results."""

    id: str
    created_at: datetime
    ends_at: float  # monotonic
    results: list[dict[str, Any]]
    cancel_initiated_at: datetime | None = None
    ended_at: datetime | None = None

    def status(self, now: float) -> str:
        if self.ended_at is None and now >= self.ends_at:
            self.ended_at = datetime.now(UTC)
        if self.ended_at is not None:
            return "ended"
        return "canceling" if self.cancel_initiated_at is not None else "in_progress"

    def body(self, base_url: str, now: float) -> dict[str, Any]:
        status = self.status(now)
        counts = dict.fromkeys(OUTCOMES, 0)
        if status == "ended":
            for line in self.results:
                counts[line["result"]["type"]] += 1
        processing = 0 if status == "ended" else len(self.results)
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": {"processing": processing, **counts},
            "created_at": _rfc3339(self.created_at),
            "expires_at": _rfc3339(self.created_at + EXPIRY),
            "ended_at": _rfc3339(self.ended_at),
            "cancel_initiated_at": _rfc3339(self.cancel_initiated_at),
            "archived_at": None,
            "results_url": (
                f"{base_url}/v1/messages/batches/{self.id}/results" if status == "ended" else None
            ),
        }


@dataclass
class BatchStore:
    """Every Message Batch this simulator has accepted, and the injected-outcome cursor."""

    cache: PromptCache
    clock: Callable[[], float] = time.monotonic
    batches: dict[str, SimBatch] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sequence_of: object = None
    _sequence_pos: int = 0

    def _next_outcome(self, state: SimulatorState) -> str:
        with self._lock:
            config = state.config
            if self._sequence_of is not config:  # a config change restarts the sequence
                self._sequence_of, self._sequence_pos = config, 0
            sequence = config.batch_result_sequence
            if self._sequence_pos < len(sequence):
                self._sequence_pos += 1
                return sequence[self._sequence_pos - 1]
            return "succeeded"

    def create(self, state: SimulatorState, requests: list[dict[str, Any]]) -> SimBatch:
        """Answer every request now; the batch ends after `batch_processing_s`."""
        batch_id = f"msgbatch_sim_{uuid.uuid4().hex[:24]}"
        results = [self._answer(state, item) for item in requests]
        batch = SimBatch(
            id=batch_id,
            created_at=datetime.now(UTC),
            ends_at=self.clock() + state.config.batch_processing_s,
            results=results,
        )
        with self._lock:
            self.batches[batch_id] = batch
        return batch

    def _answer(self, state: SimulatorState, item: dict[str, Any]) -> dict[str, Any]:
        custom_id, params = item["custom_id"], item["params"]
        outcome = self._next_outcome(state)
        if outcome != "succeeded" and outcome != "errored":
            return {"custom_id": custom_id, "result": {"type": outcome}}
        try:
            parsed = validate_request(params, state.table)
            if parsed.stream:
                raise InvalidRequest("stream: not supported in a Message Batch")
        except InvalidRequest as exc:
            return _errored(custom_id, "invalid_request_error", exc.message)
        if outcome == "errored":
            detail = "Simulated error in a batch request (injected)"
            return _errored(custom_id, "api_error", detail)
        input_tokens = count_input_tokens(params)
        reply = build_reply(parsed, params, state.config, input_tokens)
        message = message_body(parsed, params, reply, input_tokens)
        apply_to_usage(message["usage"], self.cache.use(parsed.model, params, state.table))
        message["usage"]["service_tier"] = "batch"
        return {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}

    def get(self, batch_id: str) -> SimBatch | None:
        with self._lock:
            return self.batches.get(batch_id)

    def newest_first(self) -> list[SimBatch]:
        """Every batch, most recently created first (the list endpoint's order)."""
        with self._lock:
            return list(reversed(self.batches.values()))  # dicts keep insertion order

    def cancel(self, batch: SimBatch) -> None:
        """Requests not yet answered are canceled; the batch ends right after."""
        with self._lock:
            if batch.status(self.clock()) != "in_progress":
                return
            batch.cancel_initiated_at = datetime.now(UTC)
            batch.results = [
                {"custom_id": line["custom_id"], "result": {"type": "canceled"}}
                for line in batch.results
            ]
            batch.ends_at = self.clock()


def _errored(custom_id: str, kind: str, message: str) -> dict[str, Any]:
    error = {"type": "error", "error": {"type": kind, "message": message}, "request_id": None}
    return {"custom_id": custom_id, "result": {"type": "errored", "error": error}}


def _check_requests(body: Any) -> list[dict[str, Any]]:
    """The body's requests, checked as CreateMessageBatchParams; InvalidRequest otherwise."""
    if not isinstance(body, dict) or set(body) != {"requests"}:
        raise InvalidRequest("body must be an object with only `requests`")
    requests = body["requests"]
    if not isinstance(requests, list) or not 1 <= len(requests) <= MAX_REQUESTS:
        raise InvalidRequest(f"requests: must be a list of 1 to {MAX_REQUESTS} requests")
    seen: set[str] = set()
    for index, item in enumerate(requests):
        if not isinstance(item, dict) or set(item) != {"custom_id", "params"}:
            raise InvalidRequest(f"requests.{index}: must have exactly custom_id and params")
        custom_id = item["custom_id"]
        if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
            raise InvalidRequest(f"requests.{index}.custom_id: must match {CUSTOM_ID.pattern}")
        if custom_id in seen:
            raise InvalidRequest(f"requests.{index}.custom_id: {custom_id!r} is not unique")
        seen.add(custom_id)
        if not isinstance(item["params"], dict):
            raise InvalidRequest(f"requests.{index}.params: must be an object")
    return requests


def _store(request: Request) -> BatchStore:
    store: BatchStore = request.app.state.batches
    return store


def _request_id() -> str:
    return f"req_sim_{uuid.uuid4().hex[:24]}"


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def create_batch(request: Request) -> Response:
    """POST /v1/messages/batches."""
    request_id = _request_id()
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        return error_response(413, f"batch larger than {MAX_BODY_BYTES} bytes", request_id)
    try:
        requests = _check_requests(json.loads(raw) if raw else None)
    except ValueError as exc:
        return error_response(400, f"request body is not valid JSON: {exc}", request_id)
    except InvalidRequest as exc:
        return error_response(400, exc.message, request_id)
    store, state = _store(request), request.app.state.sim
    batch = await run_in_threadpool(store.create, state, requests)
    if state.config.batch_create_fault == "hang_after_accept":
        # Accepted (and billed), but the answer comes after the client gave up.
        await wait_unless_disconnected(request, state.config.timeout_sleep_s)
    body = batch.body(_base_url(request), store.clock())
    return JSONResponse(body, headers={"request-id": request_id})


async def list_batches(request: Request) -> Response:
    """GET /v1/messages/batches: newest first, paged by before_id / after_id and limit."""
    store = _store(request)
    query = request.query_params
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        return error_response(400, "limit: must be an integer from 1 to 1000", _request_id())
    batches = store.newest_first()
    ids = [batch.id for batch in batches]
    for cursor in ("after_id", "before_id"):
        if cursor in query and query[cursor] not in ids:
            return error_response(400, f"{cursor}: no message batch {query[cursor]}", _request_id())
    if "after_id" in query:  # the page after the cursor: older batches
        start = ids.index(query["after_id"]) + 1
        page, has_more = batches[start : start + limit], start + limit < len(batches)
    elif "before_id" in query:  # the page before the cursor: newer batches
        end = ids.index(query["before_id"])
        page, has_more = batches[max(0, end - limit) : end], end - limit > 0
    else:
        page, has_more = batches[:limit], limit < len(batches)
    now, base_url = store.clock(), _base_url(request)
    return JSONResponse(
        {
            "data": [batch.body(base_url, now) for batch in page],
            "has_more": has_more,
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
        }
    )


def _found(request: Request) -> SimBatch | Response:
    batch_id = request.path_params["batch_id"]
    batch = _store(request).get(batch_id)
    if batch is None:
        return error_response(404, f"message batch {batch_id} not found", _request_id())
    return batch


async def retrieve_batch(request: Request) -> Response:
    """GET /v1/messages/batches/{batch_id}."""
    batch = _found(request)
    if isinstance(batch, Response):
        return batch
    return JSONResponse(batch.body(_base_url(request), _store(request).clock()))


async def cancel_batch(request: Request) -> Response:
    """POST /v1/messages/batches/{batch_id}/cancel."""
    batch = _found(request)
    if isinstance(batch, Response):
        return batch
    store = _store(request)
    store.cancel(batch)
    body = batch.body(_base_url(request), store.clock())
    if batch.cancel_initiated_at is not None and body["processing_status"] == "ended":
        # The cancel call itself sees the cancellation in flight.
        body.update(processing_status="canceling", results_url=None, ended_at=None)
    return JSONResponse(body)


async def batch_results(request: Request) -> Response:
    """GET /v1/messages/batches/{batch_id}/results: JSONL, once the batch has ended."""
    batch = _found(request)
    if isinstance(batch, Response):
        return batch
    if batch.status(_store(request).clock()) != "ended":
        return error_response(400, f"message batch {batch.id} has not ended yet", _request_id())
    lines = "".join(json.dumps(line) + "\n" for line in batch.results)
    return Response(lines, media_type="application/binary")


async def cache_stats(request: Request) -> Response:
    """GET /_sim/cache: prompt cache entries, hits and writes."""
    cache: PromptCache = request.app.state.prompt_cache
    return JSONResponse(cache.snapshot())


async def cache_clear(request: Request) -> Response:
    """POST /_sim/cache/clear: forget every cached prefix."""
    cache: PromptCache = request.app.state.prompt_cache
    cache.clear()
    return JSONResponse({"ok": True})


ROUTES = [
    Route("/v1/messages/batches", create_batch, methods=["POST"]),
    Route("/v1/messages/batches", list_batches, methods=["GET"]),
    Route("/v1/messages/batches/{batch_id}", retrieve_batch, methods=["GET"]),
    Route("/v1/messages/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
    Route("/v1/messages/batches/{batch_id}/results", batch_results, methods=["GET"]),
    Route("/_sim/cache", cache_stats, methods=["GET"]),
    Route("/_sim/cache/clear", cache_clear, methods=["POST"]),
]


def install(app: Any) -> None:
    """Add the Message Batches and prompt cache to a simulator app."""
    app.state.prompt_cache = PromptCache()
    app.state.batches = BatchStore(app.state.prompt_cache)
    app.router.routes.extend(ROUTES)
