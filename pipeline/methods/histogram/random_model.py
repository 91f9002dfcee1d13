"""A histogram detector with the shapes of a fitted one, random weights and neutral statistics.

The benchmark times the real inference code without a workspace: timings do not depend on weight
values, so random weights (``build_backbone(checkpoint=None)``) and identity statistics are enough.
Tests use the same builders, on tiny settings, to get a detector in milliseconds instead of a fit.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.methods.fusion import TrimmedZ
from pipeline.methods.histogram.colours import ColourModel
from pipeline.methods.histogram.method import GRID, HistogramDetector
from pipeline.methods.histogram.scoring import HistogramModel
from pipeline.methods.segmentation.settings import SegmentationSettings
from pipeline.methods.segmentation.torch_model import SegmentationNet
from pipeline.models.backbones import Backbone

N_CLASSES = 4
"""Component classes of the benchmark's segmenter (the synthetic categories have 2–5)."""


def random_histogram_model(n_classes: int = N_CLASSES, grid: int = GRID, seed: int = 0) -> HistogramModel:
    """A histogram model with uniform mean fractions and a random SPD precision matrix."""
    rng = np.random.default_rng(seed)
    k, regions = n_classes + 1, 1 + grid * grid

    def spd(d: int) -> np.ndarray:
        a = rng.normal(size=(d, d))
        return a @ a.T / d + np.eye(d)

    return HistogramModel(
        n_classes=n_classes, grid=grid, min_component_fraction=1e-4, n_train=100,
        global_mean=np.full(k, 1.0 / k), global_precision=spd(k),
        grid_mean=np.full(grid * grid * k, 1.0 / k), grid_precision=spd(grid * grid * k),
        fraction_median=np.full((regions, k), 1.0 / k), fraction_std=np.full((regions, k), 0.05),
        count_median=np.ones((regions, n_classes)), count_std=np.full((regions, n_classes), 0.5),
    )


def random_colour_model(n_classes: int = N_CLASSES, seed: int = 0) -> ColourModel:
    """A part-colour model with grey fill colours and a random SPD precision matrix."""
    rng = np.random.default_rng(seed + 1)
    d = 4 * n_classes + 1
    a = rng.normal(size=(d, d))
    return ColourModel(n_classes, 1e-3, np.full((n_classes, 3), 0.5), np.full(d, 0.5), a @ a.T / d + np.eye(d))


def random_histogram_detector(settings: SegmentationSettings, backbone: Backbone, n_classes: int = N_CLASSES,
                              device: torch.device | str = "cpu", seed: int = 0) -> HistogramDetector:
    torch.manual_seed(seed)
    net = SegmentationNet(backbone, n_classes, settings).to(device).eval()
    names = {c: f"part{c}" for c in range(1, n_classes + 1)}
    return HistogramDetector(net, random_histogram_model(n_classes, seed=seed), settings.image_size, names,
                             TrimmedZ(0.0, 1.0), TrimmedZ(0.0, 1.0), random_colour_model(n_classes, seed), TrimmedZ(0.0, 1.0))
