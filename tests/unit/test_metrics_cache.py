"""AggregateCache: one Postgres read per window, shared by scrapers that arrive together."""

from __future__ import annotations

import threading

import pytest

from tierroute.config import Settings
from tierroute.store.aggregates import AggregateCache, Aggregates

FIGURES = Aggregates(jobs={("succeeded", "haiku"): 3}, calls=[])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class BlockingRead:
    """Stands for the aggregate query: counts reads and holds each until released."""

    def __init__(self) -> None:
        self.reads = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail: Exception | None = None

    def __call__(self) -> Aggregates:
        self.reads += 1
        self.started.set()
        assert self.release.wait(10)
        if self.fail is not None:
            raise self.fail
        return FIGURES


def test_concurrent_scrapes_share_one_read() -> None:
    read = BlockingRead()
    cache = AggregateCache(read, max_age_s=10, clock=Clock())
    got: list[Aggregates] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get())) for _ in range(32)]
    for thread in threads:
        thread.start()
    assert read.started.wait(10)
    read.release.set()
    for thread in threads:
        thread.join(10)
    assert read.reads == 1
    assert got == [FIGURES] * 32


def test_reads_again_only_after_the_window() -> None:
    read, clock = BlockingRead(), Clock()
    read.release.set()
    cache = AggregateCache(read, max_age_s=10, clock=clock)
    for _ in range(5):
        assert cache.get() is FIGURES
    clock.now += 9.9
    cache.get()
    assert read.reads == 1
    clock.now += 0.2
    cache.get()
    assert read.reads == 2


def test_a_stale_value_is_served_while_another_scrape_reads() -> None:
    read, clock = BlockingRead(), Clock()
    read.release.set()
    cache = AggregateCache(read, max_age_s=10, clock=clock)
    cache.get()
    clock.now += 60
    read.release.clear()
    read.started.clear()
    refresher = threading.Thread(target=cache.get)
    refresher.start()
    assert read.started.wait(10)
    assert cache.get() is FIGURES  # does not wait for the refresher's read
    read.release.set()
    refresher.join(10)
    assert read.reads == 2


def test_a_failed_read_is_raised_and_remembered_for_the_window() -> None:
    read, clock = BlockingRead(), Clock()
    read.release.set()
    read.fail = ConnectionError("postgres is down")
    cache = AggregateCache(read, max_age_s=10, clock=clock)
    for _ in range(3):
        with pytest.raises(ConnectionError):
            cache.get()
    assert read.reads == 1
    read.fail = None
    clock.now += 11
    assert cache.get() is FIGURES


def test_zero_window_reads_on_every_scrape() -> None:
    read = BlockingRead()
    read.release.set()
    cache = AggregateCache(read, max_age_s=0, clock=Clock())
    cache.get()
    cache.get()
    assert read.reads == 2


def test_metrics_token_settings() -> None:
    assert Settings(metrics_token="").metrics_token is None  # type: ignore[arg-type]
    assert Settings().metrics_cache_s > 0
    with pytest.raises(ValueError, match="at least 16"):
        Settings(metrics_token="short")  # type: ignore[arg-type]
    token = Settings(metrics_token="x" * 32).metrics_token  # type: ignore[arg-type]
    assert token is not None and token.get_secret_value() == "x" * 32
