"""Detectors with the shapes of fitted ones, random weights and neutral statistics.

The benchmark times the real inference code (``LgstDetector``, ``HistogramDetector``,
``InstantDetector``) without a workspace: timings do not depend on weight values, so random
weights (``build_backbone(checkpoint=None)``) and identity statistics are enough. Tests use the
same builders, on tiny settings, to get a detector in milliseconds instead of a 30 s fit.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from pipeline.methods.aecsad.method import BRANCHES, MAP_BLUR_SIGMA, RETRIEVAL, LgstDetector
from pipeline.methods.fusion import Fusion, FusionSettings, TrimmedZ
from pipeline.methods.histogram.colours import ColourModel
from pipeline.methods.histogram.method import GRID, HistogramDetector
from pipeline.methods.histogram.scoring import HistogramModel
from pipeline.methods.instant.model import DeepBank, InstantDetector, InstantModel, InstantSettings
from pipeline.methods.instant.torch_model import PatchEmbedder
from pipeline.methods.lgst.maps import MapNormalisation, QuantileRange
from pipeline.methods.lgst.settings import LgstSettings
from pipeline.methods.lgst.torch_model import LgstNet
from pipeline.methods.segmentation.settings import SegmentationSettings
from pipeline.methods.segmentation.torch_model import SegmentationNet
from pipeline.models.backbones import Backbone, build_backbone

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


def random_lgst_detector(profile: str = "quick", attention: bool = True, device: torch.device | str = "cpu",
                         backbone: str = "efficientnet_lite0", seed: int = 0,
                         seg_overrides: dict | None = None, lgst_overrides: dict | None = None,
                         fusion: FusionSettings = FusionSettings()) -> LgstDetector:
    """An AeCSAD (``attention``) or CSAD detector of ``profile``'s shapes with random weights,
    its retrieval branch a memory bank of random rows (``fusion.retrieval``).

    One backbone module is shared by the segmenter, the teacher and the retrieval embedder, as in
    a loaded detector (there each builds its own copy of the same weights: same compute).
    """
    seg = SegmentationSettings.for_profile(profile, seed=seed, backbone=backbone, **(seg_overrides or {}))
    lgst = LgstSettings.for_profile(profile, attention=attention, seed=seed, backbone=backbone, **(lgst_overrides or {}))
    torch.manual_seed(seed)
    net_backbone = build_backbone(backbone, checkpoint=None, device=device)
    hist = random_histogram_detector(seg, net_backbone, device=device, seed=seed)
    net = LgstNet(net_backbone, lgst).to(device).eval()
    norm = MapNormalisation(QuantileRange(0.0, 1.0), QuantileRange(0.0, 1.0))
    branches = [b for b in BRANCHES if fusion.retrieval or b != RETRIEVAL]
    retrieval = None
    if fusion.retrieval:
        retrieval = random_instant_detector(profile, device, backbone=backbone, seed=seed, shared=net_backbone,
                                            image_size=lgst.image_size)
    return LgstDetector(lgst.method, hist, net, norm, Fusion({b: TrimmedZ(0.0, 1.0) for b in branches}, fusion.top_k),
                        retrieval, blur_sigma=MAP_BLUR_SIGMA)


def random_instant_detector(profile: str = "quick", device: torch.device | str = "cpu", n_train: int = 200,
                            backbone: str = "efficientnet_lite0", seed: int = 0, shared: Backbone | None = None,
                            image_size: int | None = None) -> InstantDetector:
    """An instant detector whose memory bank has the size a fit on ``n_train`` images would keep
    (``shared``: an already built backbone of the same name to embed with)."""
    settings = replace(InstantSettings.for_profile(profile, seed=seed), backbone=backbone)
    settings = replace(settings, image_size=image_size or settings.image_size)
    embedder = PatchEmbedder(shared or build_backbone(backbone, checkpoint=None, device=device), settings.stage_names,
                             settings.deep_stage_names).to(device)
    generator = torch.Generator().manual_seed(seed)

    def bank(stride: int, channels: int) -> torch.Tensor:
        side = settings.image_size // stride
        rows = min(settings.max_bank, max(1, int(round(n_train * side * side * settings.coreset_ratio))))
        return torch.randn(rows, channels, generator=generator)

    # the finest default stage has stride 8, the deep bank's 16
    model = InstantModel(replace(settings, deep_layers=embedder.deep_layers), bank(8, embedder.channels),
                         torch.zeros(0, embedder.channels))
    if embedder.deep_layers:
        deep = bank(16, embedder.deep_channels)
        model = replace(model, deep=DeepBank(deep, torch.zeros(0, deep.shape[1]), (0.0, 1.0), (0.0, 1.0)))
    return InstantDetector(model, embedder, torch.device(device))
