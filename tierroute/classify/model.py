"""The local router's model: load an artifact once, score a prompt with one sparse dot product.

An artifact is a compressed `.npz` of float32 arrays (idf and weights per hashed
bucket, the hand cues' scaling and weights) plus a JSON header: version, default
thresholds, the spread used for confidence, and how it was trained and scored.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tierroute.classify.features import DENSE_NAMES, dense_features, hashed_counts

# score = sigmoid(SLOPE * (z - 0.5)) maps the regression's latent z (0 Haiku, 0.5
# Sonnet, 1 Opus) into (0, 1) without changing the order of prompts.
SLOPE = 4.0
FORMAT = 2


def squash(z: float) -> float:
    """Latent -> score in (0, 1)."""
    return 1.0 / (1.0 + math.exp(-SLOPE * (z - 0.5)))


def unsquash(score: float) -> float:
    """Score -> latent (the inverse of `squash`)."""
    score = min(max(score, 1e-9), 1 - 1e-9)
    return 0.5 + math.log(score / (1 - score)) / SLOPE


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@dataclass
class LocalModel:
    """A trained local router: arrays plus a header (version, thresholds, spread)."""

    idf: np.ndarray
    weights: np.ndarray
    dense_mean: np.ndarray
    dense_std: np.ndarray
    dense_weights: np.ndarray
    bias: float
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """The artifact's version id."""
        return str(self.meta.get("version", "unversioned"))

    @property
    def haiku_max(self) -> float:
        """Default score threshold below which a prompt goes to the cheapest tier."""
        return float(self.meta.get("haiku_max", squash(0.25)))

    @property
    def opus_min(self) -> float:
        """Default score threshold from which a prompt goes to the top tier."""
        return float(self.meta.get("opus_min", squash(0.75)))

    @property
    def sigma(self) -> float:
        """Spread of the latent around a prompt's true tier, for confidences."""
        return float(self.meta.get("sigma", 0.15))

    def latent(self, prompt: str) -> float:
        """The regression's output for one prompt (0 Haiku … 1 Opus, unbounded)."""
        counts = hashed_counts(prompt, len(self.idf))
        z = self.bias
        if counts:
            idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
            values = tf * self.idf[idx]
            norm = float(np.sqrt(values @ values)) or 1.0
            z += float(values @ self.weights[idx]) / norm
        dense = (np.asarray(dense_features(prompt)) - self.dense_mean) / self.dense_std
        return z + float(dense @ self.dense_weights)

    def score(self, prompt: str) -> float:
        """Score in (0, 1): higher means the prompt needs a stronger tier."""
        return squash(self.latent(prompt))

    def scores(self, prompts: Sequence[str]) -> np.ndarray:
        """Scores of many prompts."""
        return np.asarray([self.score(p) for p in prompts], dtype=np.float64)

    def confidence(self, score: float, lo: float, hi: float) -> float:
        """Probability that the prompt's true tier lies in the score band [lo, hi)."""
        z, sigma = unsquash(score), self.sigma
        upper = 1.0 if hi >= 1.0 else _phi((unsquash(hi) - z) / sigma)
        lower = 0.0 if lo <= 0.0 else _phi((unsquash(lo) - z) / sigma)
        return max(0.0, min(1.0, upper - lower))

    def save(self, path: Path) -> Path:
        """Write the artifact (atomically) and return its path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            idf=self.idf.astype(np.float32),
            weights=self.weights.astype(np.float32),
            dense_mean=self.dense_mean.astype(np.float32),
            dense_std=self.dense_std.astype(np.float32),
            dense_weights=self.dense_weights.astype(np.float32),
            bias=np.asarray([self.bias], dtype=np.float64),
            meta=np.frombuffer(json.dumps(self.meta, sort_keys=True).encode(), dtype=np.uint8),
        )
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(buffer.getvalue())
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path | Any) -> LocalModel:
        """Read an artifact written by `save` (a path or a package resource)."""
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            if meta.get("format") != FORMAT or len(data["dense_weights"]) != len(DENSE_NAMES):
                raise ValueError(f"{path}: not a format-{FORMAT} local router artifact")
            return cls(
                idf=data["idf"].astype(np.float64),
                weights=data["weights"].astype(np.float64),
                dense_mean=data["dense_mean"].astype(np.float64),
                dense_std=data["dense_std"].astype(np.float64),
                dense_weights=data["dense_weights"].astype(np.float64),
                bias=float(data["bias"][0]),
                meta=meta,
            )


def content_id(arrays: Sequence[np.ndarray]) -> str:
    """A short hash of the model's numbers: the same training gives the same id."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
    return digest.hexdigest()[:10]
