"""The job state machine: its table, the SQL that moves jobs, and that nothing else does."""

from __future__ import annotations

import importlib.util
import itertools
import re
from pathlib import Path

import pytest

from tierroute.domain.status import (
    FINISHED,
    IN_FLIGHT,
    MOVES,
    NOT_STARTED,
    IllegalMove,
    JobStatus,
    check_moves,
    may_move,
)
from tierroute.store import transitions
from tierroute.store.models import STATUS_LIST
from tierroute.store.transitions import Move

ROOT = Path(__file__).resolve().parents[2]
# Where a job's status could be changed: the package and its two adapters.
SOURCES = [ROOT / "tierroute", ROOT / "api", ROOT / "worker"]
TRANSITIONS_MODULE = ROOT / "tierroute" / "store" / "transitions.py"

SET_STATUS = re.compile(r"\bSET\s+status\s*=\s*(?:'(?P<literal>\w+)'|%\((?P<param>\w+)\)s)")
# A status compared in SQL: `status = 'x'`, `j.status IN ('x', 'y')`, `(status = 'x') IS TRUE`.
STATUS_TEST = re.compile(r"\bstatus\s*(?:=|IN)\s*(\('[^)]*\)|'\w+'|%\(\w+\)s)", re.IGNORECASE)
UPDATE_JOBS = re.compile(r"UPDATE\s+jobs\s+SET\s+(?P<assignments>.*?)\bWHERE\b", re.S)
# `.values(..., status=...)` (an ORM update), or a statement `job.status = ...`.
ORM_STATUS = re.compile(
    r"\.values\([^;]{0,400}?\bstatus\s*=(?!=)|^\s*[\w\[\]]+(?:\.\w+)*\.status\s*=(?!=)", re.M
)


def _where(sql: str) -> str:
    """The statement after its `SET status = ...`: what the job must be to move."""
    found = SET_STATUS.search(sql)
    assert found is not None, sql
    return sql[found.end() :]


def _literals(match: str) -> set[str]:
    return set(re.findall(r"'(\w+)'", match))


SQL_MOVES = {name: move for name, move in transitions.STATEMENTS.items() if move.sql}


def test_every_status_has_its_moves_and_the_finished_ones_none_but_a_redrive() -> None:
    assert set(MOVES) == set(JobStatus)
    assert MOVES[JobStatus.SUCCEEDED] == MOVES[JobStatus.CANCELLED] == frozenset()
    assert MOVES[JobStatus.FAILED] == MOVES[JobStatus.DEAD] == {JobStatus.QUEUED}
    assert {s for s in JobStatus if s.finished} == FINISHED


def test_every_status_is_reachable_from_queued_and_every_job_can_finish() -> None:
    seen, frontier = {JobStatus.QUEUED}, [JobStatus.QUEUED]
    while frontier:
        for target in MOVES[frontier.pop()] - seen:
            seen.add(target)
            frontier.append(target)
    assert seen == set(JobStatus)
    for status in set(JobStatus) - FINISHED:
        reach, frontier = set(), [status]
        while frontier:
            for target in MOVES[frontier.pop()] - reach:
                reach.add(target)
                frontier.append(target)
        assert reach & FINISHED, f"{status} can never finish"


def test_the_main_line_and_its_exits_are_allowed_and_nothing_skips_ahead() -> None:
    line = ["queued", "classifying", "routed", "running", "succeeded"]
    assert all(may_move(a, b) for a, b in itertools.pairwise(line))
    assert all(may_move(s, JobStatus.CANCELLED) for s in NOT_STARTED)
    assert may_move("running", "dead") and may_move("dead", "queued")
    for source, target in [
        ("queued", "running"),  # never answered without a tier
        ("classifying", "running"),
        ("queued", "succeeded"),
        ("succeeded", "queued"),  # a success is never re-run
        ("cancelled", "queued"),
        ("failed", "running"),
        ("routed", "classifying"),  # a routed job is not classified again
    ]:
        assert not may_move(source, target), f"{source} → {target}"
    with pytest.raises(IllegalMove, match="succeeded → queued"):
        check_moves([JobStatus.SUCCEEDED], [JobStatus.QUEUED])


def test_a_move_the_table_forbids_cannot_even_be_declared() -> None:
    with pytest.raises(IllegalMove):
        Move((JobStatus.QUEUED,), (JobStatus.RUNNING,), "UPDATE jobs SET status = 'running'")
    with pytest.raises(IllegalMove):
        Move((JobStatus.CANCELLED, JobStatus.FAILED), (JobStatus.QUEUED,))


@pytest.mark.parametrize("name", sorted(SQL_MOVES))
def test_each_statement_moves_exactly_between_the_statuses_it_declares(name: str) -> None:
    move = SQL_MOVES[name]
    sql = move.sql or ""
    assert len(SET_STATUS.findall(sql)) == 1, "one status assignment per statement"
    target = SET_STATUS.search(sql)
    assert target is not None
    if target["literal"]:
        assert {target["literal"]} == set(move.targets)
    else:  # a parameter, checked by the move's function (Move.check_target)
        assert target["param"] == "status" and len(move.targets) > 1
    tests = STATUS_TEST.findall(_where(sql))
    assert tests, "a move names the statuses it takes jobs from"
    literal = set().union(*(_literals(t) for t in tests))
    if literal:
        assert literal == set(move.sources)
        assert all(may_move(s, t) for s in literal for t in move.targets)
    else:  # `status = %(from_status)s`, checked by the move's function (Move.check_source)
        assert tests == ["%(from_status)s"]


def test_finish_and_the_batch_moves_refuse_a_status_they_do_not_declare() -> None:
    assert transitions.FINISH.check_target(JobStatus.DEAD) == "dead"
    with pytest.raises(ValueError):
        transitions.FINISH.check_target(JobStatus.QUEUED)
    with pytest.raises(ValueError):
        transitions.BATCH_END.check_source(JobStatus.QUEUED)


def _python_files() -> list[Path]:
    return sorted(p for root in SOURCES for p in root.rglob("*.py"))


def test_no_module_but_transitions_changes_a_jobs_status() -> None:
    offenders = []
    for path in _python_files():
        if path == TRANSITIONS_MODULE:
            continue
        text = path.read_text(encoding="utf-8")
        for update in UPDATE_JOBS.finditer(text):
            if re.search(r"\bstatus\s*=", update["assignments"]):
                offenders.append(f"{path.relative_to(ROOT)}: {update.group(0)[:60]!r}")
        # The ORM: `.values(status=...)` on an update, or `job.status = ...`.
        for orm in ORM_STATUS.finditer(text):
            offenders.append(f"{path.relative_to(ROOT)}: {orm.group(0)[:60]!r}")
    assert offenders == []


def test_this_guard_sees_a_status_change_outside_transitions() -> None:
    sql = "X = '''\n    UPDATE jobs SET error = NULL, status = 'queued'\n     WHERE id = 1\n'''"
    assert any(re.search(r"\bstatus\s*=", u["assignments"]) for u in UPDATE_JOBS.finditer(sql))
    orm = "    update(Job).values(\n        error=None, status=JobStatus.QUEUED\n    )\n"
    assert ORM_STATUS.search(orm) and ORM_STATUS.search("        job.status = JobStatus.DEAD\n")
    for harmless in ("     WHERE j.status = 'succeeded'", "    if job.status == 'dead':"):
        assert not ORM_STATUS.search(harmless)


def test_every_status_named_in_sql_is_one_of_the_machines() -> None:
    named: dict[str, set[str]] = {}
    for path in _python_files():
        for test in STATUS_TEST.findall(path.read_text(encoding="utf-8")):
            for status in _literals(test):
                named.setdefault(status, set()).add(str(path.relative_to(ROOT)))
    unknown = {s: where for s, where in named.items() if s not in set(JobStatus)}
    assert unknown == {}
    assert "routed" in named  # the scan does read the SQL


def test_budgets_count_every_job_in_flight() -> None:
    from tierroute.pipeline import budgets

    for sql in (budgets.COMMITTED, budgets.UNRESERVED):
        assert _literals(STATUS_TEST.findall(sql)[0]) == set(IN_FLIGHT)


def test_the_latest_migration_allows_exactly_the_machines_statuses() -> None:
    statuses = None
    for path in sorted((ROOT / "migrations" / "versions").glob("[0-9]*.py")):
        spec = importlib.util.spec_from_file_location(f"migration_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        migration = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(migration)
        statuses = getattr(migration, "STATUSES", statuses)
    # A new status needs a migration that widens ck_jobs_status_known.
    assert statuses == STATUS_LIST
    assert _literals(statuses) == set(JobStatus)
