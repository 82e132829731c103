"""Job and batch ids are UUIDv7: valid, unique, and ordered by creation time."""

from __future__ import annotations

import time
import uuid

from tierroute.domain.ids import uuid7


def test_a_uuid7_is_a_valid_version_7_rfc_uuid() -> None:
    made = uuid7()
    assert made.version == 7 and made.variant == uuid.RFC_4122
    assert uuid.UUID(str(made)) == made


def test_its_first_48_bits_are_the_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    made = uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= made.int >> 80 <= after


def test_ids_made_a_millisecond_apart_sort_in_that_order() -> None:
    first = uuid7()
    time.sleep(0.002)
    assert uuid7() > first


def test_a_hundred_thousand_ids_are_distinct() -> None:
    assert len({uuid7() for _ in range(100_000)}) == 100_000
