"""/metrics is for scrapers with a credential, and a scrape in the cache window runs no SQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from api.app import create_app
from tests.conftest import Services, clear_settings_caches
from tests.metrics_text import parse_samples, value
from tests.seed_dashboard import seed_dashboard
from tierroute.config import default_tier_table
from tierroute.store import engine as db
from tierroute.store.engine import session_scope
from tierroute.store.keys import create_api_key, revoke_api_key

pytestmark = pytest.mark.integration
TOKEN = "metrics-" + uuid.uuid4().hex  # 40 characters


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def assert_401(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "unauthorized"
    assert "tierroute_cost_usd_total" not in response.text


@pytest.fixture
def app_with(clean_db: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A started app under the given TIERROUTE_* settings."""
    clients: list[TestClient] = []

    def start(**settings: str) -> TestClient:
        for name, setting in settings.items():
            monkeypatch.setenv(f"TIERROUTE_{name.upper()}", setting)
        clear_settings_caches()
        client = TestClient(create_app())
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)
    clear_settings_caches()


def new_key() -> tuple[uuid.UUID, str]:
    with session_scope() as session:
        key, raw = create_api_key(session, "scraper")
    return key.id, raw


def test_without_a_token_setting_metrics_needs_an_active_api_key(app_with: Any) -> None:
    client = app_with()
    assert_401(client.get("/metrics"))
    assert_401(client.get("/metrics", headers=bearer("not-a-key")))
    key_id, raw = new_key()
    assert client.get("/metrics", headers=bearer(raw)).status_code == 200
    with session_scope() as session:
        assert revoke_api_key(session, key_id)
    client.app.state.key_cache._entries.clear()  # type: ignore[attr-defined]  # as after its TTL
    assert_401(client.get("/metrics", headers=bearer(raw)))


def test_with_a_token_only_the_token_may_scrape(app_with: Any) -> None:
    client = app_with(metrics_token=TOKEN)
    assert_401(client.get("/metrics"))
    assert_401(client.get("/metrics", headers=bearer(TOKEN[:-1] + "x")))
    # A tenant's API key does not see every tenant's spend.
    _, raw = new_key()
    assert_401(client.get("/metrics", headers=bearer(raw)))
    response = client.get("/metrics", headers=bearer(TOKEN))
    assert response.status_code == 200
    assert value(parse_samples(response.text), "tierroute_scrape_source_up", source="postgres")


def test_openapi_declares_the_metrics_credential(app_with: Any) -> None:
    schema = app_with().get("/openapi.json").json()
    assert schema["paths"]["/metrics"]["get"]["security"] == [{"MetricsToken": []}]
    assert "401" in schema["paths"]["/metrics"]["get"]["responses"]


class StatementCounter:
    """Counts SQL statements this process's engine sends."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)


@pytest.fixture
def statements(app_with: Any) -> Iterator[tuple[TestClient, StatementCounter]]:
    client = app_with(metrics_token=TOKEN, metrics_cache_s="3600")
    counter = StatementCounter()
    engine = db.get_engine()
    event.listen(engine, "before_cursor_execute", counter)
    yield client, counter
    event.remove(engine, "before_cursor_execute", counter)


def scrape(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics", headers=bearer(TOKEN))
    assert response.status_code == 200, response.text
    return parse_samples(response.text)


def test_a_scrape_within_the_cache_window_runs_no_sql(
    statements: tuple[TestClient, StatementCounter],
) -> None:
    client, counter = statements
    with session_scope() as session:
        seed_dashboard(session, default_tier_table())
    counter.statements.clear()
    first = scrape(client)
    # The rollups' fold, then the two aggregates, whatever the table size.
    assert 2 <= len(counter.statements) <= 3, counter.statements
    assert "tierroute_rollup_fold" in counter.statements[0]
    counter.statements.clear()
    for _ in range(5):
        again = scrape(client)
        assert counter.statements == []
        cost = {k: v for k, v in again.items() if k[0] == "tierroute_cost_usd_total"}
        assert cost == {k: v for k, v in first.items() if k[0] == "tierroute_cost_usd_total"}
    assert sum(v for k, v in first.items() if k[0] == "tierroute_cost_usd_total") > 0
