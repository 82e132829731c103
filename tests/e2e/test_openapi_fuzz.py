"""Schemathesis against the running API's /openapi.json: generated requests, valid and
invalid, with a valid key, then the same bodies poisoned (tests/e2e/poison.py): over
5,000 requests in all. No 5xx, every status documented, every body as documented."""

from __future__ import annotations

import collections
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.poison import POISONS, HostileRequest, hostile_requests, send_declared
from tierroute.devstack.stack import RunningStack

pytestmark = pytest.mark.e2e

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Examples per operation and generation mode: a dozen operations, valid and invalid data.
EXAMPLES = 250
# Poisoned bodies per poison (tests/e2e/poison.py). Streaming past the limit sends up
# to 8 MiB each: fewer of those. The gzip bomb is one request (Hypothesis draws nothing
# for it, so it stops after one example).
HOSTILE_EXAMPLES = {"oversized_streamed": 30, "gzip_bomb": 1, "oversized_declared": 100}
HOSTILE_DEFAULT = 200
# The Hardening issue's acceptance line: at least 5,000 requests, 0 server errors.
AT_LEAST = 5000
# POST routes whose JSON body the schema describes; poisoned bodies go to these.
BODY_ROUTES = ("/v1/jobs", "/v1/route", "/v1/jobs/{job_id}/rating")


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests on every run: no flaky CI
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def test_generated_requests_get_no_5xx_and_match_the_schema(stack: RunningStack) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.api_url}/openapi.json")
    documented = httpx.get(f"{stack.api_url}/openapi.json", timeout=10).json()["paths"]
    auth = {"Authorization": f"Bearer {stack.api_key}"}
    # Every request carries a valid key: the generator leaves auth alone.
    schema.config.update(base_url=stack.api_url, headers=auth)
    schema.config.generation.update(with_security_parameters=False)
    sent: collections.Counter[str] = collections.Counter()
    statuses: collections.Counter[int] = collections.Counter()
    failures: dict[tuple[str, str], str] = {}  # (operation, failure title) -> one example

    def exercise(case: Any) -> None:
        response = case.call(timeout=30)
        sent[case.operation.label] += 1
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=auth)
        except (FailureGroup, Failure) as exc:
            found = list(exc.exceptions) if isinstance(exc, FailureGroup) else [exc]
            for failure in found:
                key = (case.operation.label, failure.title)
                failures.setdefault(key, f"{failure.message}\n  {case.as_curl_command()}")

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run = _settings(EXAMPLES)(
                given(case=operation.as_strategy(generation_mode=mode))(exercise)
            )
            try:
                run()
            except Unsatisfiable:
                # Nothing to make invalid (no parameters, no body): negative mode is empty.
                assert mode is GenerationMode.NEGATIVE, operation.label

    # Then poisoned bodies, built on the schema's own valid ones.
    by_path = {op.path: op for op in operations if op.method.upper() == "POST"}
    cases = {path: by_path[path].as_strategy() for path in BODY_ROUTES}
    port = urlsplit(stack.api_url).port
    assert port is not None
    with httpx.Client(base_url=stack.api_url, headers=auth, timeout=60) as client:

        def attack(request: HostileRequest) -> None:
            label = f"POST {request.path.split('/')[2]} {request.poison}"
            try:
                status, body = _send(client, port, request, auth)
            except (httpx.TransportError, OSError) as exc:
                failures.setdefault((label, "no answer"), repr(exc))
                return
            sent[label] += 1
            statuses[status] += 1
            template = _template(request.path)
            problem = None
            if status >= 500:
                problem = "server error"
            elif request.must_refuse and status < 400:
                problem = f"accepted ({status})"
            elif str(status) not in documented[template]["post"]["responses"]:
                problem = f"undocumented status {status}"
            elif status >= 400 and (not isinstance(body, dict) or set(body) != {"error", "detail"}):
                problem = "error body not {error, detail}"
            if problem:
                failures.setdefault((label, problem), f"{status} {body!r:.300}\n  {request!r:.500}")

        for poison in POISONS:
            examples = HOSTILE_EXAMPLES.get(poison, HOSTILE_DEFAULT)
            _settings(examples)(given(request=hostile_requests(poison, cases))(attack))()

    total = sum(sent.values())
    print(
        f"\n{total} requests over {len(sent)} operations and poisons; "
        f"statuses {dict(sorted(statuses.items()))}"
    )
    by_poison = {
        poison: sum(n for label, n in sent.items() if label.endswith(f" {poison}"))
        for poison in POISONS
    }
    print(f"of which poisoned: {sum(by_poison.values())} {by_poison}")
    for poison, count in by_poison.items():
        assert count > 0, poison
    assert total >= AT_LEAST
    assert not failures, "\n".join(
        f"{operation}: {title}: {example}" for (operation, title), example in failures.items()
    )
    assert httpx.get(f"{stack.api_url}/healthz", timeout=10).status_code == 200


def _template(path: str) -> str:
    parts = path.split("/")
    if path.endswith("/rating"):
        parts[3] = "{job_id}"
    return "/".join(parts)


def _send(
    client: httpx.Client, port: int, request: HostileRequest, auth: dict[str, str]
) -> tuple[int, Any]:
    """Send one hostile request; its status and JSON body (None when there is none)."""
    if request.declared is not None:
        return send_declared(port, request, auth)
    content: Any = request.chunks() if request.stream_to is not None else request.body
    response = client.post(request.path, content=content, headers=request.headers)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None
