"""Fitting the local router: a weighted ridge regression on hashed n-grams and hand cues.

Targets live on one scale: 0 for a Haiku prompt, 0.5 for Sonnet, 1 for Opus. Labelled
rubric prompts give their tier; MMLU rows give 0.5 + 0.5 × (strong correct − weak
correct) scaled into the same range; ratings give the tier a rating implies. One
linear model over all of them keeps inference a single sparse dot product.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import lsqr

from tierroute.classify.features import DENSE_NAMES, N_BUCKETS, dense_features, hashed_counts

# The intercept column's value: large, so the ridge penalty barely touches the bias.
_BIAS_COLUMN = 10.0


@dataclass(frozen=True)
class Example:
    """One training row: a prompt, its target on the 0..1 tier scale, and its weight."""

    prompt: str
    target: float
    weight: float
    source: str


@dataclass
class Fitted:
    """The fitted arrays; `model.LocalModel` wraps them for inference."""

    idf: np.ndarray
    weights: np.ndarray
    dense_mean: np.ndarray
    dense_std: np.ndarray
    dense_weights: np.ndarray
    bias: float


def count_matrix(prompts: Sequence[str], n_buckets: int = N_BUCKETS) -> sparse.csr_matrix:
    """Raw n-gram counts, one row per prompt."""
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for prompt in prompts:
        counts = hashed_counts(prompt, n_buckets)
        indices.extend(counts)
        data.extend(float(c) for c in counts.values())
        indptr.append(len(indices))
    return sparse.csr_matrix(
        (np.asarray(data, dtype=np.float64), np.asarray(indices), np.asarray(indptr)),
        shape=(len(prompts), n_buckets),
    )


def idf_of(counts: sparse.csr_matrix) -> np.ndarray:
    """Smoothed inverse document frequency per bucket."""
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    n = counts.shape[0]
    return (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)


def tfidf(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    """Sublinear tf times idf, each row scaled to unit length (as `model` does at inference)."""
    x = counts.copy()
    x.data = (1.0 + np.log(x.data)) * idf[x.indices]
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norms) @ x)


def dense_matrix(prompts: Sequence[str]) -> np.ndarray:
    """Hand features, one row per prompt."""
    return np.asarray([dense_features(p) for p in prompts], dtype=np.float64).reshape(
        len(prompts), len(DENSE_NAMES)
    )


def fit(
    examples: Sequence[Example],
    *,
    alpha: float = 1.0,
    dense_scale: float = 0.3,
    n_buckets: int = N_BUCKETS,
    idf: np.ndarray | None = None,
) -> Fitted:
    """Weighted ridge regression of the targets; deterministic for the same examples."""
    prompts = [e.prompt for e in examples]
    counts = count_matrix(prompts, n_buckets)
    idf = idf_of(counts) if idf is None else idf
    text = tfidf(counts, idf)
    dense = dense_matrix(prompts)
    mean, std = dense.mean(axis=0), dense.std(axis=0)
    std[std == 0] = 1.0
    scaled = (dense - mean) / std * dense_scale
    n = len(examples)
    design = sparse.hstack(
        [text, sparse.csr_matrix(scaled), sparse.csr_matrix(np.full((n, 1), _BIAS_COLUMN))]
    ).tocsr()
    root_w = np.sqrt(np.asarray([e.weight for e in examples], dtype=np.float64))
    y = np.asarray([e.target for e in examples], dtype=np.float64)
    weighted = sparse.diags(root_w) @ design
    solution = lsqr(
        weighted, y * root_w, damp=math.sqrt(alpha), atol=1e-8, btol=1e-8, iter_lim=4000
    )
    coef = solution[0]
    n_dense = len(DENSE_NAMES)
    return Fitted(
        idf=idf.astype(np.float32),
        weights=coef[:n_buckets].astype(np.float32),
        dense_mean=mean.astype(np.float32),
        dense_std=std.astype(np.float32),
        dense_weights=(coef[n_buckets : n_buckets + n_dense] * dense_scale).astype(np.float32),
        bias=float(coef[-1] * _BIAS_COLUMN),
    )


def predict(fitted: Fitted, prompts: Sequence[str]) -> np.ndarray:
    """The latent z of many prompts at once (training and evaluation)."""
    counts = count_matrix(prompts, len(fitted.idf))
    text = tfidf(counts, fitted.idf)
    dense = (dense_matrix(prompts) - fitted.dense_mean) / fitted.dense_std
    return np.asarray(text @ fitted.weights + dense @ fitted.dense_weights + fitted.bias)
