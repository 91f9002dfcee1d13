"""AUPRO: perfect, inverted, hand-computed cases, invariance and input checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from pipeline.metrics.aupro import aupro, pro_curve


def _blobs(seed: int, count: int = 4, size: int = 32) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Images with a few rectangular defects and a noisy map that mostly finds them."""
    rng = np.random.default_rng(seed)
    masks, maps = [], []
    for index in range(count):
        mask = np.zeros((size, size), bool)
        if index % 2:  # every other image is defect-free, as good test images are
            for _ in range(2):
                y, x = rng.integers(0, size - 6, 2)
                mask[y : y + int(rng.integers(2, 6)), x : x + int(rng.integers(2, 6))] = True
        masks.append(mask)
        maps.append(mask * 1.0 + rng.normal(0, 0.6, (size, size)))
    return masks, maps


def _hand_case() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Three 1-row images: region A (1 px) in the first, region B (2 px) in the second, one good.

    Ten defect-free pixels: one at 0.8, one at 0.5, eight at 0.1.
    Thresholds (flag score >= t) and the curve points (FPR, PRO = mean of region fractions):
      +inf (0, 0); 0.9: A found (0, 0.5); 0.8 (0.1, 0.5); 0.7: half of B (0.1, 0.75);
      0.5 (0.2, 0.75); 0.1: everything, the other half of B tied with 8 negatives (1, 1).
    """
    masks = [
        np.array([[1, 0, 0, 0]], bool),
        np.array([[1, 1, 0, 0, 0]], bool),
        np.zeros((1, 4), bool),
    ]
    maps = [
        np.array([[0.9, 0.8, 0.1, 0.1]]),
        np.array([[0.7, 0.1, 0.5, 0.1, 0.1]]),
        np.full((1, 4), 0.1),
    ]
    return masks, maps


def test_perfect_map_scores_one() -> None:
    masks, _ = _blobs(0)
    maps = [m.astype(float) for m in masks]
    assert aupro(masks, maps) == pytest.approx(1.0)
    assert aupro(masks, maps, num_thresholds=50) == pytest.approx(1.0)


def test_inverted_map_scores_near_zero() -> None:
    masks, maps = _blobs(1)
    assert aupro(masks, [-m for m in maps]) < 0.01
    assert aupro(masks, [1.0 - m.astype(float) for m in masks]) == pytest.approx(0.0)


def test_hand_computed_curve_and_areas() -> None:
    masks, maps = _hand_case()
    curve = pro_curve(masks, maps)
    np.testing.assert_allclose(curve.fpr, [0, 0, 0.1, 0.1, 0.2, 1.0])
    np.testing.assert_allclose(curve.pro, [0, 0.5, 0.5, 0.75, 0.75, 1.0])
    # Limit 0.15 falls inside the flat (0.1, 0.75)-(0.2, 0.75) step:
    # area = 0.1 * 0.5 + 0.05 * 0.75 = 0.0875, normalised 0.0875 / 0.15 = 0.58333...
    assert aupro(masks, maps, fpr_limit=0.15) == pytest.approx(0.0875 / 0.15)
    # Limit 0.6 cuts the sloped last segment (0.2, 0.75)-(1, 1): PRO there 0.75 + 0.25 * 0.4 / 0.8
    # = 0.875; area = 0.05 + 0.075 + 0.4 * (0.75 + 0.875) / 2 = 0.45, normalised 0.45 / 0.6 = 0.75.
    assert aupro(masks, maps, fpr_limit=0.6) == pytest.approx(0.75)
    # Limit exactly on a curve point (0.2): area = 0.05 + 0.075 = 0.125 -> 0.625.
    assert aupro(masks, maps, fpr_limit=0.2) == pytest.approx(0.625)
    # Default limit 0.05 is inside the first flat step at PRO 0.5.
    assert aupro(masks, maps) == pytest.approx(0.5)


def test_regions_are_eight_connected() -> None:
    # Diagonal pixels p=(0,0), q=(1,1) form ONE region with 8-connectivity; C=(3,3) another.
    # Only p is found: PRO = (1/2 + 0) / 2 = 0.25 (4-connectivity would give 1/3).
    # Curve (0, 0) -> (0, 0.25) -> (1, 1); area to FPR 1 = 0.25 + 0.75 / 2 = 0.625.
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = mask[1, 1] = mask[3, 3] = True
    amap = np.zeros((4, 4))
    amap[0, 0] = 1.0
    assert aupro([mask], [amap], fpr_limit=1.0) == pytest.approx(0.625)


def test_monotone_transform_leaves_it_unchanged() -> None:
    masks, maps = _blobs(2)
    base = aupro(masks, maps)
    assert 0.05 < base < 0.95
    assert aupro(masks, [np.exp(3 * m) * 100 + 7 for m in maps]) == pytest.approx(base, abs=1e-12)
    assert aupro(masks, [m.astype(np.float32) for m in maps]) == pytest.approx(base, abs=1e-6)


def test_binned_approaches_exact() -> None:
    masks, maps = _blobs(3)
    exact = aupro(masks, maps, fpr_limit=0.3)
    assert aupro(masks, maps, fpr_limit=0.3, num_thresholds=5000) == pytest.approx(exact, abs=0.01)


def test_matches_full_sort_reference() -> None:
    # Independent brute force over every distinct score, no partition shortcut.
    masks, maps = _blobs(4)
    for limit in (0.05, 0.3):
        assert aupro(masks, maps, fpr_limit=limit) == pytest.approx(_brute_force(masks, maps, limit))


def _brute_force(masks: list[np.ndarray], maps: list[np.ndarray], limit: float) -> float:
    regions = []
    for mask, amap in zip(masks, maps):
        labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
        regions += [amap[labels == r] for r in range(1, count + 1)]
    negatives = np.concatenate([a[~m] for m, a in zip(masks, maps)])
    points = [(0.0, 0.0)]
    for t in np.unique(np.concatenate([a.ravel() for a in maps]))[::-1]:
        points.append(((negatives >= t).mean(), np.mean([(r >= t).mean() for r in regions])))
    fpr, pro = np.array(points).T
    i = int(np.searchsorted(fpr, limit, side="left"))
    y_at = pro[i - 1] + (pro[i] - pro[i - 1]) * (limit - fpr[i - 1]) / (fpr[i] - fpr[i - 1])
    x, y = np.r_[fpr[:i], limit], np.r_[pro[:i], y_at]
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2)) / limit


def test_no_defects_gives_none() -> None:
    masks = [np.zeros((8, 8), bool)] * 2
    maps = [np.random.default_rng(0).random((8, 8)) for _ in range(2)]
    assert aupro(masks, maps) is None


def test_shape_mismatch_names_the_image() -> None:
    masks = [np.zeros((8, 8), bool), np.zeros((8, 8), bool)]
    maps = [np.zeros((8, 8)), np.zeros((8, 9))]
    with pytest.raises(ValueError, match="image 1"):
        aupro(masks, maps)
    with pytest.raises(ValueError, match="2 masks but 1"):
        aupro(masks, maps[:1])
    with pytest.raises(ValueError, match="fpr_limit"):
        aupro(masks, maps, fpr_limit=0.0)


def test_memory_sane_on_many_images() -> None:
    # ~100 images of 256x256 (6.5 M pixels) must stay fast; the partition keeps the sort small.
    rng = np.random.default_rng(5)
    masks = [np.zeros((256, 256), bool) for _ in range(100)]
    for mask in masks[::2]:
        y, x = rng.integers(0, 200, 2)
        mask[y : y + 40, x : x + 30] = True
    maps = [(0.3 * m + rng.random((256, 256), dtype=np.float32)).astype(np.float32) for m in masks]
    value = aupro(masks, maps)
    assert 0.05 < value < 0.95
