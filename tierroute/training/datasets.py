"""Datasets for training and evaluating routers: MMLU outcomes, the rubric set, eval JSONL.

Splits are deterministic and never depend on file order:

- MMLU (RouteLLM's CSVs, `../shared/data/routellm-mmlu` beside the repo): a prompt is
  held out when sha256(prompt) modulo 5 is 0, about 20 %. Training never reads the
  held-out part; `tierroute eval` reports on it. Contaminated prompts are dropped.
- The rubric set (`tierroute/data/rubric_prompts.jsonl`): a prompt is held out when
  sha256(prompt) modulo 4 is 0, about 25 %; its `split` field records the outcome.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tierroute.domain.errors import InvalidInput

REPO_ROOT = Path(__file__).resolve().parents[2]
MMLU_ENV = "TIERROUTE_MMLU_DIR"
MMLU_HOLDOUT_MODULUS = 5
RUBRIC_HOLDOUT_MODULUS = 4
# RouteLLM's pair: Mixtral-8x7B answered as the weak model, GPT-4-1106 as the strong one.
WEAK_COLUMN = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG_COLUMN = "gpt-4-1106-preview"


def _bucket(text: str, modulus: int) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % modulus


def mmlu_split(prompt: str) -> str:
    """'holdout' or 'train' for an MMLU prompt."""
    return "holdout" if _bucket(prompt, MMLU_HOLDOUT_MODULUS) == 0 else "train"


def rubric_split(prompt: str) -> str:
    """'holdout' or 'train' for a rubric prompt."""
    return "holdout" if _bucket(prompt, RUBRIC_HOLDOUT_MODULUS) == 0 else "train"


def default_mmlu_dir() -> Path:
    """$TIERROUTE_MMLU_DIR, else ../shared/data/routellm-mmlu beside the repo."""
    env = os.environ.get(MMLU_ENV)
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared" / "data" / "routellm-mmlu"


@dataclass(frozen=True)
class MmluRow:
    """One MMLU question and whether the weak and the strong model answered it correctly."""

    domain: str
    prompt: str
    weak: bool
    strong: bool


def _contaminated(directory: Path) -> set[str]:
    path = directory / "contaminated_prompts.jsonl"
    if not path.exists():
        return set()
    prompts: set[str] = set()
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            prompts.update(str(record[k]) for k in ("eval_prompt", "train_prompt") if k in record)
    return prompts


def load_mmlu(directory: Path | None = None, split: str | None = None) -> list[MmluRow]:
    """Every MMLU row (or one split's), contaminated prompts dropped, in a stable order."""
    directory = directory or default_mmlu_dir()
    files = sorted(directory.glob("mmlu_*.csv"))
    if not files:
        raise InvalidInput("mmlu", f"no mmlu_*.csv in {directory} (set {MMLU_ENV})")
    dropped = _contaminated(directory)
    rows: list[MmluRow] = []
    for path in files:
        domain = path.stem.removeprefix("mmlu_")
        with path.open(newline="", encoding="utf-8") as fh:
            for record in csv.DictReader(fh):
                prompt = record["prompt"]
                if prompt in dropped or (split and mmlu_split(prompt) != split):
                    continue
                rows.append(
                    MmluRow(
                        domain=domain,
                        prompt=prompt,
                        weak=record[WEAK_COLUMN] == "True",
                        strong=record[STRONG_COLUMN] == "True",
                    )
                )
    return rows


def mmlu_eval_lines(rows: Iterable[MmluRow]) -> Iterator[str]:
    """Eval JSONL lines: weak model's outcome as haiku, strong model's as opus."""
    for row in rows:
        quality = {"haiku": float(row.weak), "opus": float(row.strong)}
        yield json.dumps({"prompt": row.prompt, "quality": quality, "domain": row.domain})


@dataclass(frozen=True)
class RubricItem:
    """A rubric prompt, its tier, the template family it came from and its split."""

    prompt: str
    tier: str
    family: str
    split: str


def load_rubric(split: str | None = None, path: Path | None = None) -> list[RubricItem]:
    """The packaged rubric set (or one split of it)."""
    source = path or Path(str(resources.files("tierroute") / "data" / "rubric_prompts.jsonl"))
    items = []
    for line in source.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        item = RubricItem(record["prompt"], record["tier"], record["family"], record["split"])
        if split is None or item.split == split:
            items.append(item)
    return items


@dataclass(frozen=True)
class EvalItem:
    """One eval line: a prompt and the quality, in [0, 1], each tier's answer had."""

    prompt: str
    quality: dict[str, float]


def read_eval_jsonl(path: Path, tier_names: list[str]) -> list[EvalItem]:
    """Parse `{"prompt": str, "quality": {tier: q}}` lines; name the first bad line."""
    cheapest, dearest = tier_names[0], tier_names[-1]
    items: list[EvalItem] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                prompt = record["prompt"]
                quality = {str(k): float(v) for k, v in record["quality"].items()}
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise InvalidInput(
                    f"{path.name} line {number}", f"not an eval record: {exc}"
                ) from None
            if not isinstance(prompt, str) or not prompt:
                raise InvalidInput(f"{path.name} line {number}", "prompt must be a string")
            missing = {cheapest, dearest} - set(quality)
            unknown = set(quality) - set(tier_names)
            if missing or unknown:
                raise InvalidInput(
                    f"{path.name} line {number}",
                    f"quality needs {cheapest} and {dearest} (of {tier_names}); "
                    f"missing {sorted(missing)}, unknown {sorted(unknown)}",
                )
            if any(not 0.0 <= q <= 1.0 for q in quality.values()):
                raise InvalidInput(f"{path.name} line {number}", "quality must be within [0, 1]")
            items.append(EvalItem(prompt, quality))
    if not items:
        raise InvalidInput(path.name, "no eval records")
    return items
