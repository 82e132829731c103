"""docker-compose.yml runs the real entry points (Docker itself cannot run here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def _command(name: str) -> list[str]:
    return [str(part) for part in SERVICES[name]["command"]]


def test_every_component_has_a_service() -> None:
    expected = {
        "postgres", "redis", "migrate", "api", "worker-classify", "worker-tiers", "flower",
        "simulator",
    }  # fmt: skip
    assert expected <= set(SERVICES)


def test_migrate_is_a_one_off_that_the_apps_wait_for() -> None:
    assert _command("migrate") == ["tierroute", "migrate"]
    assert SERVICES["migrate"]["restart"] == "no"
    for name in ("api", "worker-classify", "worker-tiers", "flower"):
        deps = SERVICES[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"


def test_workers_use_celerys_own_cli_on_the_contract_queues() -> None:
    classify = _command("worker-classify")
    tiers = _command("worker-tiers")
    assert classify[:4] == ["celery", "-A", "worker", "worker"]
    assert tiers[:4] == ["celery", "-A", "worker", "worker"]
    assert classify[classify.index("-Q") + 1] == "classify"
    assert tiers[tiers.index("-Q") + 1] == "haiku,sonnet,opus"


def test_api_flower_and_simulator_entry_points() -> None:
    assert _command("api")[:2] == ["uvicorn", "api.app:app"]
    flower = _command("flower")
    assert flower[:4] == ["celery", "-A", "worker", "flower"]
    assert any(part.startswith("--basic-auth=") for part in flower)
    assert _command("simulator")[:2] == ["tierroute", "sim"]
    assert SERVICES["simulator"]["profiles"] == ["sim"]


def test_apps_point_at_the_compose_postgres_and_redis() -> None:
    env = SERVICES["api"]["environment"]
    assert env["TIERROUTE_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["TIERROUTE_DATABASE_URL"]
    assert env["TIERROUTE_BROKER_URL"] == "redis://redis:6379/0"
    for name in ("worker-classify", "worker-tiers", "flower", "migrate"):
        service_env = SERVICES[name]["environment"]
        assert {key: service_env[key] for key in env} == env


def test_the_image_installs_the_package_that_provides_the_commands() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install" in dockerfile
    for package in ("tierroute", "api", "worker", "migrations"):
        assert f"COPY {package} ./{package}" in dockerfile
