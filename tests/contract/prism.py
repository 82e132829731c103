"""Prism (``@stoplight/prism-cli``) as a validating mock of the Anthropic API.

Prism serves ``shared/data/anthropic-openapi.json`` and validates every request
against it. A request that violates the spec gets HTTP 422 (with the spec's own
4XX example as body) and an ``sl-violations`` response header listing each
violation as JSON::

    [{"location": ["request", "body", "thinking", "budget_tokens"],
      "severity": "Error", "code": "minimum",
      "message": "Request body property thinking.budget_tokens must be >= 1024"}]

Request validation is always on in mock mode; Prism's ``--errors`` flag only
turns *response* violations into HTTP 500, and the spec's example ``Message``
lacks several required fields, so ``--errors`` would fail every valid request.
We therefore run without it and, as a second line of defence,
:func:`shape_violations` also fails on any request-side ``Error`` listed in
``sl-violations`` of a 2xx response.

Typical use (``prism_url`` is the session fixture from ``conftest.py``)::

    from prism import assert_shape_accepted

    def test_classifier_request(prism_url: str) -> None:
        assert_shape_accepted(prism_url, build_classifier_request(...))
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic

CONTRACT_DIR = Path(__file__).resolve().parent
REPO_ROOT = CONTRACT_DIR.parents[1]
SPEC_ENV_VAR = "TIERROUTE_ANTHROPIC_SPEC"
DEFAULT_SPEC_PATH = REPO_ROOT.parent / "shared" / "data" / "anthropic-openapi.json"
PRISM_BIN = CONTRACT_DIR / "node_modules" / ".bin" / "prism"
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-prism.sh"

# Prism takes seconds to load the large spec; leave room for slow CI.
DEFAULT_STARTUP_TIMEOUT = 90.0
_MAX_REPORTED_VIOLATIONS = 25


class PrismError(RuntimeError):
    """Prism could not be installed or started."""


@dataclass(frozen=True)
class Violation:
    """One entry of Prism's ``sl-violations`` header."""

    location: tuple[str, ...]
    severity: str
    code: str
    message: str

    @property
    def is_request_error(self) -> bool:
        return self.severity == "Error" and self.location[:1] == ("request",)

    def __str__(self) -> str:
        return f"[{self.code}] {'.'.join(self.location)}: {self.message}"


# --------------------------------------------------------------------------- paths


def spec_path() -> Path:
    """The OpenAPI spec to serve: ``$TIERROUTE_ANTHROPIC_SPEC`` or ``<repo>/../shared/...``."""
    override = os.environ.get(SPEC_ENV_VAR)
    return Path(override).expanduser().resolve() if override else DEFAULT_SPEC_PATH


def ensure_prism_installed() -> Path:
    """Return the Prism executable, running ``scripts/install-prism.sh`` if it is missing."""
    if PRISM_BIN.exists():
        return PRISM_BIN
    if shutil.which("bash") is None:
        raise PrismError("bash is needed to run scripts/install-prism.sh")
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not PRISM_BIN.exists():
        raise PrismError(
            f"{INSTALL_SCRIPT.relative_to(REPO_ROOT)} failed (exit {result.returncode}):\n"
            f"{result.stdout}{result.stderr}"
        )
    return PRISM_BIN


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- process


def prism_command(spec: Path, port: int, host: str = "127.0.0.1") -> list[str]:
    """The exact command line used to start Prism (no ``npx``: never touches the network)."""
    return [str(PRISM_BIN), "mock", str(spec), "--host", host, "--port", str(port)]


def start_prism(
    spec_path: Path,
    port: int,
    *,
    host: str = "127.0.0.1",
    timeout: float = DEFAULT_STARTUP_TIMEOUT,
    log_path: Path | None = None,
    extra_args: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """Start ``prism mock`` and return once it answers HTTP on ``host:port``.

    Output goes to ``log_path`` (a temporary file by default, never a pipe, so
    a chatty Prism cannot block). Raises :class:`PrismError` with the log tail if
    Prism exits or does not answer within ``timeout`` seconds.
    """
    if not spec_path.is_file():
        raise PrismError(f"OpenAPI spec not found: {spec_path} (set {SPEC_ENV_VAR} to override)")
    ensure_prism_installed()
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix=f"prism-{port}-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    cmd = [*prism_command(spec_path, port, host), *extra_args]
    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=CONTRACT_DIR,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # own process group: stop_prism() ends it as a unit
        )
    deadline = time.monotonic() + timeout
    url = f"http://{host}:{port}/"
    while True:
        if proc.poll() is not None:
            raise PrismError(
                f"Prism exited with code {proc.returncode} during startup.\n"
                f"command: {' '.join(cmd)}\nlog ({log_path}):\n{_tail(log_path)}"
            )
        if _answers(url):
            return proc
        if time.monotonic() > deadline:
            stop_prism(proc)
            raise PrismError(
                f"Prism did not answer on {url} within {timeout:.0f}s.\n"
                f"command: {' '.join(cmd)}\nlog ({log_path}):\n{_tail(log_path)}"
            )
        time.sleep(0.1)


def stop_prism(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate the Prism process group started by :func:`start_prism`."""
    if proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def _answers(url: str) -> bool:
    """True once *Prism* (not some other server on the port) answers ``url``."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as resp:
            body = resp.read(4096)
    except urllib.error.HTTPError as exc:
        body = exc.read(4096)  # Prism answers "/" with 404 NO_PATH_MATCHED_ERROR
    except OSError:
        return False
    return b"stoplight.io/prism" in body


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<unreadable: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------- validation


def parse_violations(header: str | None) -> list[Violation]:
    """Parse an ``sl-violations`` header, tolerating Prism's truncated form.

    Beyond ~8 KB Prism sends ``Too many violations! <first 8 KB of the JSON>``;
    every complete entry before the cut is still returned.
    """
    if not header:
        return []
    text = header.strip()
    text = text.removeprefix("Too many violations!").lstrip()
    try:
        raw: Iterable[Any] = json.loads(text)
    except json.JSONDecodeError:
        raw = _complete_json_objects(text)
    out: list[Violation] = []
    for item in raw:
        if isinstance(item, dict):
            out.append(
                Violation(
                    location=tuple(str(p) for p in item.get("location", ())),
                    severity=str(item.get("severity", "")),
                    code=str(item.get("code", "")),
                    message=str(item.get("message", "")),
                )
            )
    return out


def _complete_json_objects(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    items: list[Any] = []
    pos = text.find("[") + 1
    while 0 < pos < len(text):
        while pos < len(text) and text[pos] in " ,\n\t":
            pos += 1
        try:
            item, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            break
        items.append(item)
    return items


def make_client(prism_url: str) -> anthropic.Anthropic:
    """The real SDK pointed at Prism; retries off so a rejection surfaces at once."""
    return anthropic.Anthropic(api_key="test", base_url=prism_url, max_retries=0, timeout=30.0)


def _send(call: Callable[[], Any]) -> list[Violation]:
    """Run an SDK ``with_raw_response`` call; return request-side violations.

    Raises AssertionError for any other error status, e.g. a 404 for an unknown
    route or a 5xx (a harness or Prism problem, not a verdict on the shape).
    """
    try:
        raw = call()
    except anthropic.APIStatusError as exc:
        violations = parse_violations(exc.response.headers.get("sl-violations"))
        request_errors = [v for v in violations if v.is_request_error]
        if 400 <= exc.status_code < 500 and request_errors:
            return request_errors
        raise AssertionError(
            f"Prism answered HTTP {exc.status_code} (not a request-validation verdict): "
            f"{exc.body!r}; violations: {[str(v) for v in violations]}"
        ) from exc
    violations = parse_violations(raw.headers.get("sl-violations"))
    return [v for v in violations if v.is_request_error]


def shape_violations(prism_url: str, params: Mapping[str, Any]) -> list[Violation]:
    """Send ``client.messages.create(**params)`` to Prism; return the request violations.

    An empty list means Prism accepted the request shape.
    """
    client = make_client(prism_url)
    return _send(lambda: client.messages.with_raw_response.create(**params))


def batch_violations(prism_url: str, requests: Sequence[Mapping[str, Any]]) -> list[Violation]:
    """Like :func:`shape_violations` for ``client.messages.batches.create(requests=...)``.

    Each item is ``{"custom_id": ..., "params": {...messages.create params...}}``.
    """
    client = make_client(prism_url)
    return _send(lambda: client.messages.batches.with_raw_response.create(requests=requests))


def format_violations(violations: Sequence[Violation]) -> str:
    unique = list(dict.fromkeys(str(v) for v in violations))
    shown = unique[:_MAX_REPORTED_VIOLATIONS]
    more = len(unique) - len(shown)
    lines = [f"  - {line}" for line in shown]
    if more > 0:
        lines.append(f"  ... and {more} more")
    return "\n".join(lines)


def assert_shape_accepted(prism_url: str, params: Mapping[str, Any]) -> None:
    """Assert Prism accepts ``client.messages.create(**params)`` sent by the real SDK.

    ``params`` are the keyword arguments for ``messages.create`` (``extra_body``,
    ``extra_headers`` and friends included). On rejection, raises AssertionError
    listing Prism's violations. Note that a ``oneOf`` mismatch is reported once per
    branch, so look for the most specific message (e.g. ``minimum``) first.
    """
    violations = shape_violations(prism_url, params)
    if violations:
        keys = ", ".join(sorted(params))
        raise AssertionError(
            f"Anthropic OpenAPI spec rejects messages.create({keys}):\n"
            f"{format_violations(violations)}"
        )


def assert_batch_accepted(prism_url: str, requests: Sequence[Mapping[str, Any]]) -> None:
    """Assert Prism accepts ``client.messages.batches.create(requests=requests)``."""
    violations = batch_violations(prism_url, requests)
    if violations:
        raise AssertionError(
            f"Anthropic OpenAPI spec rejects messages.batches.create "
            f"({len(requests)} requests):\n{format_violations(violations)}"
        )
