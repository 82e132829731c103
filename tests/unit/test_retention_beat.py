"""The classify worker's beat folds the rollups every few seconds, compacts them
hourly, and with TIERROUTE_RETENTION_DAYS also prunes hourly."""

from __future__ import annotations

import pytest

from tierroute.config import Settings
from tierroute.messages import (
    CLASSIFY_QUEUE,
    PARTITIONS_ENSURE,
    RETENTION_PRUNE,
    ROLLUP_COMPACT,
    ROLLUP_FOLD,
)
from tierroute.store.rollups import FOLD_EVERY_S
from worker.batch_tasks import RETENTION_EVERY_S, beat_schedule


def test_no_prune_without_retention() -> None:
    assert all(e["task"] != RETENTION_PRUNE for e in beat_schedule(5.0).values())


def test_rollups_compact_hourly_always() -> None:
    (entry,) = [e for e in beat_schedule(5.0).values() if e["task"] == ROLLUP_COMPACT]
    assert entry["schedule"] == 3600.0 and entry["options"]["queue"] == CLASSIFY_QUEUE


def test_prune_hourly_with_retention() -> None:
    (entry,) = [e for e in beat_schedule(5.0, 90).values() if e["task"] == RETENTION_PRUNE]
    assert entry["schedule"] == RETENTION_EVERY_S == 3600.0
    assert entry["options"]["queue"] == CLASSIFY_QUEUE


def test_retention_days_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERROUTE_RETENTION_DAYS", "0")
    with pytest.raises(ValueError):
        Settings()
    monkeypatch.setenv("TIERROUTE_RETENTION_DAYS", "90")
    assert Settings().retention_days == 90


def test_the_beat_folds_the_rollups_every_few_seconds() -> None:
    (entry,) = [e for e in beat_schedule(5.0).values() if e["task"] == ROLLUP_FOLD]
    assert entry["schedule"] == FOLD_EVERY_S <= 10
    assert entry["options"]["expires"] >= FOLD_EVERY_S


def test_the_beat_makes_the_coming_months_partitions_hourly() -> None:
    (entry,) = [e for e in beat_schedule(5.0).values() if e["task"] == PARTITIONS_ENSURE]
    assert entry["schedule"] == 3600.0 and entry["options"]["queue"] == CLASSIFY_QUEUE
