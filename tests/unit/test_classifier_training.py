"""`tierroute train`, `calibrate`, `eval`, `eval-data` and `eval-rubric` through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tierroute.classify import artifacts, build_local
from tierroute.cli.main import main
from tierroute.config import Settings, default_tier_table
from tierroute.domain.decisions import ScoreThresholds
from tierroute.training.calibration import for_quality, shares_of, thresholds_for_shares
from tierroute.training.datasets import EvalItem, load_rubric, mmlu_split
from tierroute.training.feedback import RatedJob, promotion_verdict, rating_examples

TIERS = default_tier_table()
QUALITY = {"haiku": {"haiku": 1.0, "sonnet": 1.0, "opus": 1.0},
           "sonnet": {"haiku": 0.2, "sonnet": 0.9, "opus": 1.0},
           "opus": {"haiku": 0.0, "sonnet": 0.3, "opus": 1.0}}  # fmt: skip


@pytest.fixture
def router_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "router"
    monkeypatch.setenv("TIERROUTE_ROUTER_DIR", str(root))
    monkeypatch.delenv("TIERROUTE_DATABASE_URL", raising=False)
    return root


@pytest.fixture
def eval_file(tmp_path: Path) -> Path:
    """Held-out rubric prompts graded by tier: a cheap tier fails the harder prompts."""
    path = tmp_path / "eval.jsonl"
    items = load_rubric("holdout")[:90]
    path.write_text(
        "\n".join(json.dumps({"prompt": i.prompt, "quality": QUALITY[i.tier]}) for i in items)
    )
    return path


def test_promotion_refuses_a_worse_version_and_says_why() -> None:
    ok, why = promotion_verdict(
        {"rubric_accuracy": 0.80, "mmlu_apgr": 0.70}, {"rubric_accuracy": 0.90, "mmlu_apgr": 0.69}
    )
    assert not ok and "0.7500 < current 0.7950" in why and "rubric_accuracy 0.8000 vs 0.9000" in why
    assert promotion_verdict({"rubric_accuracy": 0.9}, {"rubric_accuracy": 0.9})[0]
    assert promotion_verdict({"rubric_accuracy": 0.5}, {})[0]  # nothing to compare with


def test_ratings_teach_the_next_tier_up_or_confirm_a_cheap_one() -> None:
    jobs = [
        RatedJob("a", "p1", 1, 0.1, 1),  # haiku, unhappy: needed sonnet
        RatedJob("b", "p2", 2, 0.2, 2),  # sonnet, unhappy: needed opus
        RatedJob("c", "p3", 1, 0.9, 1),  # haiku, happy: haiku is enough
        RatedJob("d", "p4", 3, 0.1, 1),  # opus, unhappy: nothing stronger to learn
        RatedJob("e", "p5", 3, 1.0, 1),  # opus, happy: says nothing about cheaper tiers
        RatedJob("f", "p6", 2, 0.6, 1),  # lukewarm: no lesson
    ]
    lessons = {e.prompt: e.target for e in rating_examples(jobs, top_rank=3)}
    assert lessons == {"p1": 0.5, "p2": 1.0, "p3": 0.0}


def test_train_promotes_then_refuses_a_worse_version(router_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["train", "--no-mmlu", "--no-ratings", "--force", "--json"])
    assert first.exit_code == 0, first.output
    good = json.loads(first.output)
    assert good["promoted"] and (router_dir / "versions" / f"{good['version']}.npz").exists()
    assert artifacts.promoted(router_dir)["version"] == good["version"]  # type: ignore[index]
    # Labels that contradict the rubric: every training prompt on the wrong tier, twice.
    flipped = {"haiku": "opus", "sonnet": "haiku", "opus": "haiku"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        "\n".join(
            json.dumps({"prompt": i.prompt, "tier": flipped[i.tier]})
            for i in load_rubric("train") * 2
        )
    )
    second = runner.invoke(main, ["train", "--no-mmlu", "--no-ratings", "--labels", str(bad)])
    assert second.exit_code == 2, second.output
    assert "NOT promoted" in second.output and "held-out average" in second.output
    assert artifacts.promoted(router_dir)["version"] == good["version"]  # type: ignore[index]
    # The classifier loads the promoted version, not the packaged one.
    assert build_local(Settings(), TIERS).version == good["version"]


def test_thresholds_for_shares_hit_the_targets() -> None:
    scores = np.random.default_rng(1).random(1000)
    th = thresholds_for_shares(scores, haiku_share=0.5, opus_share=0.2)
    shares = shares_of(scores, th)
    assert shares == {"1": 0.5, "2": 0.3, "3": 0.2}
    assert th.source == "calibrated"
    with pytest.raises(ValueError):
        thresholds_for_shares(scores, 0.7, 0.5)
    assert shares_of(scores, thresholds_for_shares(scores, 1.0, 0.0))["1"] == 1.0


def test_calibrate_for_quality_keeps_the_target_cheaply() -> None:
    model = artifacts.load_packaged()
    items = [EvalItem(i.prompt, QUALITY[i.tier]) for i in load_rubric("holdout")]
    result = for_quality(model, items, TIERS, target=0.95, output_tokens=300)
    assert result.details["quality"] >= 0.95 * result.details["quality_if_all_top"]
    assert result.details["cost_usd"] < result.details["cost_if_all_top_usd"]


def test_calibrate_cli_writes_thresholds_the_classifier_reads(
    router_dir: Path, eval_file: Path
) -> None:
    out = CliRunner().invoke(
        main, ["calibrate", "--quality-target", "0.9", "--dataset", str(eval_file)]
    )
    assert out.exit_code == 0, out.output
    assert "haiku_max_score" in out.output and "written to" in out.output
    written = json.loads((router_dir / "thresholds.json").read_text())
    local = build_local(Settings(), TIERS)
    assert local.thresholds == ScoreThresholds(
        written["haiku_max_score"], written["opus_min_score"], "calibrated"
    )


def test_calibrate_by_shares_needs_a_database(router_dir: Path) -> None:
    out = CliRunner().invoke(main, ["calibrate", "--haiku-share", "0.5", "--opus-share", "0.2"])
    assert out.exit_code == 1 and "TIERROUTE_DATABASE_URL" in out.output


def test_eval_json_and_plot(router_dir: Path, eval_file: Path, tmp_path: Path) -> None:
    plot = tmp_path / "curve.png"
    out = CliRunner().invoke(
        main, ["eval", "--dataset", str(eval_file), "--json", "--plot", str(plot)]
    )
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert {"apgr", "cpt50", "cpt80", "random_apgr", "length_apgr", "oracle_apgr", "points"} <= set(
        report
    )
    assert 0 < report["length_apgr"] < report["oracle_apgr"]
    assert report["apgr"] > report["random_apgr"]
    assert len(report["points"]) == 21 and report["points"][-1]["strong_share"] == 1.0
    assert report["configured"]["saved_pct"] > 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_text_names_the_figures(router_dir: Path, eval_file: Path) -> None:
    out = CliRunner().invoke(main, ["eval", "--dataset", str(eval_file)])
    assert out.exit_code == 0, out.output
    for text in (
        "APGR",
        "CPT(50%)",
        "CPT(80%)",
        "prompt length",
        "random",
        "oracle",
        "saved",
        "strong calls",
    ):
        assert text in out.output


def test_eval_refuses_a_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "hi", "quality": {"haiku": 1}}\n')
    out = CliRunner().invoke(main, ["eval", "--dataset", str(bad)])
    assert out.exit_code == 1 and "line 1" in out.output and "opus" in out.output


def test_eval_data_converts_mmlu_csvs(tmp_path: Path) -> None:
    source = tmp_path / "mmlu"
    source.mkdir()
    header = "prompt,mistralai/Mixtral-8x7B-Instruct-v0.1,gpt-4-1106-preview\n"
    prompts = [f"Question {n}?\nA. x\nB. y\nC. z\nD. w\nAnswer:" for n in range(40)]
    rows = "".join(f'"{p}",{n % 2 == 0},True\n' for n, p in enumerate(prompts))
    (source / "mmlu_toy.csv").write_text(header + rows)
    (source / "contaminated_prompts.jsonl").write_text(json.dumps({"eval_prompt": prompts[0]}))
    out_file = tmp_path / "all.jsonl"
    result = CliRunner().invoke(
        main,
        ["eval-data", "mmlu", "--out", str(out_file), "--split", "all", "--mmlu-dir", str(source)],
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert len(lines) == 39  # the contaminated prompt is dropped
    assert lines[0]["quality"] == {"haiku": 0.0, "opus": 1.0} and lines[0]["domain"] == "toy"
    held = tmp_path / "holdout.jsonl"
    CliRunner().invoke(main, ["eval-data", "mmlu", "--out", str(held), "--mmlu-dir", str(source)])
    kept = [json.loads(line)["prompt"] for line in held.read_text().splitlines()]
    assert kept and all(mmlu_split(p) == "holdout" for p in kept)


def test_eval_rubric_reports_heldout_accuracy(router_dir: Path) -> None:
    out = CliRunner().invoke(main, ["eval-rubric", "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result["split"] == "holdout" and result["accuracy"] >= 0.85
