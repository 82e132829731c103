"""Acceptance: the packaged local router on held-out MMLU (never trained on) and the rubric set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import IN_CI
from tierroute.cli.main import main
from tierroute.training.datasets import default_mmlu_dir, load_mmlu, mmlu_split

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mmlu_holdout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = default_mmlu_dir()
    if not directory.is_dir():
        if IN_CI:
            pytest.fail(f"CI needs the MMLU data at {directory} (../shared beside the repo)")
        pytest.skip(f"no MMLU data at {directory}")
    path = tmp_path_factory.mktemp("mmlu") / "holdout.jsonl"
    result = CliRunner().invoke(main, ["eval-data", "mmlu", "--out", str(path)])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(autouse=True)
def _packaged_router(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An empty router dir: the classifier uses the artifact shipped in the package.
    monkeypatch.setenv("TIERROUTE_ROUTER_DIR", str(tmp_path / "router"))
    for name in ("TIERROUTE_HAIKU_MAX_SCORE", "TIERROUTE_OPUS_MIN_SCORE"):
        monkeypatch.delenv(name, raising=False)


def test_the_heldout_split_is_fixed_and_never_trained_on(mmlu_holdout: Path) -> None:
    lines = [json.loads(line) for line in mmlu_holdout.read_text().splitlines()]
    assert 2500 < len(lines) < 3200  # a fifth of ~14,000
    assert all(mmlu_split(line["prompt"]) == "holdout" for line in lines)
    train = {row.prompt for row in load_mmlu(split="train")}
    assert not train & {line["prompt"] for line in lines}


def test_local_router_apgr_on_heldout_mmlu(mmlu_holdout: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["eval", "--dataset", str(mmlu_holdout), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["apgr"] >= 0.65, report
    assert report["random_apgr"] == pytest.approx(0.5, abs=0.03)
    assert report["oracle_apgr"] > 1.0
    assert 0 < report["cpt50"] < report["cpt80"] < 1
    assert report["configured"]["saved_pct"] > 0


def test_local_router_accuracy_on_the_heldout_rubric() -> None:
    result = CliRunner().invoke(main, ["eval-rubric", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["accuracy"] >= 0.85, report
    assert min(report["by_tier"].values()) >= 0.75, report
