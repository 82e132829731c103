"""A feeder round that never ends is reported with the stack it is stuck in."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from tierroute.pipeline.feeder import Feeder, report_stalls, start_feeder_thread


def test_a_stuck_round_is_logged_once_with_where_it_is_stuck(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()

    def broker_call_that_never_returns() -> int:
        release.wait(10)
        return 1_000_000  # a full queue: the round then sends nothing

    feeder = Feeder(send_many=lambda ids: None, queue_depth=broker_call_that_never_returns)
    caplog.set_level(logging.ERROR, logger="tierroute.pipeline.feeder")
    thread, stop = start_feeder_thread(feeder)
    reporter = threading.Thread(
        target=report_stalls, args=(feeder, thread, stop), kwargs={"after_s": 0.3, "every_s": 0.05}
    )
    reporter.start()
    try:
        time.sleep(1.0)
        stalls = [r.getMessage() for r in caplog.records if "one round has run" in r.getMessage()]
        assert len(stalls) == 1, stalls  # once per stuck round, not every check
        assert "broker_call_that_never_returns" in stalls[0]
        assert feeder.round_began is not None
    finally:
        release.set()
        stop.set()
        thread.join(5)
        reporter.join(5)
    assert feeder.round_began is None  # the round ended


def test_rounds_that_end_are_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    feeder = Feeder(send_many=lambda ids: None, queue_depth=lambda: 1_000_000, idle_sleep_s=0.01)
    caplog.set_level(logging.ERROR, logger="tierroute.pipeline.feeder")
    thread, stop = start_feeder_thread(feeder)
    reporter = threading.Thread(
        target=report_stalls, args=(feeder, thread, stop), kwargs={"after_s": 0.2, "every_s": 0.02}
    )
    reporter.start()
    time.sleep(0.8)
    stop.set()
    thread.join(5)
    reporter.join(5)
    assert not [r for r in caplog.records if "one round has run" in r.getMessage()]
