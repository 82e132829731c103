"""Fit the local router as a stack: prompt size, an exam head, a tier head.

Chosen by the leave-one-source-out report (`tierroute eval --cross-source`), which showed:

- a prompt's length ranks prompts by how much a stronger model helps about as well as
  anything cheap does, on every source; hashed n-grams, sentence embeddings or
  kind-of-task cues (math, code, creative…) trained on some sources rank *worse* than
  length on some source left out;
- what does carry over is how big the ask is beyond its characters: counted in words
  and sentences as well, a prompt ranks a little better than by characters alone on
  every left-out source. A small ridge head on those three size measures learns, within
  each source, what characters leave unexplained (the residual of a fit on log length),
  pooled over sources with equal weight. Learning the residual stops sources that
  disagree about length from pulling its weight around;
- exam-style questions (lettered options) follow other rules than open tasks, so they
  get a head of their own, hashed n-grams included, learnt from exam data as a residual
  over the open formula; without exam data they are scored as open tasks.

Everything folds into `LocalModel`'s one linear form (hashed n-grams + dense cues), so
inference stays one sparse dot product.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import lsqr

from tierroute.classify.features import (
    CUE_NAMES,
    DENSE_NAMES,
    N_BUCKETS,
    dense_features,
    is_multiple_choice,
)
from tierroute.training.fit import count_matrix, idf_of, tfidf

N_OPEN = (len(DENSE_NAMES) - 1) // 2
LENGTH_INDEX = DENSE_NAMES.index("open:log_chars")
# The size head: the cues it reads, and how much it moves a prompt, in units of the
# length term's spread. The cross-source report picked both: the largest weight of 0.1,
# 0.2 and 0.3 that stays above length on every left-out source. Kind-of-task cues in
# the head (math, code, creative, …) cost MMLU and the rubric set more than they gain
# on the preference sets (docs/routing.md, "tried").
HEAD_CUES = ("log_chars", "log_words", "log_sentences")
HEAD_INDEX = [CUE_NAMES.index(name) for name in HEAD_CUES]
HEAD_WEIGHT = 0.1
HEAD_ALPHA = 10.0
# Exam head: ridge penalty on hashed n-grams and exam cues (exam rows have weight 1).
EXAM_ALPHA = 10.0
SIGMA_FLOOR = 0.1
# Tier head: hashed n-grams of tier-labelled open prompts, learnt on the residual.
TIER_HEAD_WEIGHT = 1.0
TIER_ALPHA = 1.0
# The tier scale without tier-labelled rows: any increasing map ranks the same.
DEFAULT_SCALE = (0.5, 0.25)


@dataclass(frozen=True)
class GapSet:
    """Open-ended prompts of one source and how much a stronger model helps on each."""

    name: str
    prompts: list[str]
    gap: np.ndarray


@dataclass(frozen=True)
class ExamRow:
    """An exam-style prompt and its target on the tier scale (0 Haiku … 1 Opus)."""

    prompt: str
    target: float


@dataclass(frozen=True)
class TierRow:
    """A prompt labelled with its tier's target (0, 0.5 or 1)."""

    prompt: str
    target: float


@dataclass
class StackedArrays:
    """The arrays `LocalModel` holds, plus the fit's own figures for its header."""

    idf: np.ndarray
    weights: np.ndarray
    dense_mean: np.ndarray
    dense_std: np.ndarray
    dense_weights: np.ndarray
    bias: float
    sigma: float
    tier_rows_z: np.ndarray
    tier_rows_target: np.ndarray


def _cues(prompt: str) -> list[float]:
    """A prompt's cues, whichever kind's slots `dense_features` put them in."""
    values = dense_features(prompt)
    return values[N_OPEN : 2 * N_OPEN] if values[-1] else values[:N_OPEN]


def _open_matrix(prompts: Sequence[str]) -> np.ndarray:
    rows = [_cues(p) for p in prompts]
    return np.asarray(rows, dtype=np.float64).reshape(len(prompts), N_OPEN)


def length_residual(prompts: Sequence[str], gap: np.ndarray) -> np.ndarray:
    """The gap less its least-squares fit on log length, scaled to unit spread."""
    log_len = np.log1p(np.asarray([len(p) for p in prompts], dtype=np.float64))
    design = np.column_stack([log_len, np.ones_like(log_len)])
    coef = np.linalg.lstsq(design, gap, rcond=None)[0]
    residual = gap - design @ coef
    spread = float(np.std(residual))
    # Length explains everything (or there is one prompt): nothing is left to learn.
    return residual / spread if spread > 1e-9 else np.zeros_like(residual)


def _ridge(x: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float) -> np.ndarray:
    """Weighted ridge on centred data (no intercept: x and y are centred by the caller)."""
    xw = x * w[:, None]
    return np.linalg.solve(x.T @ xw + alpha * np.eye(x.shape[1]), xw.T @ y)


def fit_open(gap_sets: Sequence[GapSet]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, std, weights) over the open cues: length plus the size head, unit-free."""
    sets = [s for s in gap_sets if len(s.prompts) >= 10]
    prompts = [p for s in sets for p in s.prompts]
    x = _open_matrix(prompts) if prompts else np.zeros((0, N_OPEN))
    mean = x.mean(axis=0) if len(x) else np.zeros(N_OPEN)
    std = x.std(axis=0) if len(x) else np.ones(N_OPEN)
    std[std == 0] = 1.0
    weights = np.zeros(N_OPEN)
    weights[LENGTH_INDEX] = 1.0
    if not sets:
        return mean, std, weights
    residual = np.concatenate([length_residual(s.prompts, s.gap) for s in sets])
    # Each source counts the same, whatever its size.
    row_weight = np.concatenate(
        [np.full(len(s.prompts), len(prompts) / len(s.prompts)) for s in sets]
    )
    z = ((x - mean) / std)[:, HEAD_INDEX]
    beta = _ridge(z - z.mean(axis=0), residual - residual.mean(), row_weight, HEAD_ALPHA)
    spread = float(np.std(z @ beta)) or 1.0
    weights[HEAD_INDEX] += HEAD_WEIGHT * beta / spread
    return mean, std, weights


def fit_stacked(
    gap_sets: Sequence[GapSet],
    exam_rows: Sequence[ExamRow],
    tier_rows: Sequence[TierRow],
    n_buckets: int = N_BUCKETS,
) -> StackedArrays:
    """Fit the open formula, its tier scale, and the exam head over it."""
    mean, std, open_w = fit_open(gap_sets)
    n_dense = len(DENSE_NAMES)
    dense_std = np.concatenate([std, std, [1.0]])

    def open_raw(prompts: Sequence[str]) -> np.ndarray:
        return np.asarray(((_open_matrix(prompts) - mean) / std) @ open_w)

    # The tier scale: raw -> 0 (Haiku) … 1 (Opus), fitted on tier-labelled rows.
    scale = DEFAULT_SCALE
    tier_targets = np.asarray([r.target for r in tier_rows], dtype=np.float64)
    if len(tier_rows) >= 10 and np.std(tier_targets) > 0:
        raw = open_raw([r.prompt for r in tier_rows])
        slope, intercept = np.polyfit(raw, tier_targets, 1)
        if slope > 0:
            scale = (float(intercept), float(slope))
    bias, slope = scale
    dense_weights = np.zeros(n_dense)
    dense_weights[:N_OPEN] = slope * open_w
    dense_weights[N_OPEN : 2 * N_OPEN] = slope * open_w  # exam prompts: the open formula …
    # Idf over every prompt the hashed weights learn from: tier rows and exam rows.
    hashed_prompts = [r.prompt for r in tier_rows] + [r.prompt for r in exam_rows]
    idf = (
        idf_of(count_matrix(hashed_prompts, n_buckets)).astype(np.float64)
        if hashed_prompts
        else np.ones(n_buckets, dtype=np.float64)
    )
    weights = np.zeros(n_buckets, dtype=np.float64)
    open_tier_rows = [r for r in tier_rows if not is_multiple_choice(r.prompt)]
    if TIER_HEAD_WEIGHT > 0 and len(open_tier_rows) >= 10:
        # The lesson's tiers: what tier-labelled prompts' words say beyond the open
        # formula, kept small (the cross-source report shows its cost elsewhere).
        prompts = [r.prompt for r in open_tier_rows]
        residual = np.asarray([r.target for r in open_tier_rows]) - (
            bias + slope * open_raw(prompts)
        )
        text = tfidf(count_matrix(prompts, n_buckets), idf)
        coef = lsqr(text, residual, damp=math.sqrt(TIER_ALPHA), atol=1e-8, btol=1e-8)[0]
        weights += TIER_HEAD_WEIGHT * coef
    exam = [r for r in exam_rows if is_multiple_choice(r.prompt)]
    if exam:  # … plus what exam data teaches on top of it
        prompts = [r.prompt for r in exam]
        base = bias + slope * open_raw(prompts)
        residual = np.asarray([r.target for r in exam]) - base
        text = tfidf(count_matrix(prompts, n_buckets), idf)
        z = (_open_matrix(prompts) - mean) / std
        design = sparse.hstack(
            [text, sparse.csr_matrix(z), sparse.csr_matrix(np.ones((len(exam), 1)))]
        ).tocsr()
        coef = lsqr(design, residual, damp=math.sqrt(EXAM_ALPHA), atol=1e-8, btol=1e-8)[0]
        weights += coef[:n_buckets]
        dense_weights[N_OPEN : 2 * N_OPEN] += coef[n_buckets : n_buckets + N_OPEN]
        dense_weights[-1] = coef[-1]
    # `LocalModel` centres every dense slot, but a prompt's other kind's slots hold
    # zeros: fold the centring into the intercepts so that those zeros add nothing.
    open_offset = -float((mean / std) @ dense_weights[:N_OPEN])
    exam_offset = -float((mean / std) @ dense_weights[N_OPEN : 2 * N_OPEN])
    bias += open_offset
    dense_weights[-1] += exam_offset - open_offset
    arrays = StackedArrays(
        idf=idf,
        weights=weights,
        dense_mean=np.zeros(n_dense),
        dense_std=dense_std,
        dense_weights=dense_weights,
        bias=bias,
        sigma=SIGMA_FLOOR,
        tier_rows_z=np.zeros(0),
        tier_rows_target=tier_targets,
    )
    if len(tier_rows):
        z_rows = latents(arrays, [r.prompt for r in tier_rows])
        arrays.tier_rows_z = z_rows
        rms = float(np.sqrt(np.mean(np.square(z_rows - tier_targets))))
        arrays.sigma = max(SIGMA_FLOOR, rms)
    return arrays


def latents(arrays: StackedArrays, prompts: Sequence[str]) -> np.ndarray:
    """The latent of many prompts, computed as `LocalModel.latent` does one."""
    counts = count_matrix(prompts, len(arrays.idf))
    text = tfidf(counts, arrays.idf)
    dense = np.asarray([dense_features(p) for p in prompts], dtype=np.float64)
    dense = (dense - arrays.dense_mean) / arrays.dense_std
    return np.asarray(text @ arrays.weights + dense @ arrays.dense_weights + arrays.bias)
