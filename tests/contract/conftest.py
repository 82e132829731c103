"""Fixtures for the contract tests: a session-wide Prism validating mock.

Every test under ``tests/contract`` is marked ``contract``. If Prism cannot be
installed or started, the ``prism_url`` fixture FAILS the tests (never skips):
CI must not pass without checking request shapes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from prism import (
    PrismError,
    ensure_prism_installed,
    free_port,
    prism_command,
    spec_path,
    start_prism,
    stop_prism,
)

_CONTRACT_DIR = Path(__file__).resolve().parent
_START_ATTEMPTS = 3  # a free port can be taken between probing and binding


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _CONTRACT_DIR in item.path.resolve().parents:
            item.add_marker(pytest.mark.contract)


@pytest.fixture(scope="session")
def prism_spec_path() -> Path:
    path = spec_path()
    if not path.is_file():
        pytest.fail(
            f"Anthropic OpenAPI spec not found at {path}; "
            "put shared/ beside the repo or set TIERROUTE_ANTHROPIC_SPEC",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def prism_url(prism_spec_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:<port>``) of a Prism mock serving the Anthropic spec."""
    try:
        ensure_prism_installed()
    except PrismError as exc:
        pytest.fail(f"cannot install Prism: {exc}", pytrace=False)

    log_dir = tmp_path_factory.mktemp("prism")
    errors: list[str] = []
    for attempt in range(1, _START_ATTEMPTS + 1):
        port = free_port()
        log_path = log_dir / f"prism-{port}.log"
        started = time.monotonic()
        try:
            proc = start_prism(prism_spec_path, port, log_path=log_path)
        except PrismError as exc:
            errors.append(f"attempt {attempt}: {exc}")
            if "EADDRINUSE" in str(exc):
                continue  # lost the race for the port: try another one
            break
        elapsed = time.monotonic() - started
        sys.stderr.write(
            f"\n[contract] Prism ready in {elapsed:.1f}s: "
            f"{' '.join(prism_command(prism_spec_path, port))} (log: {log_path})\n"
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            stop_prism(proc)
        return
    pytest.fail("cannot start Prism:\n" + "\n\n".join(errors), pytrace=False)
