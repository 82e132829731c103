"""Schemathesis against the running API's /openapi.json: generated requests, valid and
invalid, with a valid key. No 5xx, every status documented, every body as documented."""

from __future__ import annotations

import collections
from typing import Any

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

from tierroute.stack import RunningStack

pytestmark = pytest.mark.e2e

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Examples per operation and generation mode: a dozen operations, valid and invalid
# data, comfortably over 1,000 requests in all.
EXAMPLES = 80
AT_LEAST = 1000


def test_generated_requests_get_no_5xx_and_match_the_schema(stack: RunningStack) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.api_url}/openapi.json")
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
            run = settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,  # the same requests on every run: no flaky CI
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )(given(case=operation.as_strategy(generation_mode=mode))(exercise))
            try:
                run()
            except Unsatisfiable:
                # Nothing to make invalid (no parameters, no body): negative mode is empty.
                assert mode is GenerationMode.NEGATIVE, operation.label

    total = sum(sent.values())
    print(
        f"\n{total} requests over {len(sent)} operations; statuses {dict(sorted(statuses.items()))}"
    )
    assert total >= AT_LEAST
    assert not failures, "\n".join(
        f"{operation}: {title}: {example}" for (operation, title), example in failures.items()
    )
    assert httpx.get(f"{stack.api_url}/healthz", timeout=10).status_code == 200
