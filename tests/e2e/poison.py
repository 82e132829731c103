"""Hostile request bodies as Hypothesis strategies, for the fuzz run.

A body starts as one schemathesis generates from the OpenAPI schema (a job, a
routing request, a rating, or a batch of jobs), then one poison is worked into it:
NaN or Infinity, a number that overflows a double, a lone surrogate (escaped, or as
raw bytes that are not UTF-8), gzip (whole, broken, or a bomb), or more bytes than
the route takes (declared up front, or streamed past the limit).
"""

from __future__ import annotations

import gzip
import json
import socket
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from hypothesis import strategies as st

from api.ingress import BATCH_BODY_BYTES, SINGLE_JOB_BODY_BYTES, SMALL_BODY_BYTES
from api.upload import MAX_BODY_BYTES

# Poisons that make any body invalid: the answer must be a 4xx, never a 2xx.
INVALID = (
    "nan",
    "infinity",
    "overflow",
    "surrogate_escaped",
    "surrogate_raw",
    "gzip_broken",
    "oversized_declared",
    "oversized_streamed",
    "gzip_bomb",
)
# gzip around a body that may be valid: any answer but a 5xx.
POISONS = ("gzip", *INVALID)
# A value that json.dumps writes as a string, replaced by a literal the float type cannot hold.
_OVERFLOW = "\x00overflow\x00"
_OVERFLOW_JSON = json.dumps(_OVERFLOW)


@dataclass
class HostileRequest:
    """One request to send: where, which poison, the bytes (or a stream of them)."""

    poison: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    # Bytes promised in Content-Length while only the first of them are sent.
    declared: int | None = None
    # A chunked body (no Content-Length) that runs past the route's limit.
    stream_to: int | None = None
    query: dict[str, Any] = field(default_factory=dict)
    # Whether any 2xx is wrong. Only batches decode Content-Encoding: the single-body
    # routes read the bytes as they come, so a JSON body labelled gzip is just JSON.
    must_refuse: bool = True

    def chunks(self) -> Iterator[bytes]:
        """The streamed body: the JSON, then spaces until past `stream_to`."""
        assert self.stream_to is not None
        yield self.body
        sent = len(self.body)
        pad = b" " * (1 << 20)
        while sent <= self.stream_to:
            yield pad
            sent += len(pad)


def _slots(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON value, plus a new key in each object."""
    found: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        found.append((value, "poisoned"))
        for key, item in value.items():
            found.append((value, key))
            found.extend(_slots(item))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.append((value, index))
            found.extend(_slots(item))
    return found


@st.composite
def _poisoned_value(draw: st.DrawFn, value: Any, poison: str) -> Any:
    """`value` with the poison put in one place, chosen by Hypothesis."""
    if poison == "nan":
        bad: Any = float("nan")
    elif poison == "infinity":
        bad = draw(st.sampled_from([float("inf"), float("-inf")]))
    elif poison == "overflow":
        bad = _OVERFLOW
    else:  # a lone surrogate, high or low, somewhere in a string
        surrogate = chr(draw(st.integers(0xD800, 0xDFFF)))
        text = draw(st.text(max_size=8))
        cut = draw(st.integers(0, len(text)))
        bad = text[:cut] + surrogate + text[cut:]
    slots = _slots(value)
    if not slots:
        return bad
    container, key = draw(st.sampled_from(slots))
    if isinstance(container, list) or key in container:
        current = container[key]
        if isinstance(current, str) and poison.startswith("surrogate"):
            cut = draw(st.integers(0, len(current)))
            bad = current[:cut] + bad + current[cut:]
    container[key] = bad
    return value


def _encode(value: Any, poison: str) -> bytes:
    if poison == "surrogate_raw":
        # The surrogate as the three bytes UTF-8 forbids, not as a \u escape.
        return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    text = json.dumps(value, allow_nan=True)
    return text.replace(_OVERFLOW_JSON, "1e999").encode()


@cache
def gzip_bomb() -> bytes:
    """About 1 MB of gzip that inflates to more than the 1 GiB a batch may decompress to."""
    out = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    step = b" " * (8 << 20)
    parts = [out.compress(b"[")]
    for _ in range(MAX_BODY_BYTES // len(step) + 1):
        parts.append(out.compress(step))
    parts.append(out.flush())
    return b"".join(parts)


def _broken_gzip(draw: st.DrawFn, body: bytes) -> tuple[bytes, str]:
    packed = gzip.compress(body)
    how = draw(st.sampled_from(["garbage", "truncated", "member_then_garbage", "not_gzip"]))
    if how == "garbage":
        return packed + draw(st.binary(min_size=1, max_size=16)), how
    if how == "truncated":
        return packed[: draw(st.integers(0, len(packed) - 1))], how
    if how == "member_then_garbage":
        return packed + gzip.compress(body) + b"\x1f\x8b" + draw(st.binary(max_size=8)), how
    return body, how


def _limit(path: str) -> int:
    if path.endswith("/rating"):
        return SMALL_BODY_BYTES
    if path.startswith("/v1/batches"):
        return BATCH_BODY_BYTES
    return SINGLE_JOB_BODY_BYTES


@st.composite
def hostile_requests(
    draw: st.DrawFn, poison: str, cases: dict[str, st.SearchStrategy[Any]]
) -> HostileRequest:
    """A request carrying `poison`. `cases` maps POST paths that take JSON bodies to
    schemathesis strategies for their cases; "/v1/jobs" also supplies batch items."""
    if poison == "gzip_bomb":
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        return HostileRequest(poison, "/v1/batches", headers, gzip_bomb())
    targets = [*sorted(cases), "/v1/batches"]
    if poison == "oversized_streamed":
        # Streaming 256 MiB per example would be most of the run: the batch limit is
        # covered by the declared kind and by the gzip bomb.
        targets.remove("/v1/batches")
    target = draw(st.sampled_from(targets))
    content_type = "application/json"
    shape = "array"
    if target == "/v1/batches":
        items = [draw(cases["/v1/jobs"]).body for _ in range(draw(st.integers(1, 4)))]
        path = target
        shape = draw(st.sampled_from(["array", "object", "ndjson"]))
        value: Any = {"jobs": items} if shape == "object" else items
    else:
        case = draw(cases[target])
        path, value = case.formatted_path, case.body
    if poison in ("nan", "infinity", "overflow", "surrogate_escaped", "surrogate_raw"):
        value = draw(_poisoned_value(value, poison))
    inside = poison in ("gzip", "gzip_broken") and draw(st.booleans())
    if inside:
        # Poison inside the gzip, too, half the time.
        inner = draw(st.sampled_from(["nan", "surrogate_escaped", "overflow"]))
        value = draw(_poisoned_value(value, inner))
    encoding = poison if poison.startswith("surrogate") else "plain"
    if target == "/v1/batches" and shape == "ndjson":
        content_type = "application/x-ndjson"
        body = b"".join(_encode(item, encoding) + b"\n" for item in value)
    else:
        body = _encode(value, encoding)
    headers = {"content-type": content_type}
    request = HostileRequest(poison, path, headers, body, must_refuse=poison in INVALID or inside)
    if poison == "gzip":
        request.body = gzip.compress(body)
        headers["content-encoding"] = "gzip"
    elif poison == "gzip_broken":
        request.body, how = _broken_gzip(draw, body)
        headers["content-encoding"] = "gzip"
        request.must_refuse = how != "not_gzip" or path == "/v1/batches" or inside
    elif poison == "oversized_declared":
        request.declared = _limit(path) + draw(st.integers(1, 1 << 20))
    elif poison == "oversized_streamed":
        request.stream_to = _limit(path)
    return request


def send_declared(port: int, request: HostileRequest, auth: dict[str, str]) -> tuple[int, Any]:
    """Promise `declared` bytes, send the body we have; the server's status and JSON body."""
    assert request.declared is not None
    head = [f"POST {request.path} HTTP/1.1", "Host: 127.0.0.1"]
    head += [f"Content-Length: {request.declared}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in {**request.headers, **auth}.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + request.body[: request.declared])
        data = b""
        while True:  # the server closes after its answer: this body can never be finished
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    raw_head, _, body = data.partition(b"\r\n\r\n")
    if not raw_head:
        raise ConnectionError("closed without an answer")
    status = int(raw_head.split(b"\r\n", 1)[0].split()[1])
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None
