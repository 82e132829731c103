"""/metrics on real Postgres and Redis: Postgres sums, broker queue depths, limiter waits."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator

import pytest
import redis
from celery import Celery
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import get_enqueuer
from api.metrics import QUEUES, SERIES
from tests.conftest import Services, clear_rate_limits
from tests.metrics_text import assert_matches_postgres, names, parse_samples, value
from tests.seed_dashboard import seed_dashboard
from tierroute.config import default_tier_table
from tierroute.llm.ratelimit import WAIT_SECONDS_KEY, WAITS_KEY, ModelLimits, RateLimiter
from tierroute.runtime import get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.keys import create_api_key, issue_key

pytestmark = pytest.mark.integration
TIERS = default_tier_table()


def _forget_queues_and_waits(broker_url: str) -> None:
    client = redis.Redis.from_url(broker_url)
    client.delete(*QUEUES, WAITS_KEY, WAIT_SECONDS_KEY)
    client.close()
    clear_rate_limits(broker_url)


@pytest.fixture
def client(clean_db: Services) -> Iterator[TestClient]:
    _forget_queues_and_waits(clean_db.broker_url)
    # /metrics needs an API key while TIERROUTE_METRICS_TOKEN is unset.
    scraper = {"Authorization": f"Bearer {issue_key(clean_db.database_url, 'scraper')}"}
    with TestClient(create_app(), headers=scraper) as test_client:
        yield test_client
    _forget_queues_and_waits(clean_db.broker_url)


def scrape(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse_samples(response.text)


def test_every_series_is_served_and_sums_match_postgres(
    client: TestClient, clean_db: Services
) -> None:
    with session_scope() as session:
        seed_dashboard(session, TIERS)
    assert client.get("/healthz").status_code == 200  # counted by this process's counter
    samples = scrape(client)
    assert value(samples, "tierroute_http_requests_total", method="GET", route="/healthz",
                 status="200") >= 1  # fmt: skip
    served = names(samples)
    for series in SERIES:
        if series == "tierroute_model_call_latency_seconds":
            assert f"{series}_bucket" in served
        else:
            assert series in served, series
    assert_matches_postgres(samples, clean_db.database_url)
    for source in ("postgres", "broker", "ratelimiter"):
        assert value(samples, "tierroute_scrape_source_up", source=source) == 1
    # A tier with no calls yet still has its series, at zero.
    assert value(samples, "tierroute_jobs_by_tier", status="dead", tier="opus") == 0


def test_queue_depth_is_read_from_the_broker(client: TestClient, clean_db: Services) -> None:
    with session_scope() as session:
        _, raw = create_api_key(session, "metrics")
    for i in range(3):  # the API sends each job to the classify queue; no worker runs here
        accepted = client.post(
            "/v1/jobs", json={"prompt": f"hello {i}"}, headers={"Authorization": f"Bearer {raw}"}
        )
        assert accepted.status_code == 202
    sender = Celery(broker=clean_db.broker_url)
    for _ in range(2):
        sender.send_task("tierroute.complete", args=[str(uuid.uuid4())], queue="opus")
    sender.close()
    samples = scrape(client)
    depths = {q: value(samples, "tierroute_queue_depth", queue=q) for q in QUEUES}
    assert depths == {"classify": 3, "haiku": 0, "sonnet": 0, "opus": 2}
    assert value(samples, "tierroute_jobs_by_tier", status="queued", tier="none") == 3


def test_rate_limiter_waits_from_any_process_are_counted(
    client: TestClient, clean_db: Services
) -> None:
    # A limiter of its own stands for a worker process: it shares only Redis with the API.
    conn = redis.Redis.from_url(clean_db.broker_url)
    haiku = TIERS.get("haiku").model
    limiter = RateLimiter(conn, {haiku: ModelLimits(rpm=6)})
    assert limiter.acquire(haiku, 10, 10).wait_s == 0
    waits = [limiter.acquire(haiku, 10, 10).wait_s for _ in range(2)]
    limiter.cooldown(haiku, 5)
    waits.append(limiter.acquire(haiku, 10, 10).wait_s)
    conn.close()
    assert all(w > 0 for w in waits)
    samples = scrape(client)
    labels = {"tier": "haiku", "model": haiku}
    assert value(samples, "tierroute_ratelimit_waits_total", limit="requests", **labels) == 2
    assert value(samples, "tierroute_ratelimit_waits_total", limit="cooldown", **labels) == 1
    seconds = value(samples, "tierroute_ratelimit_wait_seconds_total", limit="requests", **labels)
    assert seconds == pytest.approx(sum(waits[:2]), abs=0.01)
    opus = {"tier": "opus", "model": TIERS.get("opus").model}
    assert value(samples, "tierroute_ratelimit_waits_total", limit="output_tokens", **opus) == 0


class DownBroker:
    def queue_depths(self, queues: Iterable[str]) -> dict[str, int]:
        raise ConnectionError("broker is down")

    def close(self) -> None:
        pass


def test_a_source_that_cannot_be_read_is_reported_not_fatal(client: TestClient) -> None:
    client.app.dependency_overrides[get_enqueuer] = DownBroker  # type: ignore[attr-defined]
    get_runtime()
    samples = scrape(client)
    assert value(samples, "tierroute_scrape_source_up", source="broker") == 0
    assert value(samples, "tierroute_scrape_source_up", source="postgres") == 1
    assert "tierroute_queue_depth" not in names(samples)
    assert value(samples, "tierroute_jobs", status="succeeded") == 0
