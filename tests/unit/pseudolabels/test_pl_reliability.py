"""Class histograms and the HDBSCAN reliable/unreliable split, with user overrides."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.pseudolabels.reliability import class_histograms, split_reliable
from pipeline.pseudolabels.settings import ReliabilitySettings


def _typical(rng: np.random.Generator) -> np.ndarray:
    """A 20x20 map: background, one big class-1 part and a class-2 part of varying size."""
    label_map = np.zeros((20, 20), np.uint8)
    label_map[2:12, 2:12] = 1
    height, width = rng.integers(3, 7, size=2)
    label_map[13:13 + height, 13:13 + width] = 2
    return label_map


def test_class_histograms_are_area_fractions():
    label_map = np.zeros((10, 10), np.uint8)
    label_map[:5, :2] = 1
    label_map[9, 9] = 7  # above n_classes: counted as background
    hist = class_histograms([label_map], 2)
    assert hist.dtype == np.float32 and hist.shape == (1, 3)
    assert hist[0].tolist() == pytest.approx([0.9, 0.1, 0.0])


def test_outlier_histogram_is_unreliable_and_typical_ones_reliable():
    rng = np.random.default_rng(0)
    maps = [_typical(rng) for _ in range(20)]
    outlier = np.full((20, 20), 2, np.uint8)  # everything one class: an under-segmented image
    maps.append(outlier)
    keys = [f"train/good/{i:03d}.png" for i in range(len(maps))]
    result = split_reliable(maps, keys, 2, ReliabilitySettings())
    assert not result.reliable[-1] and not result.automatic[-1]
    assert result.reliable[:-1].mean() >= 0.9
    assert result.distance[-1] > result.distance[:-1].max()
    assert result.histograms.shape == (21, 3) and result.image_keys == tuple(keys)


def test_overrides_win_over_the_automatic_split():
    rng = np.random.default_rng(1)
    maps = [_typical(rng) for _ in range(20)] + [np.full((20, 20), 2, np.uint8)]
    keys = [f"k{i}" for i in range(len(maps))]
    overrides = {"k20": True, "k0": False}
    result = split_reliable(maps, keys, 2, ReliabilitySettings(), overrides)
    assert result.reliable[20] and not result.automatic[20]
    assert not result.reliable[0] and result.automatic[0]


def test_tiny_or_uniform_sets_are_all_reliable():
    same = [np.ones((4, 4), np.uint8)] * 3
    assert split_reliable(same, ["a", "b", "c"], 1).reliable.all()
    assert split_reliable([], [], 1).reliable.shape == (0,)
