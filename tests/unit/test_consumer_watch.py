"""The consumer watch's judgement: when waiting messages mean a stuck consumer."""

from __future__ import annotations

from worker.consumer_watch import StallDetector


def test_it_fires_only_after_a_full_window_of_waiting_with_room_and_nothing_taken() -> None:
    detector = StallDetector(stall_s=30)
    assert not detector.observe(0, waiting=5, room=4, accepted=7)  # first look: a baseline
    assert not detector.observe(1, waiting=5, room=4, accepted=7)  # the window opens
    assert not detector.observe(30, waiting=5, room=4, accepted=7)
    assert detector.observe(31, waiting=5, room=4, accepted=7)
    # Having fired, it waits a whole new window before firing again.
    assert not detector.observe(32, waiting=5, room=4, accepted=7)
    assert not detector.observe(61, waiting=5, room=4, accepted=7)
    assert detector.observe(62, waiting=5, room=4, accepted=7)


def test_a_taken_message_an_empty_queue_or_a_full_worker_closes_the_window() -> None:
    for interruption in (
        {"waiting": 5, "room": 4, "accepted": 8},  # the consumer took one
        {"waiting": 0, "room": 4, "accepted": 7},  # nothing waits
        {"waiting": 5, "room": 0, "accepted": 7},  # every thread is busy
    ):
        detector = StallDetector(stall_s=30)
        detector.observe(0, waiting=5, room=4, accepted=7)
        detector.observe(1, waiting=5, room=4, accepted=7)
        assert not detector.observe(20, **interruption)
        assert not detector.observe(40, waiting=5, room=4, accepted=interruption["accepted"])
        assert not detector.observe(69, waiting=5, room=4, accepted=interruption["accepted"])
        assert detector.observe(71, waiting=5, room=4, accepted=interruption["accepted"])


def test_reset_forgets_the_window_so_far() -> None:
    detector = StallDetector(stall_s=30)
    detector.observe(0, waiting=5, room=4, accepted=7)
    detector.observe(1, waiting=5, room=4, accepted=7)
    detector.reset()  # the broker was away: its outage is not the consumer's stall
    assert not detector.observe(40, waiting=5, room=4, accepted=7)
    assert detector.observe(70, waiting=5, room=4, accepted=7)
