"""docker-compose.yml runs the real entry points (Docker itself cannot run here)."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import yaml

from api.metrics import SERIES
from tierroute.store.models import Base
from tierroute.store.rollups import ROLLUP_TABLES

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
    # Its login comes from the environment (FLOWER_BASIC_AUTH), never argv.
    assert SERVICES["flower"]["environment"]["FLOWER_BASIC_AUTH"].startswith(
        "${FLOWER_BASIC_AUTH:?"
    )
    assert _command("simulator")[:2] == ["tierroute", "sim"]
    assert SERVICES["simulator"]["profiles"] == ["sim"]


def test_apps_point_at_the_compose_postgres_and_redis() -> None:
    env = SERVICES["migrate"]["environment"]  # the shared app environment, as is
    assert env["TIERROUTE_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["TIERROUTE_DATABASE_URL"]
    assert env["TIERROUTE_BROKER_URL"] == "redis://redis:6379/0"
    for name in ("api", "worker-classify", "worker-tiers", "flower"):
        service_env = SERVICES[name]["environment"]
        assert {key: service_env[key] for key in env} == env


def test_the_image_installs_the_package_that_provides_the_commands() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install" in dockerfile
    for package in ("tierroute", "api", "worker", "migrations"):
        assert f"COPY {package} ./{package}" in dockerfile


# --- the optional Grafana profile and its dashboard -------------------------------

GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD: dict[str, Any] = json.loads((GRAFANA_DIR / "tierroute.json").read_text())


def _migration_views() -> set[str]:
    """Every view a migration creates: each module's VIEWS dict or CREATE VIEW statement."""
    views: set[str] = set()
    for path in sorted((ROOT / "migrations" / "versions").glob("*.py")):
        module = importlib.import_module(f"migrations.versions.{path.stem}")
        views |= set(getattr(module, "VIEWS", {}))
        views |= set(re.findall(r"CREATE (?:OR REPLACE )?VIEW (\w+)", path.read_text(), re.I))
    return views


def _mounted_sources(service: str) -> dict[str, Path]:
    """Container path → repo path of each bind mount of `service`."""
    mounts = {}
    for volume in SERVICES[service]["volumes"]:
        source, target = str(volume).split(":")[:2]
        mounts[target] = ROOT / source
    return mounts


def test_grafana_and_prometheus_are_an_optional_profile() -> None:
    for name in ("grafana", "prometheus"):
        assert SERVICES[name]["profiles"] == ["grafana"]
    grafana = _mounted_sources("grafana")
    assert grafana["/etc/grafana/provisioning"].is_dir()
    assert grafana["/var/lib/grafana/dashboards/tierroute.json"] == GRAFANA_DIR / "tierroute.json"
    prometheus_config = _mounted_sources("prometheus")["/etc/prometheus/prometheus.yml"]
    scrape = yaml.safe_load(prometheus_config.read_text())["scrape_configs"]
    assert scrape[0]["metrics_path"] == "/metrics"
    assert scrape[0]["static_configs"][0]["targets"] == ["api:8000"]
    # The default `docker compose up` starts neither.
    assert "profiles" not in SERVICES["api"] and "profiles" not in SERVICES["postgres"]


def test_the_dashboards_data_sources_are_provisioned() -> None:
    provisioning = GRAFANA_DIR / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "tierroute.yml").read_text())
    by_uid = {source["uid"]: source for source in sources["datasources"]}
    used = {panel["datasource"]["uid"] for panel in DASHBOARD["panels"]}
    assert used == set(by_uid) == {"tierroute-postgres", "tierroute-prometheus"}
    assert by_uid["tierroute-postgres"]["url"] == "postgres:5432"
    assert by_uid["tierroute-postgres"]["jsonData"]["database"] == "tierroute"
    providers = yaml.safe_load((provisioning / "dashboards" / "tierroute.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_dashboard_json_is_valid_with_unique_panels() -> None:
    assert DASHBOARD["uid"] and DASHBOARD["title"]
    panels = DASHBOARD["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels) >= 10
    for panel in panels:
        assert panel["title"] and panel["targets"] and panel["gridPos"]["w"] > 0


def test_dashboard_sql_reads_existing_views_and_tables() -> None:
    views = _migration_views()
    assert {"cost_by_tier_day", "savings", "tier_quality"} <= views
    # The ORM's tables, and the rollup tables the migrations keep (0009, 0016).
    tables = set(Base.metadata.tables) | set(ROLLUP_TABLES)
    used_views: set[str] = set()
    sql_panels = [p for p in DASHBOARD["panels"] if p["datasource"]["uid"] == "tierroute-postgres"]
    for panel in sql_panels:
        for target in panel["targets"]:
            sql = target["rawSql"]
            relations = set(re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", sql, re.I))
            assert relations, panel["title"]
            assert relations <= views | tables, (panel["title"], relations - views - tables)
            used_views |= relations & views
    # Every analyst view has a panel.
    assert used_views == {"cost_by_tier_day", "savings", "tier_quality"}


def test_dashboard_prometheus_queries_use_series_that_metrics_serves() -> None:
    served = set(SERIES)
    for panel in DASHBOARD["panels"]:
        if panel["datasource"]["uid"] != "tierroute-prometheus":
            continue
        for target in panel["targets"]:
            names = set(re.findall(r"\btierroute_\w+", target["expr"]))
            assert names, panel["title"]
            for name in names:
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                assert name in served or base in served, (panel["title"], name)


# --- no default passwords, nothing but the API on public interfaces -------------------

REQUIRED_VARIABLE = re.compile(r"^\$\{(\w+):\?[^}]+\}$")
SECRET_NAME = re.compile(r"PASSWORD|BASIC_AUTH|SECRET|TOKEN", re.I)
# Services whose port is meant for everyone: the API, with its own keys.
PUBLIC = {"api"}


def _environments() -> list[tuple[str, str, str]]:
    """(service, name, value) of every environment entry, the shared anchor included."""
    found = []
    for name, service in SERVICES.items():
        env = service.get("environment") or {}
        assert isinstance(env, dict), name  # the mapping form, so the checks see names
        found += [(name, key, str(value)) for key, value in env.items()]
    return found


def test_every_password_is_a_required_variable_without_a_default() -> None:
    secrets = [(s, k, v) for s, k, v in _environments() if SECRET_NAME.search(k)]
    assert {k for _, k, _ in secrets} >= {
        "POSTGRES_PASSWORD", "PGPASSWORD", "FLOWER_BASIC_AUTH", "GF_SECURITY_ADMIN_PASSWORD",
        "GRAFANA_DB_PASSWORD",
    }  # fmt: skip
    for service, key, value in secrets:
        assert REQUIRED_VARIABLE.match(value), (service, key, value)
    # The database URL's password is the same required variable, not a literal.
    url = SERVICES["api"]["environment"]["TIERROUTE_DATABASE_URL"]
    password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert password == SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"]
    # And no `${VAR:-default}` anywhere fills one in.
    text = (ROOT / "docker-compose.yml").read_text()
    for variable in re.findall(r"\$\{(\w+):-", text):
        assert not SECRET_NAME.search(variable), variable


def test_every_required_variable_is_in_the_env_example() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^(\w+)=", example, re.M))
    assert required <= listed, required - listed
    # An example, not a place for real values.
    assert all(line.endswith("=") for line in example.splitlines() if re.match(r"\w+=", line))


def test_only_the_api_publishes_beyond_localhost() -> None:
    published = {name: s["ports"] for name, s in SERVICES.items() if s.get("ports")}
    assert {"api", "flower", "grafana", "prometheus", "simulator"} <= set(published)
    for name, ports in published.items():
        if name in PUBLIC:
            continue
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_no_password_is_on_a_command_line() -> None:
    for name, service in SERVICES.items():
        for part in (str(p) for p in service.get("command") or []):
            assert "basic-auth" not in part and "password" not in part.lower(), (name, part)
            for variable in re.findall(r"\$\{(\w+)", part):
                assert not SECRET_NAME.search(variable), (name, part)


def test_grafana_reads_postgres_as_the_read_only_role() -> None:
    provisioning = GRAFANA_DIR / "provisioning" / "datasources" / "tierroute.yml"
    sources = yaml.safe_load(provisioning.read_text())["datasources"]
    postgres = next(s for s in sources if s["uid"] == "tierroute-postgres")
    owner = SERVICES["postgres"]["environment"]["POSTGRES_USER"]
    assert postgres["user"] == "tierroute_readonly" != owner  # the owner is the superuser
    assert postgres["secureJsonData"]["password"] == "${GRAFANA_DB_PASSWORD}"
    grafana = SERVICES["grafana"]
    assert REQUIRED_VARIABLE.match(grafana["environment"]["GRAFANA_DB_PASSWORD"])
    # The role exists before Grafana starts: the one-off runs the script after migrate.
    assert grafana["depends_on"]["grafana-db-role"]["condition"] == (
        "service_completed_successfully"
    )
    role = SERVICES["grafana-db-role"]
    assert role["profiles"] == ["grafana"] and role["restart"] == "no"
    assert role["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    script = _mounted_sources("grafana-db-role")["/sql/grafana-readonly.sql"]
    assert _command("grafana-db-role")[-1] == "/sql/grafana-readonly.sql"
    assert "CREATE ROLE tierroute_readonly" in script.read_text()
