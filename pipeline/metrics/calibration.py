"""Few-shot calibration of the fusion weights from a handful of images the user marked bad
(SPEC §9, seed 001; the thesis lists fixed fusion weights as a limitation, chapter 6.1).

The fused score of a multi-branch method is the sum of its branches' trimmed z-scores (AeCSAD and
CSAD: of each image's ``top_k`` largest, ``Fusion.top_k``; that is the "equal" fusion here). With a few
known bad images, a non-negative, class-balanced, L2-regularised logistic fit on validation-good
vs marked-bad z-vectors can weigh the branches that tell them apart. Five bad images are easy to
overfit, so every choice is made by leave-one-out: the regularisation strength is the one whose
held-out scores rank best, and the calibrated weights are only used when their leave-one-out
AUROC beats the equal weights' AUROC on the same images. Weights are scaled to sum to the number
of branches, so "equal weights" is all ones and the score stays on the equal-weight scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import numpy as np
from scipy.optimize import minimize

from pipeline.metrics.auroc import auroc

CALIBRATED, EQUAL = "calibrated", "equal"


@dataclass(frozen=True)
class CalibrationSettings:
    """How fusion weights are calibrated.

    Attributes:
        min_marked: fewest marked bad images that allow a fit; below it the equal-weight trimmed
            z-sum stays (a "handful": with 1–2 images any fit is noise).
        l2_choices: L2 strengths tried on the weights (per unit of the balanced log loss); the
            leave-one-out AUROC picks one, ties going to the strongest (the most equal weights).
    """

    min_marked: int = 3
    l2_choices: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)


@dataclass(frozen=True)
class FusionCalibration:
    """Fusion weights and a proposed threshold, with the evidence for them.

    Attributes:
        branches: branch names, in the order of ``weights`` (the ``z_<name>`` branch scores).
        weights: non-negative, summing to ``len(branches)``; all ones in ``equal`` mode.
        mode: ``"calibrated"`` or ``"equal"`` (too few marked images, or no leave-one-out gain).
        reason: one sentence on why this mode, for the UI and the CLI.
        n_good, n_bad: validation-good and marked-bad images used.
        equal_auroc: AUROC of the equal-weight sum on those images (None below ``min_marked``).
        loo_auroc: leave-one-out AUROC of the calibrated weights (None when not fitted).
        l2: the chosen L2 strength (None when not fitted).
        threshold: proposed threshold on the score of this ``mode`` (None below ``min_marked``).
        flagged_good, missed_bad: at ``threshold``, good images above it and bad ones at or below
            it, counted on the leave-one-out scores in ``calibrated`` mode (honest, not in-sample).
        used_keys: image keys of the marked bad images (evaluation leaves them out).
        top_k: how the method's own ("equal") fusion adds the z-scores: the sum of each image's
            ``top_k`` largest, 0 = all of them; calibrated weights always weigh every branch.
    """

    branches: tuple[str, ...]
    weights: tuple[float, ...]
    mode: str
    reason: str
    n_good: int
    n_bad: int
    equal_auroc: float | None = None
    loo_auroc: float | None = None
    l2: float | None = None
    threshold: float | None = None
    flagged_good: int | None = None
    missed_bad: int | None = None
    used_keys: tuple[str, ...] = field(default=())
    top_k: int = 0

    def equal_score(self, z_scores: Mapping[str, float]) -> float:
        """The method's own fusion of a prediction's branch z-scores (by branch name)."""
        return float(equal_fusion(np.array([[float(z_scores[b]) for b in self.branches]]), self.top_k)[0])

    def score(self, z_scores: Mapping[str, float]) -> float:
        """Weighted sum of a prediction's branch z-scores (by branch name)."""
        return float(sum(w * float(z_scores[b]) for b, w in zip(self.branches, self.weights)))

    def threshold_sentence(self) -> str:
        if self.threshold is None:
            return "no threshold proposed"
        return (f"threshold {self.threshold:.3f}: {self.flagged_good} of {self.n_good} good validation parts flagged, "
                f"{self.missed_bad} of {self.n_bad} marked bad parts pass")

    def summary_lines(self) -> list[str]:
        """The calibration in a few lines: mode and why, the weights, the threshold proposal."""
        lines = [f"fusion: {self.mode} weights ({self.reason})"]
        lines += [f"  weight {name}: {w:.3f}" for name, w in zip(self.branches, self.weights)]
        if self.threshold is not None:
            lines.append(f"proposed {self.threshold_sentence()}" + (" (leave-one-out)" if self.mode == CALIBRATED else ""))
        return lines

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, raw: Mapping) -> "FusionCalibration":
        data = dict(raw)
        for name in ("branches", "weights", "used_keys"):
            data[name] = tuple(data.get(name, ()))
        return cls(**data)


def equal_fusion(z: np.ndarray, top_k: int = 0) -> np.ndarray:
    """``(n,)`` equal-weight fused scores of ``(n, B)`` z-scores: each row's ``top_k`` largest summed
    (``0`` or ``top_k >= B``: the whole row)."""
    z = np.asarray(z, np.float64)
    if top_k <= 0 or top_k >= z.shape[1]:
        return z.sum(1)
    return np.sort(z, axis=1)[:, -top_k:].sum(1)


def fit_weights(good: np.ndarray, bad: np.ndarray, l2: float) -> np.ndarray:
    """Non-negative weights ``(B,)`` of a class-balanced logistic fit of bad (1) vs good (0)
    z-vectors (``(n, B)`` each), scaled to sum to B; all ones when the fit puts no weight anywhere."""
    x = np.concatenate([good, bad]).astype(np.float64)
    y = np.concatenate([np.zeros(len(good)), np.ones(len(bad))])
    c = np.where(y == 1, 0.5 / len(bad), 0.5 / len(good))  # each class weighs one half
    sign = 2 * y - 1
    n_branches = x.shape[1]

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = params[:-1], params[-1]
        margin = sign * (x @ w + b)
        value = float(np.sum(c * np.logaddexp(0.0, -margin)) + l2 * w @ w)
        d_margin = -c * sign / (1.0 + np.exp(np.clip(margin, -50, 50)))
        grad = np.concatenate([x.T @ d_margin + 2 * l2 * w, [d_margin.sum()]])
        return value, grad

    start = np.concatenate([np.full(n_branches, 1.0 / n_branches), [0.0]])
    bounds = [(0.0, None)] * n_branches + [(None, None)]
    w = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds).x[:-1]
    total = float(w.sum())
    return np.ones(n_branches) if total <= 1e-12 else w * n_branches / total


def leave_one_out_scores(good: np.ndarray, bad: np.ndarray, l2: float) -> np.ndarray:
    """Each image's weighted score under weights fitted without it: good images first, then bad."""
    x = np.concatenate([good, bad])
    out = np.empty(len(x))
    for i in range(len(x)):
        keep_good = np.delete(good, i, axis=0) if i < len(good) else good
        keep_bad = np.delete(bad, i - len(good), axis=0) if i >= len(good) else bad
        out[i] = x[i] @ fit_weights(keep_good, keep_bad, l2)
    return out


def best_threshold(good_scores: Sequence[float], bad_scores: Sequence[float]) -> tuple[float, int, int]:
    """(threshold, good flagged, bad missed) maximising caught share minus false-alarm share
    (Youden's J); ties go to the higher threshold (fewer good parts flagged). Candidates lie
    midway between neighbouring scores, so no image sits exactly on the threshold."""
    good, bad = np.asarray(good_scores, np.float64), np.asarray(bad_scores, np.float64)
    values = np.unique(np.concatenate([good, bad]))
    candidates = np.concatenate([[values[0] - 1.0], (values[:-1] + values[1:]) / 2, [values[-1] + 1.0]])
    best = None
    for t in candidates[::-1]:
        flagged, missed = int((good > t).sum()), int((bad <= t).sum())
        j = (len(bad) - missed) / len(bad) - flagged / len(good)
        if best is None or j > best[0] + 1e-12:
            best = (j, float(t), flagged, missed)
    return best[1], best[2], best[3]


def calibrate_fusion(
    good: np.ndarray, bad: np.ndarray, branches: Sequence[str],
    settings: CalibrationSettings = CalibrationSettings(), used_keys: Sequence[str] = (), top_k: int = 0,
) -> FusionCalibration:
    """Fusion weights from validation-good (``(n_good, B)``) and marked-bad (``(n_bad, B)``)
    branch z-scores; equal weights when fewer than ``settings.min_marked`` bad images are given
    or when calibrated weights do not beat equal ones in leave-one-out. ``top_k``: the method's own
    fusion (``Fusion.top_k``), which "equal weights" means and is compared against."""
    good = np.asarray(good, np.float64).reshape(len(good), len(branches))
    bad = np.asarray(bad, np.float64).reshape(len(bad), len(branches))
    base = FusionCalibration(tuple(branches), (1.0,) * len(branches), EQUAL, "", len(good), len(bad),
                             used_keys=tuple(used_keys), top_k=int(top_k))
    if len(bad) < settings.min_marked or len(good) < 2:
        return replace(base, reason=f"{len(bad)} marked bad image(s) and {len(good)} good validation images: "
                                    f"calibration needs at least {settings.min_marked} bad and 2 good; equal weights kept")
    labels = [0] * len(good) + [1] * len(bad)
    equal_good, equal_bad = equal_fusion(good, top_k), equal_fusion(bad, top_k)
    equal_scores = np.concatenate([equal_good, equal_bad])
    equal = auroc(labels, equal_scores)
    trials = [(auroc(labels, leave_one_out_scores(good, bad, l2)), l2) for l2 in settings.l2_choices]
    loo, l2 = max(trials, key=lambda t: (t[0], t[1]))
    if loo <= equal:
        t, flagged, missed = best_threshold(equal_good, equal_bad)
        return replace(base, reason=f"leave-one-out AUROC of fitted weights {loo:.3f} does not beat equal weights' "
                                    f"{equal:.3f}: equal weights kept", equal_auroc=equal, loo_auroc=loo, l2=l2,
                       threshold=t, flagged_good=flagged, missed_bad=missed)
    weights = fit_weights(good, bad, l2)
    held_out = leave_one_out_scores(good, bad, l2)
    t, flagged, missed = best_threshold(held_out[:len(good)], held_out[len(good):])
    return replace(base, weights=tuple(float(w) for w in weights), mode=CALIBRATED,
                   reason=f"leave-one-out AUROC {loo:.3f} vs {equal:.3f} with equal weights (L2 {l2:g})",
                   equal_auroc=equal, loo_auroc=loo, l2=l2, threshold=t, flagged_good=flagged, missed_bad=missed)
