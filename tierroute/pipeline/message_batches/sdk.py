"""The Message Batches calls through the SDK, with its errors mapped to ours."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import anthropic
import httpx2 as httpx  # the SDK's HTTP client package
from anthropic.types.messages import MessageBatch, MessageBatchIndividualResponse

from tierroute.domain.errors import RetryableProviderError
from tierroute.llm.provider import provider_error

T = TypeVar("T")
# Creating a batch uploads up to 256 MB; reading results streams as much back.
TRANSFER_TIMEOUT_S = 600.0
LIST_PAGE = 100


def _mapped(what: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except anthropic.APIStatusError as exc:
        raise provider_error(exc) from exc
    except anthropic.APITimeoutError as exc:
        raise RetryableProviderError(f"{what}: request timed out") from exc
    except anthropic.APIConnectionError as exc:
        raise RetryableProviderError(f"{what}: connection failed: {exc}") from exc


def create(client: anthropic.Anthropic, requests: list[dict[str, Any]]) -> MessageBatch:
    """POST /v1/messages/batches."""
    return _mapped(
        "create message batch",
        lambda: client.messages.batches.create(
            requests=requests,  # type: ignore[arg-type]  # the params of messages.create
            timeout=TRANSFER_TIMEOUT_S,
        ),
    )


def created_since(client: anthropic.Anthropic, since: datetime) -> Iterator[MessageBatch]:
    """GET /v1/messages/batches, newest first, down to the first created before `since`."""
    page = _mapped("list message batches", lambda: client.messages.batches.list(limit=LIST_PAGE))
    while True:
        for batch in page.data:
            if batch.created_at < since:
                return
            yield batch
        if not page.has_next_page():
            return
        page = _mapped("list message batches", page.get_next_page)


def retrieve(client: anthropic.Anthropic, batch_id: str) -> MessageBatch:
    """GET /v1/messages/batches/{id}."""
    return _mapped(f"retrieve {batch_id}", lambda: client.messages.batches.retrieve(batch_id))


def cancel(client: anthropic.Anthropic, batch_id: str) -> MessageBatch:
    """POST /v1/messages/batches/{id}/cancel."""
    return _mapped(f"cancel {batch_id}", lambda: client.messages.batches.cancel(batch_id))


def results(client: anthropic.Anthropic, batch_id: str) -> Iterator[MessageBatchIndividualResponse]:
    """The results file (JSONL), one response at a time, as it streams in."""
    decoder = _mapped(
        f"results of {batch_id}",
        lambda: client.messages.batches.results(batch_id, timeout=TRANSFER_TIMEOUT_S),
    )
    try:
        yield from decoder
    except (anthropic.APIError, httpx.HTTPError) as exc:
        raise RetryableProviderError(f"results of {batch_id}: stream broke: {exc}") from exc
