"""Area under the per-region-overlap curve (AUPRO), as defined for MVTec AD.

For a threshold ``t`` (a pixel is flagged when its score is ``>= t``):

- PRO(t): mean over every ground-truth connected region (8-connectivity, all images pooled)
  of the fraction of the region's pixels flagged. Each region counts once whatever its size,
  so a small missing screw weighs as much as a large scratch.
- FPR(t): flagged defect-free pixels / all defect-free pixels, over all images (good ones too).

PRO is integrated over FPR from 0 to ``fpr_limit`` (trapezoid, the curve interpolated at
exactly ``fpr_limit``) and divided by ``fpr_limit``, so a perfect detector scores 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

from pipeline.metrics.roc import trapezoid

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class ProCurve:
    """PRO against FPR, ordered by decreasing threshold, starting at ``(0, 0)``.

    Attributes:
        fpr: false-positive rate over defect-free pixels, non-decreasing.
        pro: mean per-region overlap, non-decreasing.
        thresholds: score threshold of each point (the first, ``+inf``, flags nothing).
    """

    fpr: np.ndarray
    pro: np.ndarray
    thresholds: np.ndarray


@dataclass(frozen=True)
class _Pixels:
    """Scores split by ground truth, the form every curve computation needs."""

    negatives: np.ndarray  # scores of defect-free pixels
    defects: np.ndarray  # scores of defect pixels
    inverse_sizes: np.ndarray  # 1 / size of the region of each defect pixel
    num_regions: int


def _check(masks: Sequence[np.ndarray], maps: Sequence[np.ndarray]) -> None:
    if len(masks) != len(maps):
        raise ValueError(f"{len(masks)} masks but {len(maps)} anomaly maps")
    for index, (mask, amap) in enumerate(zip(masks, maps)):
        mask_shape, map_shape = np.shape(mask), np.shape(amap)
        if len(mask_shape) != 2 or mask_shape != map_shape:
            raise ValueError(
                f"image {index}: mask shape {mask_shape} and map shape {map_shape} must be the "
                "same (H, W)"
            )
        if not np.all(np.isfinite(amap)):
            raise ValueError(f"image {index}: anomaly map contains NaN or inf")


def _collect(masks: Sequence[np.ndarray], maps: Sequence[np.ndarray]) -> _Pixels:
    """Split pixels by ground truth, filling preallocated arrays to avoid double copies."""
    bool_masks = [np.asarray(m) != 0 for m in masks]
    n_def = sum(int(m.sum()) for m in bool_masks)
    n_neg = sum(m.size for m in bool_masks) - n_def
    negatives = np.empty(n_neg, dtype=np.float64)
    defects = np.empty(n_def, dtype=np.float64)
    inverse_sizes = np.empty(n_def, dtype=np.float64)
    num_regions = neg_at = def_at = 0
    for mask, amap in zip(bool_masks, maps):
        amap = np.asarray(amap)
        labels, count = ndimage.label(mask, structure=_EIGHT_CONNECTED)
        region_of_pixel = labels[mask]
        sizes = np.bincount(region_of_pixel, minlength=count + 1).astype(np.float64)
        size_of_pixel = sizes[region_of_pixel]
        negatives[neg_at : neg_at + mask.size - region_of_pixel.size] = amap[~mask]
        defects[def_at : def_at + region_of_pixel.size] = amap[mask]
        inverse_sizes[def_at : def_at + region_of_pixel.size] = 1.0 / size_of_pixel
        neg_at += mask.size - region_of_pixel.size
        def_at += region_of_pixel.size
        num_regions += count
    return _Pixels(negatives, defects, inverse_sizes, num_regions)


def _exact_curve(pixels: _Pixels, fpr_limit: float) -> ProCurve:
    """Every distinct score as a threshold, down to the first one past ``fpr_limit``.

    Only pixels scoring at least the k-th highest defect-free score matter (below it FPR has
    passed the limit), so a linear-time partition replaces sorting all pixels.
    """
    n_neg = pixels.negatives.size
    k = min(n_neg, int(np.ceil(fpr_limit * n_neg)) + 1)  # +1 guards float rounding
    floor = np.partition(pixels.negatives, n_neg - k)[n_neg - k]
    neg = pixels.negatives[pixels.negatives >= floor]
    keep = pixels.defects >= floor
    scores = np.concatenate([neg, pixels.defects[keep]])
    is_negative = np.concatenate([np.ones(neg.size, bool), np.zeros(int(keep.sum()), bool)])
    gains = np.concatenate([np.zeros(neg.size), pixels.inverse_sizes[keep]])
    order = np.argsort(scores, kind="stable")[::-1]
    scores = scores[order]
    # Last index of each run of equal scores: tied pixels are flagged together.
    ends = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    fpr = np.cumsum(is_negative[order])[ends] / n_neg
    pro = np.cumsum(gains[order])[ends] / pixels.num_regions
    return ProCurve(np.r_[0.0, fpr], np.r_[0.0, pro], np.r_[np.inf, scores[ends]])


def _binned_curve(pixels: _Pixels, num_thresholds: int) -> ProCurve:
    """``num_thresholds`` evenly spaced thresholds between the lowest and highest score."""
    low = min(pixels.negatives.min(), pixels.defects.min())
    high = max(pixels.negatives.max(), pixels.defects.max())
    thresholds = np.linspace(low, high, num_thresholds)
    # Bin j holds scores in [t_j, t_j+1); flagged at t_j means bin >= j, a reversed cumsum.
    neg_bins = np.searchsorted(thresholds, pixels.negatives, side="right") - 1
    def_bins = np.searchsorted(thresholds, pixels.defects, side="right") - 1
    neg_counts = np.bincount(neg_bins, minlength=num_thresholds)[::-1]
    def_gains = np.bincount(def_bins, weights=pixels.inverse_sizes, minlength=num_thresholds)[::-1]
    fpr = np.cumsum(neg_counts) / pixels.negatives.size
    pro = np.cumsum(def_gains) / pixels.num_regions
    return ProCurve(np.r_[0.0, fpr], np.r_[0.0, pro], np.r_[np.inf, thresholds[::-1]])


def pro_curve(
    masks: Sequence[np.ndarray],
    maps: Sequence[np.ndarray],
    fpr_limit: float = 1.0,
    num_thresholds: int | None = None,
) -> ProCurve | None:
    """PRO curve up to at least ``fpr_limit``; ``None`` without defect or defect-free pixels."""
    _check(masks, maps)
    pixels = _collect(masks, maps)
    if pixels.num_regions == 0 or pixels.negatives.size == 0:
        return None
    if num_thresholds is None:
        return _exact_curve(pixels, fpr_limit)
    return _binned_curve(pixels, num_thresholds)


def area_up_to(fpr: np.ndarray, pro: np.ndarray, fpr_limit: float) -> float:
    """Trapezoid area under ``pro(fpr)`` on ``[0, fpr_limit]``, interpolating at the limit.

    ``fpr`` must be non-decreasing, start below ``fpr_limit`` and reach it.
    """
    i = int(np.searchsorted(fpr, fpr_limit, side="left"))  # first point with fpr >= limit
    if i >= fpr.size:
        raise ValueError(f"curve ends at FPR {fpr[-1]:.4g}, before the limit {fpr_limit}")
    step = (fpr_limit - fpr[i - 1]) / (fpr[i] - fpr[i - 1])
    pro_at_limit = pro[i - 1] + (pro[i] - pro[i - 1]) * step
    return trapezoid(np.r_[pro[:i], pro_at_limit], np.r_[fpr[:i], fpr_limit])


def aupro(
    masks: Sequence[np.ndarray],
    maps: Sequence[np.ndarray],
    fpr_limit: float = 0.05,
    num_thresholds: int | None = None,
) -> float | None:
    """Normalised AUPRO up to ``fpr_limit`` (1.0 is perfect).

    Args:
        masks: ground-truth defect masks, bool ``(H, W)`` (good images: all False).
        maps: anomaly maps, float ``(H, W)``, same shape as their mask.
        fpr_limit: upper FPR integration bound, in (0, 1].
        num_thresholds: ``None`` for the exact curve (every distinct score); otherwise that
            many evenly spaced thresholds (faster, approximate).

    Returns ``None`` when there are no defect pixels at all (or no defect-free pixels, which
    leaves FPR undefined). Raises ``ValueError`` for mismatched inputs, naming the image.
    """
    if not 0.0 < fpr_limit <= 1.0:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
    if num_thresholds is not None and num_thresholds < 2:
        raise ValueError(f"num_thresholds must be at least 2, got {num_thresholds}")
    curve = pro_curve(masks, maps, fpr_limit, num_thresholds)
    if curve is None:
        return None
    return area_up_to(curve.fpr, curve.pro, fpr_limit) / fpr_limit
