"""The API's front door: the key and the body size are checked before a body is read.

FastAPI reads a route's JSON body before it solves the route's dependencies, so a
key checked in a dependency comes too late: the server has already answered
`100 Continue` and taken the whole body from anyone. This plain ASGI middleware
decides from the headers alone, and only then lets the app call `receive`:

- every /v1 request needs an active key (`Authorization: Bearer <key>`), else 401;
- each route has a body limit: a declared `Content-Length` over it is a 413 at once,
  and a chunked body that streams past it is cut off with a 413 as it arrives.

A refusal that leaves a body unread says `Connection: close`. Otherwise the server
keeps the connection for its next request and reads, to throw away, whatever the
client still sends: 256 MiB from anyone without a key, or a chunked body without
end, all on the event loop that answers every other request.
"""

from __future__ import annotations

import json
import re
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.anthropic_shapes import error_body
from api.auth import API_KEY_SCOPE, KeyCache, resolve_key
from tierroute.store.ingest import MAX_ITEM_BYTES

# One job (or routing request) carries a prompt and a system of up to 800,000
# characters each; at 4 bytes a character in UTF-8, plus metadata, that fits here.
SINGLE_JOB_BODY_BYTES = MAX_ITEM_BYTES
# A batch of 100,000 prompts of a few KB each; `tierroute submit` gzips it anyway.
# The decompressed size has its own limit (api/upload.py).
BATCH_BODY_BYTES = 256 << 20
# A rating is a number and a comment of at most 10,000 characters.
SMALL_BODY_BYTES = 64 << 10
# Matched on the raw path, from the headers alone: the router has not run yet.
BODY_LIMITS: list[tuple[str, re.Pattern[str], int]] = [
    ("POST", re.compile(r"/v1/batches/?"), BATCH_BODY_BYTES),
    ("POST", re.compile(r"/v1/messages/batches/?"), BATCH_BODY_BYTES),
    ("POST", re.compile(r"/v1/jobs/[^/]+/rating/?"), SMALL_BODY_BYTES),
]
DEFAULT_BODY_BYTES = SINGLE_JOB_BODY_BYTES


def describe_bytes(size: int) -> str:
    """A byte count as people read a limit: 8 MiB, 64 KiB, or bytes."""
    for shift, unit in ((20, "MiB"), (10, "KiB")):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} bytes"


class BodyTooLarge(HTTPException):
    """413: the body is over the route's limit. An HTTPException, because FastAPI lets
    only those pass out of its body parsing; the app's handler renders it as JSON."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413, f"request body larger than this route's limit of {describe_bytes(limit)}"
        )
        self.limit = limit


def body_limit(method: str, path: str) -> int:
    """The most bytes a request to this route may send."""
    for route_method, pattern, limit in BODY_LIMITS:
        if method == route_method and pattern.fullmatch(path):
            return limit
    return DEFAULT_BODY_BYTES


def _bearer_token(scope: Scope) -> str | None:
    # The same reading as FastAPI's HTTPBearer: "Bearer <credentials>", any case.
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            credentials = credentials.strip()
            if scheme.lower() == "bearer" and credentials:
                return credentials
            return None
    return None


def _api_key_header(scope: Scope) -> str | None:
    # Anthropic's SDK sends its key as `x-api-key`; tierroute keys work there too.
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return value.decode("latin-1").strip() or None
    return None


def _anthropic_path(scope: Scope) -> bool:
    """Routes that speak Anthropic's API answer errors in its shape."""
    path: str = scope["path"]
    return path == "/v1/messages" or path.startswith("/v1/messages/")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we run
    return None


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


CONNECTION_CLOSE = (b"connection", b"close")


async def _send_error(
    send: Send, status: int, code: str, detail: str, *, close: bool, anthropic: bool = False
) -> None:
    headers = [(b"content-type", b"application/json")]
    if close:
        headers.append(CONNECTION_CLOSE)
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))  # RFC 6750
    if anthropic:
        headers.append((b"x-should-retry", b"false"))
        kind = "authentication_error" if status == 401 else "request_too_large"
        body = json.dumps(error_body(kind, detail)).encode()
    else:
        body = json.dumps({"error": code, "detail": detail}).encode()
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Ingress:
    """Authenticate /v1 requests and bound every body, both before the app reads it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith("/v1/"):
            key_id = await self._authenticate(scope, send)
            if key_id is None:
                return
            scope[API_KEY_SCOPE] = key_id
        limit = body_limit(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            detail = BodyTooLarge(limit).detail
            await _send_error(
                send, 413, "payload_too_large", detail, close=True, anthropic=_anthropic_path(scope)
            )
            return
        await self._run_limited(scope, receive, send, limit)

    async def _authenticate(self, scope: Scope, send: Send) -> uuid.UUID | None:
        raw_key = _bearer_token(scope) or _api_key_header(scope)
        close = _has_body(scope)
        anthropic = _anthropic_path(scope)
        if raw_key is None:
            detail = "send an API key as `Authorization: Bearer <key>` or `x-api-key: <key>`"
            await _send_error(send, 401, "unauthorized", detail, close=close, anthropic=anthropic)
            return None
        cache: KeyCache = scope["app"].state.key_cache
        key_id = await resolve_key(cache, raw_key)
        if key_id is None:
            detail = "unknown or revoked API key"
            await _send_error(send, 401, "unauthorized", detail, close=close, anthropic=anthropic)
        return key_id

    async def _run_limited(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        started = cut = False

        async def limited_receive() -> Message:
            nonlocal received, cut
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut = True
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if cut:  # the rest of the body stays unread: end the connection
                    headers = [*message.get("headers", []), CONNECTION_CLOSE]
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            # The app's handler answers it in the route; this catches a read made
            # outside one (a middleware, a background read).
            if started:
                raise
            await _send_error(send, 413, "payload_too_large", exc.detail, close=True)
