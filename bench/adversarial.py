"""Adversarial run (issue 14): /healthz stays fast while hostile clients are in flight.

On a stack started as `tierroute up` starts it (simulated models), all at once:
slow readers of a finished batch's results (raw sockets that read a few bytes a
second, or nothing), one unauthenticated POST promising and streaming a 256 MiB
body, and the longest prompt a job may carry (800,000 characters, all newlines but
one) both through POST /v1/route and as a job. Meanwhile GET /healthz every 50 ms.
Then the readers hang up, and 5 s later no Postgres connection of the stack's
database may be `idle in transaction`. Traffic goes to 127.0.0.1 only; every loop
is bounded in count and in time.
"""

from __future__ import annotations

import json
import select
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg

from bench.backing import Backing
from bench.config import BenchConfig
from bench.pipeline_run import stack_options
from bench.report import Result
from bench.workload import auth, ndjson_body, submit_batch, wait_for_batch
from tierroute.devstack.stack import run_stack

# The acceptance targets of the Hardening issue.
HEALTHZ_P99_TARGET_MS = 100.0
IDLE_IN_TRANSACTION_TARGET = 0


@dataclass(frozen=True)
class Sizes:
    """How hard to push; the full sizes are the issue's."""

    readers: int = 16
    batch_jobs: int = 2000
    unauth_body_bytes: int = 256 << 20
    prompt_chars: int = 800_000
    # Readers stay at least this long, and until the other attackers are done.
    hold_s: float = 20.0
    # Whatever happens, the attack ends after this long.
    max_attack_s: float = 120.0
    # The acceptance line's wait after the readers leave.
    settle_s: float = 5.0
    healthz_interval_s: float = 0.05
    # A slow reader that reads at all takes this many bytes a second.
    reader_bytes_per_s: int = 8

    @classmethod
    def smoke(cls) -> Sizes:
        """A few seconds, for the test suite."""
        return cls(
            readers=3, batch_jobs=20, unauth_body_bytes=4 << 20, prompt_chars=50_000, hold_s=2.0
        )


def pathological_prompt(chars: int) -> str:
    """Newlines and one letter: every line empty, the worst case for line-wise features."""
    return "\n" * (chars - 1) + "x"


@dataclass
class HealthSamples:
    """Latencies of GET /healthz in ms, and the answers that were not a 200."""

    latencies_ms: list[float] = field(default_factory=list)
    # Seconds since polling began, per sample: when a slow one happened.
    offsets_s: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def slowest(self, count: int) -> list[tuple[float, float]]:
        """The `count` slowest samples as (seconds since start, ms)."""
        pairs = sorted(zip(self.offsets_s, self.latencies_ms, strict=True), key=lambda p: -p[1])
        return [(round(at, 2), round(ms, 1)) for at, ms in pairs[:count]]

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile (q in 0..100)."""
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        rank = max(1, -(-len(ordered) * q // 100))
        return ordered[int(rank) - 1]


def poll_healthz(
    api_url: str, interval_s: float, stop: threading.Event, out: HealthSamples
) -> None:
    """GET /healthz every `interval_s` on one kept-alive connection until `stop`."""
    began = time.perf_counter()
    with httpx.Client(base_url=api_url, timeout=10) as client:
        while not stop.is_set():
            started = time.perf_counter()
            out.offsets_s.append(started - began)
            try:
                response = client.get("/healthz")
                if response.status_code != 200:
                    out.failures.append(f"{response.status_code} {response.text[:200]}")
            except httpx.HTTPError as exc:
                out.failures.append(repr(exc))
            elapsed = time.perf_counter() - started
            out.latencies_ms.append(elapsed * 1000)
            stop.wait(max(0.0, interval_s - elapsed))


@dataclass
class ReaderOutcome:
    """What one slow reader saw: the status line and how many bytes it took."""

    reads: bool
    status: str = ""
    bytes_read: int = 0
    error: str = ""


def slow_reader(
    port: int, path: str, api_key: str, bytes_per_s: int, stop: threading.Event, out: ReaderOutcome
) -> None:
    """Ask for the results, then read `bytes_per_s` a second (or nothing) until `stop`."""
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A small receive window, so the server's writes back up after a few KB.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
        with sock:
            head = (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {api_key}\r\n\r\n"
            )
            sock.sendall(head.encode())
            if out.reads:
                # The status line at once; then the trickle.
                data = sock.recv(64)
                out.status = data.split(b"\r\n", 1)[0].decode("latin-1")
                out.bytes_read += len(data)
            while not stop.wait(1.0):
                if out.reads:
                    try:
                        data = sock.recv(bytes_per_s)
                    except TimeoutError:
                        continue  # the stream ended and the connection is kept alive
                    if not data:
                        break
                    out.bytes_read += len(data)
    except OSError as exc:
        out.error = repr(exc)


@dataclass
class BodyOutcome:
    """The unauthenticated upload: the answer, and how much the server let us send."""

    status: int | None = None
    answer: str = ""
    bytes_sent: int = 0
    # Still sent after the answer came, before the server closed (or we gave up).
    bytes_sent_after_answer: int = 0
    answered_after_s: float | None = None
    seconds: float = 0.0
    ended_by: str = ""


def _read_what_came(sock: socket.socket) -> bytes:
    """An answer the server sent before it closed, if the reset left it readable."""
    try:
        sock.settimeout(1)
        return sock.recv(65536)
    except OSError:
        return b""


def unauthenticated_upload(port: int, size: int, deadline_s: float, out: BodyOutcome) -> None:
    """POST /v1/batches with no key, promising `size` bytes and streaming all of them
    unless the server stops us: its answer does not, only its closing the connection."""
    started = time.monotonic()
    head = (
        f"POST /v1/batches HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {size}\r\n"
        "Content-Type: application/x-ndjson\r\n\r\n"
    )
    chunk = (json.dumps({"prompt": "x" * 1000}) + "\n").encode() * 1000  # ~1 MB
    received = b""
    out.ended_by = "deadline"
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(head.encode())
        while out.bytes_sent < size and time.monotonic() - started < deadline_s:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                data = sock.recv(65536)
                if not data:
                    out.ended_by = "server closed"
                    break
                if not received:
                    out.answered_after_s = time.monotonic() - started
                received += data
            piece = chunk[: size - out.bytes_sent]
            sock.sendall(piece)
            out.bytes_sent += len(piece)
            if received:
                out.bytes_sent_after_answer += len(piece)
        else:
            if out.bytes_sent >= size:
                out.ended_by = "all sent"
        if not received and out.ended_by != "server closed":
            received = sock.recv(65536)  # sent it all first: the answer is still due
            out.answered_after_s = time.monotonic() - started
    except OSError as exc:
        # A server that closes with our bytes unread resets the connection.
        out.ended_by = f"server closed: {exc!r}"
        if not received:
            received = _read_what_came(sock)
            if received:
                out.answered_after_s = time.monotonic() - started
    finally:
        sock.close()
    out.seconds = time.monotonic() - started
    if received:
        status_line = received.split(b"\r\n", 1)[0].split()
        out.status = int(status_line[1]) if len(status_line) > 1 else None
        out.answer = received.partition(b"\r\n\r\n")[2][:200].decode("utf-8", "replace")


@dataclass
class PromptOutcome:
    """The pathological prompt through /v1/route and as a job."""

    route_status: int | None = None
    route_seconds: float = 0.0
    route_tier: str | None = None
    job_status: str | None = None
    job_seconds: float = 0.0
    error: str = ""


def pathological_route(api_url: str, api_key: str, text: str, out: PromptOutcome) -> None:
    """POST /v1/route with the prompt; the answer's status and time."""
    started = time.monotonic()
    try:
        with httpx.Client(base_url=api_url, timeout=120, headers=auth(api_key)) as client:
            response = client.post("/v1/route", json={"prompt": text})
        out.route_status = response.status_code
        if response.status_code == 200:
            out.route_tier = response.json().get("tier")
    except httpx.HTTPError as exc:
        out.error += f"route: {exc!r} "
    out.route_seconds = time.monotonic() - started


def pathological_job(
    api_url: str, api_key: str, text: str, deadline_s: float, out: PromptOutcome
) -> None:
    """POST /v1/jobs with the prompt and wait (bounded) until the job has finished."""
    started = time.monotonic()
    try:
        with httpx.Client(base_url=api_url, timeout=120, headers=auth(api_key)) as client:
            response = client.post("/v1/jobs", json={"prompt": text, "max_tokens": 64})
            response.raise_for_status()
            job_id = response.json()["id"]
            while time.monotonic() - started < deadline_s:
                out.job_status = client.get(f"/v1/jobs/{job_id}").json()["status"]
                if out.job_status in ("succeeded", "failed"):
                    break
                time.sleep(0.5)
    except httpx.HTTPError as exc:
        out.error += f"job: {exc!r} "
    out.job_seconds = time.monotonic() - started


def connection_states(psycopg_url: str) -> dict[str, int]:
    """Connections to this database by state (our own, autocommit, left out)."""
    with psycopg.connect(psycopg_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT coalesce(state, 'none'), count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1"
        ).fetchall()
    return {state: int(count) for state, count in rows}


def _thread(target: Callable[..., None], *args: Any) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def attack(
    api_url: str, api_key: str, batch_id: str, psycopg_url: str, sizes: Sizes
) -> dict[str, Any]:
    """Every attacker at once, /healthz polled throughout; the outcomes."""
    port = urlsplit(api_url).port
    assert port is not None
    text = pathological_prompt(sizes.prompt_chars)
    health = HealthSamples()
    health_stop, readers_stop = threading.Event(), threading.Event()
    readers = [ReaderOutcome(reads=i % 2 == 0) for i in range(sizes.readers)]
    body, prompt = BodyOutcome(), PromptOutcome()
    idle_peak = 0
    poller = _thread(poll_healthz, api_url, sizes.healthz_interval_s, health_stop, health)
    started = time.monotonic()
    path = f"/v1/batches/{batch_id}/results"
    reader_threads = [
        _thread(slow_reader, port, path, api_key, sizes.reader_bytes_per_s, readers_stop, out)
        for out in readers
    ]
    others = [
        _thread(unauthenticated_upload, port, sizes.unauth_body_bytes, sizes.max_attack_s, body),
        _thread(pathological_route, api_url, api_key, text, prompt),
        _thread(pathological_job, api_url, api_key, text, sizes.max_attack_s, prompt),
    ]
    while time.monotonic() - started < sizes.max_attack_s:
        idle_peak = max(idle_peak, connection_states(psycopg_url).get("idle in transaction", 0))
        held = time.monotonic() - started >= sizes.hold_s
        if held and not any(thread.is_alive() for thread in others):
            break
        time.sleep(0.5)
    attack_s = time.monotonic() - started
    readers_stop.set()
    for thread in reader_threads:
        thread.join(timeout=15)
    left_at = time.monotonic()
    time.sleep(sizes.settle_s)
    states = connection_states(psycopg_url)
    settled_s = time.monotonic() - left_at
    health_stop.set()
    poller.join(timeout=15)
    for thread in others:
        thread.join(timeout=15)
    return {
        "health": health,
        "readers": readers,
        "body": body,
        "prompt": prompt,
        "idle_peak": idle_peak,
        "states_after": states,
        "attack_s": attack_s,
        "settled_s": settled_s,
    }


def _results_bytes(api: httpx.Client, batch_id: str) -> int:
    with api.stream("GET", f"/v1/batches/{batch_id}/results") as response:
        response.raise_for_status()
        return sum(len(chunk) for chunk in response.iter_bytes())


def run(config: BenchConfig, backing: Backing) -> Result:
    """A stack, a finished batch, then the attack; figures against the issue's targets."""
    sizes = Sizes.smoke() if config.smoke else Sizes()
    result = Result("adversarial")
    backing.reset()
    with tempfile.TemporaryDirectory(prefix="tierroute-bench-") as tmp:
        options = stack_options(Path(tmp), 0, config.classify_concurrency, config.tier_concurrency)
        with (
            run_stack(backing.settings(), options) as stack,
            httpx.Client(base_url=stack.api_url, timeout=60, headers=auth(stack.api_key)) as api,
        ):
            submitted = submit_batch(api, ndjson_body(sizes.batch_jobs, "adversarial"))
            if submitted.batch_id is None:
                raise RuntimeError(f"batch refused: {submitted.status} {submitted.detail}")
            view = wait_for_batch(api, submitted.batch_id, config.timeout_s)
            if not view.get("done"):
                raise RuntimeError(f"batch did not finish: {view}")
            results_bytes = _results_bytes(api, submitted.batch_id)
            outcome = attack(
                stack.api_url, stack.api_key, submitted.batch_id, backing.psycopg_url, sizes
            )
    health: HealthSamples = outcome["health"]
    readers: list[ReaderOutcome] = outcome["readers"]
    body: BodyOutcome = outcome["body"]
    prompt: PromptOutcome = outcome["prompt"]
    idle_after = outcome["states_after"].get("idle in transaction", 0)
    p99 = health.percentile(99)
    verdict = {
        "healthz_p99_ms <= 100": p99 <= HEALTHZ_P99_TARGET_MS,
        "healthz all 200": not health.failures,
        "idle in transaction 5 s after == 0": idle_after <= IDLE_IN_TRANSACTION_TARGET,
    }
    result.figures.update(
        {
            "healthz_p50_ms": health.percentile(50),
            "healthz_p99_ms": p99,
            "healthz_max_ms": max(health.latencies_ms, default=float("nan")),
            "healthz_mean_ms": statistics.fmean(health.latencies_ms or [float("nan")]),
            "healthz_requests": len(health.latencies_ms),
            "healthz_failures": len(health.failures),
            "idle_in_transaction_after_settle": idle_after,
            "idle_in_transaction_peak_during": outcome["idle_peak"],
            "attack_s": outcome["attack_s"],
            "slow_reader_bytes": sum(r.bytes_read for r in readers),
            "results_bytes_per_reader": results_bytes,
            "unauth_body_mib_sent": body.bytes_sent / (1 << 20),
            "unauth_body_mib_sent_after_401": body.bytes_sent_after_answer / (1 << 20),
            "unauth_body_seconds": body.seconds,
            "route_seconds": prompt.route_seconds,
            "job_seconds": prompt.job_seconds,
            "passed": all(verdict.values()),
        }
    )
    result.settings = {
        **asdict(sizes),
        "healthz": "GET /healthz on one kept-alive connection, every interval, from the "
        "start of the attack until the settle wait ends; latency from request to response",
        "readers_how": "half read reader_bytes_per_s a second with a 4 KB receive buffer, "
        "half read nothing",
        "stack": "tierroute.devstack.stack.run_stack, as `tierroute up`, simulated models",
        "smoke": config.smoke,
    }
    result.details = {
        "targets": {
            "healthz_p99_ms": HEALTHZ_P99_TARGET_MS,
            "idle_in_transaction": IDLE_IN_TRANSACTION_TARGET,
        },
        "verdict": verdict,
        "connections_after_settle": outcome["states_after"],
        "settled_s": outcome["settled_s"],
        "healthz_failures": health.failures[:20],
        "healthz_slowest": health.slowest(10),
        "readers": [asdict(r) for r in readers],
        "unauth_body": asdict(body),
        "pathological_prompt": asdict(prompt),
    }
    for name, ok in verdict.items():
        if not ok:
            result.notes.append(f"target missed: {name}")
    if body.status != 401:
        result.notes.append(f"the unauthenticated body got {body.status}, not 401")
    if prompt.route_status != 200 or prompt.job_status != "succeeded":
        result.notes.append(
            f"pathological prompt: route {prompt.route_status}, job {prompt.job_status}"
        )
    return result
