"""docker-compose.yml: Prometheus sends the metrics token that the API requires."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def test_prometheus_sends_the_token_the_api_requires() -> None:
    api_env = SERVICES["api"]["environment"]
    # Required (`:?`): a compose deployment never serves /metrics to API keys by default.
    assert api_env["TIERROUTE_METRICS_TOKEN"].startswith("${TIERROUTE_METRICS_TOKEN:?")
    assert COMPOSE["secrets"]["metrics_token"] == {"environment": "TIERROUTE_METRICS_TOKEN"}
    assert SERVICES["prometheus"]["secrets"] == ["metrics_token"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["prometheus"]["volumes"]}
    config = yaml.safe_load((ROOT / mounts["/etc/prometheus/prometheus.yml"]).read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"] == {
        "type": "Bearer",
        "credentials_file": "/run/secrets/metrics_token",  # where compose mounts a secret
    }


def test_pgbouncer_runs_in_transaction_mode_before_the_compose_postgres() -> None:
    bouncer = SERVICES["pgbouncer"]
    assert bouncer["profiles"] == ["pgbouncer"]  # opt-in, with the overlay below
    assert bouncer["image"].startswith("edoburu/pgbouncer:v1.")
    env = bouncer["environment"]
    assert env["POOL_MODE"] == "transaction"
    target = (env["DB_HOST"], env["DB_NAME"], env["DB_USER"])
    assert target == ("postgres", "tierroute", "tierroute")
    assert env["DB_PASSWORD"] == SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"]
    # Fewer server connections than a default Postgres has, with room for the rest.
    assert int(env["MAX_DB_CONNECTIONS"]) <= 45
    assert bouncer["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_overlay_sends_api_and_workers_through_pgbouncer_without_prepares() -> None:
    overlay = yaml.safe_load((ROOT / "docker-compose.pgbouncer.yml").read_text())["services"]
    assert set(overlay) == {"api", "worker-classify", "worker-tiers"}
    direct = SERVICES["migrate"]["environment"]["TIERROUTE_DATABASE_URL"]
    for name, service in overlay.items():
        env = service["environment"]
        # The same credentials and database as the direct URL, on pgbouncer's port.
        bounced = direct.replace("@postgres:5432/", "@pgbouncer:5432/")
        assert env["TIERROUTE_DATABASE_URL"] == bounced, name
        assert env["TIERROUTE_DB_PREPARED_STATEMENTS"] == "false", name
        assert service["depends_on"]["pgbouncer"]["condition"] == "service_started"
