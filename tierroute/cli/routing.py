"""`tierroute train`, `calibrate`, `eval`, `eval-data` and `eval-rubric`: routing quality."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from tierroute.domain.errors import ConfigurationError, TierrouteError

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Our errors as one line on stderr and exit status 1 (as in `tierroute.cli.main`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TierrouteError as exc:
            click.echo(f"error: {exc.detail}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def _classifier(name: str) -> Iterator[Any]:
    """A classifier by name; llm and hybrid get an in-process simulator without an API key."""
    from tierroute.classify import build_classifier
    from tierroute.config import Settings, default_tier_table
    from tierroute.llm.provider import make_client

    settings = Settings()
    settings = settings.model_copy(update={"classifier": name})
    tiers = default_tier_table()
    with contextlib.ExitStack() as stack:
        if name != "local" and settings.simulated and not settings.anthropic_base_url:
            from tierroute.devstack.simulator import SimulatorConfig, serve_in_thread

            sim = stack.enter_context(serve_in_thread(SimulatorConfig()))
            settings = settings.model_copy(update={"anthropic_base_url": sim.base_url})
        client = make_client(settings) if name != "local" else None
        if client is not None:
            stack.callback(client.close)
        yield build_classifier(settings, tiers, client), tiers  # type: ignore[arg-type]


@click.command("eval")
@click.option("--dataset", "dataset", type=FILE, default=None, help="JSONL: prompt + quality.")
@click.option(
    "--cross-source",
    is_flag=True,
    help="Leave-one-source-out: train on all labelled sources but one, score the one left out.",
)
@click.option(
    "--classifier",
    "name",
    type=click.Choice(["local", "hybrid", "llm"]),
    default="local",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG.")
@click.option("--output-tokens", default=300, show_default=True, help="Assumed per prompt.")
@friendly_errors
def eval_command(
    dataset: Path | None,
    cross_source: bool,
    name: str,
    as_json: bool,
    plot: Path | None,
    output_tokens: int,
) -> None:
    """Route an eval set; print the cost-quality curve, APGR, CPT(50%), CPT(80%) and savings.

    With --cross-source, judge the local router's training instead: for each labelled
    source (MMLU, alpaca-eval, arena-bench, rubric), train on the others and score it.
    """
    if cross_source:
        _cross_source_report(as_json)
        return
    if dataset is None:
        raise click.UsageError("give --dataset FILE.jsonl, or --cross-source")
    from tierroute.training.datasets import read_eval_jsonl
    from tierroute.training.evaluation import evaluate, format_report, public
    from tierroute.training.evaluation import plot as draw

    with _classifier(name) as (classifier, tiers):
        items = read_eval_jsonl(dataset, tiers.names)
        try:
            report = evaluate(classifier, items, tiers, output_tokens=output_tokens)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
    if plot is not None:
        draw(report, plot)
    if as_json:
        click.echo(json.dumps(public(report)))
        return
    click.echo(format_report(report))
    if plot is not None:
        click.echo(f"plot written to {plot}")


def _cross_source_report(as_json: bool) -> None:
    from tierroute.training.cross_source import cross_source, format_cross_source
    from tierroute.training.router import trainer
    from tierroute.training.sources import SOURCE_NAMES, load_sources

    if not as_json:
        click.echo(f"training {len(SOURCE_NAMES)} routers, one per left-out source …", err=True)
    report = cross_source(load_sources(), trainer)
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(format_cross_source(report))


@click.command("eval-data")
@click.argument("source", type=click.Choice(["mmlu"]))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--split",
    type=click.Choice(["holdout", "train", "all"]),
    default="holdout",
    show_default=True,
    help="holdout: the part training never reads.",
)
@click.option("--mmlu-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@friendly_errors
def eval_data(source: str, out: Path, split: str, mmlu_dir: Path | None) -> None:
    """Turn RouteLLM's MMLU CSVs into eval JSONL (weak model = haiku, strong = opus)."""
    from tierroute.training.datasets import load_mmlu, mmlu_eval_lines

    rows = load_mmlu(mmlu_dir, None if split == "all" else split)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for line in mmlu_eval_lines(rows):
            fh.write(line + "\n")
    click.echo(f"wrote {len(rows):,} {split} prompts to {out}")


@click.command("eval-rubric")
@click.option("--split", type=click.Choice(["holdout", "train", "all"]), default="holdout")
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def eval_rubric(split: str, as_json: bool) -> None:
    """Accuracy of the local classifier on the rubric set (the held-out part by default)."""
    from tierroute.training.datasets import load_rubric

    items = load_rubric(None if split == "all" else split)
    with _classifier("local") as (classifier, _):
        decisions = [classifier.classify(i.prompt) for i in items]
    hits = [d.tier == i.tier for d, i in zip(decisions, items, strict=True)]
    by_tier = {
        tier: round(
            sum(h for h, i in zip(hits, items, strict=True) if i.tier == tier)
            / max(1, sum(1 for i in items if i.tier == tier)),
            4,
        )
        for tier in ("haiku", "sonnet", "opus")
    }
    result = {
        "split": split,
        "prompts": len(items),
        "accuracy": round(sum(hits) / len(items), 4),
        "by_tier": by_tier,
        "version": classifier.version,
    }
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(
        f"rubric {split}: {result['accuracy']:.1%} of {len(items)} prompts on their tier "
        f"(haiku {by_tier['haiku']:.1%}, sonnet {by_tier['sonnet']:.1%}, "
        f"opus {by_tier['opus']:.1%}); model {result['version']}"
    )


@click.command("train")
@click.option("--mmlu-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--no-mmlu", is_flag=True, help="Leave MMLU out.")
@click.option("--no-ratings", is_flag=True, help="Leave the ratings table out.")
@click.option("--labels", type=FILE, multiple=True, help='JSONL {"prompt", "tier"}; repeatable.')
@click.option(
    "--packaged", is_flag=True, help="Rebuild the artifact shipped in the package (no ratings)."
)
@click.option("--force", is_flag=True, help="Promote even if it scores worse.")
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def train(
    mmlu_dir: Path | None,
    no_mmlu: bool,
    no_ratings: bool,
    labels: tuple[Path, ...],
    packaged: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Fit the local router on ratings and labelled data; promote it unless it is worse."""
    from tierroute.config import Settings
    from tierroute.training.runs import run_training

    settings = Settings()
    outcome = run_training(
        settings,
        mmlu_dir=mmlu_dir,
        use_mmlu=not no_mmlu,
        use_ratings=not (no_ratings or packaged),
        labels=list(labels),
        packaged=packaged,
        force=force,
        echo=(lambda _: None) if as_json else click.echo,
    )
    if as_json:
        click.echo(json.dumps(outcome))
    if not outcome["promoted"]:
        sys.exit(2)


@click.command("calibrate")
@click.option("--haiku-share", type=click.FloatRange(0, 1), default=None)
@click.option("--opus-share", type=click.FloatRange(0, 1), default=None)
@click.option("--quality-target", type=click.FloatRange(0, 1), default=None,
              help="Fraction of the all-top-tier quality to keep (needs --dataset).")  # fmt: skip
@click.option("--dataset", type=FILE, default=None, help="Eval JSONL for --quality-target.")
@click.option("--days", default=7, show_default=True, help="Recent traffic window.")
@click.option("--rescore", is_flag=True, help="Score recent prompts again, ignore stored scores.")
@click.option("--output-tokens", default=300, show_default=True)
@click.option("--dry-run", is_flag=True, help="Print, do not write.")
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def calibrate(
    haiku_share: float | None,
    opus_share: float | None,
    quality_target: float | None,
    dataset: Path | None,
    days: int,
    rescore: bool,
    output_tokens: int,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Set the score thresholds from recent traffic (target shares) or for a quality target."""
    from tierroute.config import Settings
    from tierroute.training.runs import run_calibration

    result = run_calibration(
        Settings(),
        haiku_share=haiku_share,
        opus_share=opus_share,
        quality_target=quality_target,
        dataset=dataset,
        days=days,
        rescore=rescore,
        output_tokens=output_tokens,
        write=not dry_run,
    )
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(
        f"haiku_max_score {result['haiku_max_score']:.6f}  "
        f"opus_min_score {result['opus_min_score']:.6f}  ({result['method']}, "
        f"{result['prompts']:,} prompts, model {result['model_version']})"
    )
    if "shares" in result:
        shares = result["shares"]
        click.echo(
            f"shares: haiku {shares['1']:.1%}, sonnet {shares['2']:.1%}, opus {shares['3']:.1%}"
        )
    if "quality" in result:
        click.echo(
            f"quality {result['quality']:.4f} of {result['quality_if_all_top']:.4f} all-top; "
            f"cost ${result['cost_usd']:.4f} vs ${result['cost_if_all_top_usd']:.4f}"
        )
    click.echo(f"written to {result['path']}" if result.get("path") else "dry run: nothing written")
