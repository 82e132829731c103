"""Result streams build their pages a few at a time, across all streams: many readers
starting together must not keep a thread each busy turning rows into JSON, since every
other request (/healthz too) then waits its turn for the GIL behind all of them. Found
by the adversarial run (bench/adversarial.py), where its readers stalled /healthz."""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import ExitStack

import pytest

from api.results_stream import PAGE_READERS
from tests.integration.test_results_stream import Api, api, park  # noqa: F401 (fixture)
from tierroute.store.results import Page, PageKey, read_page

pytestmark = pytest.mark.integration

STREAMS = 8


class ConcurrencySpy:
    """Calls the real read_page, counting how many run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = self.peak = self.calls = 0

    def __call__(self, batch_id: uuid.UUID, after: PageKey | None) -> Page:
        with self.lock:
            self.running += 1
            self.calls += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(0.2)  # long enough that every stream's first page would overlap
            return read_page(batch_id, after)
        finally:
            with self.lock:
                self.running -= 1


def test_streams_build_at_most_page_readers_pages_at_once(
    api: Api,  # noqa: F811 (the fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = ConcurrencySpy()
    monkeypatch.setattr("api.results_stream.read_page", spy)
    with ExitStack() as stack:
        for _ in range(STREAMS):
            stack.callback(park(api).close)
        # Each parked stream builds its first page (then waits for its reader).
        deadline = time.monotonic() + 30
        while spy.calls < STREAMS and time.monotonic() < deadline:
            time.sleep(0.05)
        assert spy.calls >= STREAMS
    assert 1 <= spy.peak <= PAGE_READERS < STREAMS
