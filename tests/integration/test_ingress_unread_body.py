"""A body the API refuses unread ends the connection: the server must not go on
reading (to throw away) what the client still sends, on the event loop every other
request waits for. Found by the adversarial run (bench/adversarial.py): the rest of
an unauthenticated body, read after its 401, stalled /healthz."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest

from api.ingress import SMALL_BODY_BYTES
from tests.conftest import Services
from tests.integration.test_api_auth import bearer, new_key
from tests.integration.test_api_ingress import serve_api

pytestmark = pytest.mark.integration

RATING = f"/v1/jobs/{uuid.UUID(int=7)}/rating"


@pytest.fixture
def port(clean_db: Services) -> Iterator[int]:
    with serve_api() as serving:
        yield serving


def _answer(sock: socket.socket) -> tuple[int, dict[str, str]]:
    """Read one response (head and its Content-Length body); its status and headers."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before an answer: {data!r}"
        data += chunk
    raw_head, _, body = data.partition(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    fields = dict(line.lower().split(": ", 1) for line in lines[1:])
    while len(body) < int(fields.get("content-length", 0)):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), fields


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server ends the connection (rather than wait for more body)."""
    sock.settimeout(5)
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _post_head(path: str, headers: dict[str, str]) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode()


@pytest.mark.parametrize("key", ["none", "unknown"])
def test_unauthenticated_body_is_refused_and_the_connection_closed(port: int, key: str) -> None:
    headers = {"Content-Length": str(256 << 20)}
    if key == "unknown":
        headers |= bearer("trk_not-a-key-we-issued")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_post_head("/v1/batches", headers) + b"[" + b" " * 65536)
        status, fields = _answer(sock)
        assert status == 401
        assert fields.get("connection") == "close"
        assert _closed_by_server(sock)


def test_declared_oversized_body_is_refused_and_the_connection_closed(port: int) -> None:
    _, raw = new_key()
    headers = {"Content-Length": str(SMALL_BODY_BYTES + 1), **bearer(raw)}
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_post_head(RATING, headers) + b"{" + b" " * 1024)
        status, fields = _answer(sock)
        assert status == 413
        assert fields.get("connection") == "close"
        assert _closed_by_server(sock)


def test_chunked_body_past_the_limit_is_cut_and_the_connection_closed(port: int) -> None:
    _, raw = new_key()
    headers = {"Transfer-Encoding": "chunked", **bearer(raw)}
    piece = b" " * 16384
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_post_head(RATING, headers) + b"1\r\n{\r\n")
        for _ in range(SMALL_BODY_BYTES // len(piece) + 2):  # past the limit, no last chunk
            sock.sendall(chunk)
        status, fields = _answer(sock)
        assert status == 413
        assert fields.get("connection") == "close"
        assert _closed_by_server(sock)


def test_a_bodiless_refusal_keeps_the_connection(port: int) -> None:
    # Nothing is left unread: a client polling with a bad key is not made to reconnect.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /v1/report HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, fields = _answer(sock)
        assert status == 401
        assert "connection" not in fields
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _answer(sock)[0] in (200, 503)
