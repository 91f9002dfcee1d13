"""Thresholds a plant manager can read: "N of M good validation parts would be flagged".

A part is flagged when its score is strictly above the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pipeline.errors import NotReadyError

DEFAULT_FLAGGED_FRACTION = 0.05
"""Default share of good validation parts the threshold may flag (one in twenty)."""


@dataclass(frozen=True)
class ThresholdSummary:
    """A threshold and what it means.

    Attributes:
        value: score threshold; flagged when score > value.
        flagged_good: good validation images above it.
        n_good: good validation images.
        missed_bad: labelled bad images at or below it (None when there are none).
        n_bad: labelled bad images considered.
    """

    value: float
    flagged_good: int
    n_good: int
    missed_bad: int | None = None
    n_bad: int = 0

    @property
    def miss_rate(self) -> float | None:
        return None if self.missed_bad is None or self.n_bad == 0 else self.missed_bad / self.n_bad

    def sentence(self) -> str:
        """The plain-words version shown in the UI and the report."""
        text = f"{self.flagged_good} of {self.n_good} good validation parts would be flagged"
        if self.miss_rate is not None:
            text += f"; {self.missed_bad} of {self.n_bad} known bad parts would pass ({self.miss_rate:.0%} missed)"
        return text

    def to_dict(self) -> dict:
        return {
            "value": self.value, "flagged_good": self.flagged_good, "n_good": self.n_good,
            "missed_bad": self.missed_bad, "n_bad": self.n_bad, "sentence": self.sentence(),
        }


def threshold_for_flagged(good_scores: Sequence[float], n_flagged: int) -> float:
    """Smallest threshold that flags at most ``n_flagged`` of the good scores.

    With distinct scores exactly ``n_flagged`` are flagged; ties can only lower the count.
    """
    scores = np.sort(np.asarray(good_scores, dtype=np.float64))[::-1]
    if scores.size == 0:
        raise NotReadyError("no good validation scores: fit the method first")
    if n_flagged >= scores.size:
        return float(scores[-1]) - 1e-9 * max(1.0, abs(float(scores[-1])))
    n = max(0, int(n_flagged))
    return float(scores[n])


def default_flagged(n_good: int) -> int:
    """How many good validation parts the default threshold flags."""
    return int(np.floor(DEFAULT_FLAGGED_FRACTION * n_good))


def summarize_threshold(value: float, good_scores: Sequence[float], bad_scores: Sequence[float] = ()) -> ThresholdSummary:
    good = np.asarray(good_scores, dtype=np.float64)
    bad = np.asarray(bad_scores, dtype=np.float64)
    return ThresholdSummary(
        value=float(value),
        flagged_good=int((good > value).sum()),
        n_good=int(good.size),
        missed_bad=int((bad <= value).sum()) if bad.size else None,
        n_bad=int(bad.size),
    )
