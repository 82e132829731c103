"""Labelled prompt sources for training and judging routers, each with weak/strong model pairs.

A source is a set of prompts plus, for one or more pairs of a weaker and a stronger
model, the quality each model's answer had on each prompt. Routing predicts the gap
between the two; several pairs per source are augmentation: what they agree on is
the prompt's difficulty, not one model's quirks.

- `mmlu`: RouteLLM's MMLU outcomes (Mixtral-8x7B weak, GPT-4-1106 strong), contaminated
  prompts dropped.
- `alpaca-eval`: everyday instructions, GPT-4-Turbo's weighted preference per model.
- `arena-bench`: hard Chatbot Arena prompts, GPT-4's 1–10 grade scaled to [0, 1].
- `rubric`: the packaged template-made tier prompts (haiku 0, sonnet 0.5, opus 1 as the
  weak model's loss). A sanity check of the lesson's tiers, not the target.

The first three live in `../shared/data` beside the repo ($TIERROUTE_TRAINING_DATA_DIR overrides).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tierroute.domain.errors import InvalidInput
from tierroute.training.datasets import REPO_ROOT, load_mmlu, load_rubric

DATA_ENV = "TIERROUTE_TRAINING_DATA_DIR"
TIER_GAP = {"haiku": 0.0, "sonnet": 0.5, "opus": 1.0}

# Weak/strong pairs per preference set: weak models from several families and eras
# against clearly stronger ones, so that no single pair's style decides the labels.
ALPACA_PAIRS = (
    ("alpaca-7b", "gpt4_0613_concise"),
    ("vicuna-13b", "gpt-3.5-turbo-1106"),
    ("gpt-3.5-turbo-0301", "claude-2"),
    ("gemma-2b-it", "Mixtral-8x7B-Instruct-v0.1_concise"),
    ("claude-instant-1.2", "FuseChat-Qwen-2.5-7B-Instruct"),
    ("FuseChat-Llama-3.2-1B-Instruct", "FuseChat-Gemma-2-9B-Instruct"),
)
ARENA_PAIRS = (
    ("claude-instant-1", "gpt-4-1106-preview"),
    ("gpt-3.5-turbo", "gpt-4-0314"),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"),
    ("Llama-2-70b-chat", "gpt-4-1106-preview"),
    ("claude-2.1", "gpt-4-0314"),
)
SOURCE_NAMES = ("mmlu", "alpaca-eval", "arena-bench", "rubric")


@dataclass(frozen=True)
class Pair:
    """One weak/strong model pair's quality per prompt (NaN where a model was not graded)."""

    weak_name: str
    strong_name: str
    weak: np.ndarray
    strong: np.ndarray

    def graded(self) -> np.ndarray:
        """Mask of prompts graded for both models."""
        return ~(np.isnan(self.weak) | np.isnan(self.strong))


@dataclass(frozen=True)
class Source:
    """A named set of prompts with one or more weak/strong pairs."""

    name: str
    prompts: list[str]
    pairs: list[Pair]

    def gap(self) -> np.ndarray:
        """Per prompt, the mean over pairs of (strong - weak), each pair scaled to unit spread.

        Scaling keeps a pair with large quality swings from drowning the others; a prompt
        a pair did not grade takes that pair's mean gap (no information either way).
        """
        columns = []
        for pair in self.pairs:
            g = pair.strong - pair.weak
            g = np.where(np.isnan(g), np.nanmean(g), g)
            spread = float(np.std(g)) or 1.0
            columns.append((g - float(np.mean(g))) / spread)
        return np.mean(columns, axis=0)


def default_data_dir() -> Path:
    """$TIERROUTE_TRAINING_DATA_DIR, else ../shared/data beside the repo."""
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def _preference_source(name: str, path: Path, pairs: tuple[tuple[str, str], ...]) -> Source:
    if not path.exists():
        raise InvalidInput(name, f"no {path} (set {DATA_ENV})")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    built = []
    for weak, strong in pairs:
        built.append(
            Pair(
                weak,
                strong,
                np.asarray([r["quality"].get(weak, np.nan) for r in records], dtype=np.float64),
                np.asarray([r["quality"].get(strong, np.nan) for r in records], dtype=np.float64),
            )
        )
    return Source(name, [str(r["prompt"]) for r in records], built)


def load_source(name: str, data_dir: Path | None = None) -> Source:
    """One source by name (see `SOURCE_NAMES`)."""
    data_dir = data_dir or default_data_dir()
    if name == "mmlu":
        rows = load_mmlu(data_dir / "routellm-mmlu")
        weak = np.asarray([float(r.weak) for r in rows])
        strong = np.asarray([float(r.strong) for r in rows])
        return Source(
            name, [r.prompt for r in rows], [Pair("mixtral-8x7b", "gpt-4-1106", weak, strong)]
        )
    if name == "alpaca-eval":
        return _preference_source(name, data_dir / "alpaca-eval" / "train.jsonl", ALPACA_PAIRS)
    if name == "arena-bench":
        return _preference_source(name, data_dir / "arena-bench" / "train.jsonl", ARENA_PAIRS)
    if name == "rubric":
        items = load_rubric()
        loss = np.asarray([TIER_GAP[i.tier] for i in items])
        return Source(
            name, [i.prompt for i in items], [Pair("tier", "top", 1.0 - loss, np.ones_like(loss))]
        )
    raise InvalidInput("source", f"unknown source {name!r}; choose from {', '.join(SOURCE_NAMES)}")


def load_sources(
    names: tuple[str, ...] = SOURCE_NAMES, data_dir: Path | None = None
) -> list[Source]:
    """Every named source, in order."""
    return [load_source(name, data_dir) for name in names]
