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
