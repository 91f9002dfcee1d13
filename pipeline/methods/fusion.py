"""Score fusion by trimmed z-normalisation (SPEC §5 step 9, thesis eq. 4.17–4.18).

Each branch's image score is turned into ``(s − μ) / σ`` with μ and σ of the validation scores
between their 20th and 80th percentiles (good images only, never the test set), so branches on
different scales add up with equal say and a few unusual validation images don't set the scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

TRIM = (20.0, 80.0)
MIN_STD = 1e-3
"""A trimmed spread below this is taken as 1 (SPEC §5 step 9): a branch that gives every good
image the same score would otherwise blow its z-scores up to infinity."""


@dataclass(frozen=True)
class TrimmedZ:
    """``(score - mean) / std`` with the trimmed mean and std of validation scores."""

    mean: float
    std: float

    @classmethod
    def fit(cls, scores) -> "TrimmedZ":
        scores = np.asarray(scores, np.float64).ravel()
        if scores.size == 0:
            raise ValueError("trimmed z-normalisation needs at least one validation score")
        low, high = np.percentile(scores, TRIM)
        kept = scores[(scores >= low) & (scores <= high)]
        kept = kept if kept.size >= 2 else scores
        std = float(kept.std())
        return cls(float(kept.mean()), std if std >= MIN_STD else 1.0)

    def __call__(self, scores):
        return (np.asarray(scores, np.float64) - self.mean) / self.std


@dataclass(frozen=True)
class Fusion:
    """One ``TrimmedZ`` per branch; the fused score is the sum of the branches' z-scores."""

    branches: dict[str, TrimmedZ]

    @classmethod
    def fit(cls, validation_scores: Mapping[str, list[float]]) -> "Fusion":
        return cls({name: TrimmedZ.fit(values) for name, values in validation_scores.items()})

    def z_scores(self, scores: Mapping[str, float]) -> dict[str, float]:
        return {name: float(z(scores[name])) for name, z in self.branches.items()}

    def __call__(self, scores: Mapping[str, float]) -> float:
        return float(sum(self.z_scores(scores).values()))

    def to_dict(self) -> dict:
        return {name: {"mean": z.mean, "std": z.std} for name, z in self.branches.items()}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Mapping[str, float]]) -> "Fusion":
        return cls({name: TrimmedZ(float(v["mean"]), float(v["std"])) for name, v in raw.items()})
