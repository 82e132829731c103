"""The simulator's Message Batches list: newest first, paged as the API's spec says."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import pytest

from tierroute.devstack.simulator import SimulatorConfig, serve_in_thread

HAIKU = "claude-haiku-4-5"


@pytest.fixture
def client() -> Iterator[anthropic.Anthropic]:
    with (
        serve_in_thread(SimulatorConfig(batch_processing_s=0)) as running,
        anthropic.Anthropic(api_key="x", base_url=running.base_url, max_retries=0) as sdk,
    ):
        yield sdk


def create(client: anthropic.Anthropic, n: int) -> str:
    params = {"model": HAIKU, "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}
    batch = client.messages.batches.create(
        requests=[{"custom_id": f"r{n}", "params": params}]  # type: ignore[list-item]
    )
    return batch.id


def test_batches_list_newest_first_page_by_page(client: anthropic.Anthropic) -> None:
    made = [create(client, n) for n in range(5)]
    first = client.messages.batches.list(limit=2)
    assert [b.id for b in first.data] == made[:-3:-1]
    assert first.has_more and first.last_id == made[-2]
    # The SDK follows after_id to the older pages.
    assert [b.id for b in client.messages.batches.list(limit=2)] == made[::-1]
    newer = client.messages.batches.list(before_id=made[1], limit=2)
    assert [b.id for b in newer.data] == [made[3], made[2]] and newer.has_more
    assert [b.id for b in client.messages.batches.list(after_id=made[1]).data] == [made[0]]


def test_a_limit_out_of_range_is_refused(client: anthropic.Anthropic) -> None:
    url = f"{str(client.base_url).rstrip('/')}/v1/messages/batches"
    assert httpx.get(url, params={"limit": 1}).status_code == 200
    response = httpx.get(url, params={"limit": 0})
    assert response.status_code == 400
