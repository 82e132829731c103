"""`tierroute up` fits twice in a default Postgres: its processes' pools, counted from settings.

The processes are faked at their boundary (start_child); what is counted is the
pool each one would build from the TIERROUTE_* environment it is started with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tierroute.config import Settings
from tierroute.devstack import stack as stack_module
from tierroute.devstack.stack import StackOptions, run_stack, stack_pool_sizes
from tierroute.domain.errors import ConfigurationError
from tierroute.store.engine import make_engine

# Postgres's defaults: max_connections 100, of which 3 are reserved for superusers.
DEFAULT_MAX_CONNECTIONS = 100 - 3
URL = "postgresql+psycopg://user@db.invalid:5432/tierroute"


class FakeChild:
    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name, self.env = name, env

    def alive(self) -> bool:
        return True

    def stop(self) -> None:
        pass


@contextlib.contextmanager
def no_embedded(*_: Any, **__: Any) -> Iterator[Any]:
    yield None


def started_children(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **options: Any
) -> list[FakeChild]:
    children: list[FakeChild] = []

    def start_child(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> FakeChild:
        children.append(FakeChild(name, env))
        return children[-1]

    monkeypatch.setattr(stack_module, "start_child", start_child)
    monkeypatch.setattr(stack_module, "upgrade", lambda url: None)
    monkeypatch.setattr(stack_module, "issue_key", lambda url, name: "key")
    monkeypatch.setattr(stack_module, "wait_http", lambda *a, **k: None)
    monkeypatch.setattr(stack_module, "_wait_for_workers", lambda *a, **k: None)
    monkeypatch.setattr("tierroute.devstack.embedded.embedded_services", no_embedded)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)  # so the simulator starts too
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    settings = Settings(database_url=URL, broker_url="redis://localhost:6379/0")
    # As `tierroute up` starts it: Flower and the simulator too.
    stack_options = StackOptions(data_dir=tmp_path, flower_port=5555, **options)
    with run_stack(settings, stack_options):
        pass
    return children


def most_connections(child: FakeChild) -> int:
    """What the child's engine may open: pool plus overflow, from its own settings."""
    if child.name in ("flower", "simulator"):
        return 0  # no engine: Flower reads the broker, the simulator nothing
    pool_size = int(child.env["TIERROUTE_DB_POOL_SIZE"])
    engine = make_engine(URL, pool_size)  # connects lazily: nothing is opened here
    try:
        return engine.pool.size() + max(0, engine.pool._max_overflow)  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_tierroute_up_opens_at_most_45_connections(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TIERROUTE_STACK_DB_CONNECTIONS", raising=False)
    children = started_children(monkeypatch, tmp_path)
    names = sorted(child.name for child in children)
    assert names == [
        "api", "flower", "simulator", "worker-classify", "worker-tiers", "worker-tiers2",
    ]  # fmt: skip
    total = sum(most_connections(child) for child in children)
    assert total <= 45
    assert 2 * total <= DEFAULT_MAX_CONNECTIONS  # two stacks on one default Postgres
    # The feeder, beat and watches run in the classify worker, on its pool.
    engines = [child for child in children if child.name not in ("flower", "simulator")]
    assert all(most_connections(child) >= 2 for child in engines)


@pytest.mark.parametrize("tier_workers", [1, 2, 3, 4])
def test_the_budget_holds_for_any_number_of_tier_workers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tier_workers: int
) -> None:
    monkeypatch.setenv("TIERROUTE_STACK_DB_CONNECTIONS", "30")
    children = started_children(monkeypatch, tmp_path, tier_workers=tier_workers)
    assert sum(most_connections(child) for child in children) <= 30


def test_a_budget_too_small_for_the_processes_is_refused() -> None:
    assert stack_pool_sizes(8, 1) == {"api": 1, "classify": 1, "tiers": 2}
    with pytest.raises(ConfigurationError, match="too few"):
        stack_pool_sizes(8, 4)
    with pytest.raises(ValueError):
        Settings(stack_db_connections=4)
