"""The leave-one-source-out report: the local router judged on sources it was not built from."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.conftest import IN_CI
from tierroute.cli.main import main
from tierroute.training.sources import SOURCE_NAMES, default_data_dir

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def report() -> dict[str, dict[str, float]]:
    if not (default_data_dir() / "alpaca-eval").is_dir():
        if IN_CI:
            pytest.fail(f"CI needs the labelled sources in {default_data_dir()}")
        pytest.skip(f"no labelled sources in {default_data_dir()}")
    out = CliRunner().invoke(main, ["eval", "--cross-source", "--json"])
    assert out.exit_code == 0, out.output
    return dict(json.loads(out.output))


def test_every_source_is_left_out_once(report: dict[str, dict[str, float]]) -> None:
    assert tuple(report) == SOURCE_NAMES
    for row in report.values():
        assert {
            "apgr",
            "cpt50",
            "length_apgr",
            "random_apgr",
            "margin_over_length",
            "margin_sd",
            "above_length_share",
        } <= set(row)
        assert row["prompts"] > 100


def test_left_out_sources_rank_above_random_and_above_length(
    report: dict[str, dict[str, float]],
) -> None:
    # Issue 13's line: on every source left out, above both random and prompt length.
    # The margins are small (docs/routing.md says how small against their noise), and
    # training is deterministic, so a change that loses one fails here.
    for name, row in report.items():
        assert row["apgr"] > row["random_apgr"] + 0.005, (name, row)
        assert row["margin_over_length"] > 0, (name, row)


def test_cross_source_text_names_the_baselines() -> None:
    if not (default_data_dir() / "alpaca-eval").is_dir() and not IN_CI:
        pytest.skip("no labelled sources")
    out = CliRunner().invoke(main, ["eval", "--cross-source"])
    assert out.exit_code == 0, out.output
    for text in ("left out", "APGR", "length", "random", "± sd", "CPT(50%)", *SOURCE_NAMES):
        assert text in out.output


def test_eval_needs_a_dataset_or_cross_source() -> None:
    out = CliRunner().invoke(main, ["eval"])
    assert out.exit_code == 2 and "--cross-source" in out.output
