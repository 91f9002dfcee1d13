"""Score fusion by trimmed z-normalisation (SPEC §5 step 9, thesis eq. 4.17–4.18).

Each branch's image score is turned into ``(s − μ) / σ`` with μ and σ of the validation scores
between their 20th and 80th percentiles (good images only, never the test set), so branches on
different scales add up with equal say and a few unusual validation images don't set the scale.

A fusion may keep only the ``top_k`` largest z-scores of an image (``FusionSettings``): each kind
of defect lights a few branches, and summing every branch adds the others' noise to the good
images' scores too.
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
class FusionSettings:
    """How AeCSAD/CSAD fuse their branch scores (``fit --set fusion.field=value``).

    Attributes:
        retrieval: also fit the instant detector's patch retrieval (SPEC §9) in the method's
            ``retrieval/`` folder and fuse its score as one more branch (beyond the thesis).
        top_k: the fused score is the sum of an image's ``top_k`` largest branch z-scores;
            0 sums every branch (thesis eq. 4.18).
        surface_check: on a surface (no part branches), fuse only the branches whose sum best
            separates synthetic defects pasted on the good validation images
            (``instant.depth_check``); no defect label is used.
    """

    retrieval: bool = True
    top_k: int = 3
    surface_check: bool = True

    @classmethod
    def for_profile(cls, profile: str, **overrides) -> "FusionSettings":
        """The same for both profiles: fusion costs no training."""
        return cls(**overrides)


@dataclass(frozen=True)
class Fusion:
    """One ``TrimmedZ`` per branch; the fused score is the sum of the ``top_k`` largest of an
    image's branch z-scores (``top_k = 0``, or at least the branch count: all of them)."""

    branches: dict[str, TrimmedZ]
    top_k: int = 0

    @classmethod
    def fit(cls, validation_scores: Mapping[str, list[float]], top_k: int = 0) -> "Fusion":
        return cls({name: TrimmedZ.fit(values) for name, values in validation_scores.items()}, int(top_k))

    def z_scores(self, scores: Mapping[str, float]) -> dict[str, float]:
        return {name: float(z(scores[name])) for name, z in self.branches.items()}

    @property
    def summed(self) -> int:
        """How many z-scores an image's fused score adds up."""
        n = len(self.branches)
        return min(self.top_k, n) if self.top_k > 0 else n

    def counted(self, scores: Mapping[str, float]) -> tuple[str, ...]:
        """The branches whose z-scores an image's fused score adds up, largest first."""
        return self._largest(self.z_scores(scores))

    def _largest(self, z: Mapping[str, float]) -> tuple[str, ...]:
        return tuple(sorted(z, key=z.__getitem__, reverse=True)[:self.summed])

    def __call__(self, scores: Mapping[str, float]) -> float:
        z = self.z_scores(scores)
        return float(sum(z[name] for name in self._largest(z)))

    def only(self, names: tuple[str, ...]) -> "Fusion":
        """The same fusion over ``names`` alone."""
        return Fusion({name: self.branches[name] for name in names}, self.top_k)

    def to_dict(self) -> dict:
        """The branches' statistics; ``top_k`` is stored beside them (files older than it sum all)."""
        return {name: {"mean": z.mean, "std": z.std} for name, z in self.branches.items()}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Mapping[str, float]], top_k: int = 0) -> "Fusion":
        return cls({name: TrimmedZ(float(v["mean"]), float(v["std"])) for name, v in raw.items()}, int(top_k))
