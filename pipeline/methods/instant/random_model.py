"""An instant detector with the memory bank size of a fitted one and random rows and weights
(the benchmark's and the tests' stand-in for a fit: timings do not depend on weight values)."""

from __future__ import annotations

from dataclasses import replace

import torch

from pipeline.methods.instant.model import DeepBank, InstantDetector, InstantModel, InstantSettings
from pipeline.methods.instant.torch_model import PatchEmbedder
from pipeline.models.backbones import Backbone, build_backbone


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
