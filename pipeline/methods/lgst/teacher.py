"""The frozen LGST teacher (SPEC §5 step 8, thesis §4.6.1).

Two mid-level backbone stages, resized to one grid (a quarter of the input side), concatenated,
smoothed by a 3×3 average pool, projected by a fixed seeded 1×1 convolution and normalised per
channel with the training images' mean and standard deviation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.backbones import Backbone


def seeded_projection(in_channels: int, out_channels: int, seed: int) -> torch.Tensor:
    """A fixed ``(out, in, 1, 1)`` projection with orthonormal rows (or columns when widening):
    distances between feature vectors survive it, and the same seed gives the same matrix on
    every machine (drawn on the CPU generator)."""
    generator = torch.Generator().manual_seed(int(seed))
    gaussian = torch.randn(max(in_channels, out_channels), min(in_channels, out_channels), generator=generator)
    q, _ = torch.linalg.qr(gaussian)  # (max, min) with orthonormal columns
    matrix = q if out_channels >= in_channels else q.T  # (out, in)
    return matrix.reshape(out_channels, in_channels, 1, 1).contiguous()


class Teacher(nn.Module):
    """``x (N, 3, S, S)`` normalised image → ``(N, C, grid, grid)`` normalised teacher features.

    Never trains: the backbone is frozen and the projection and statistics are buffers, so
    ``parameters()`` is empty and a state dict holds everything needed to rebuild it.
    """

    def __init__(self, backbone: Backbone, stages: tuple[str, str], out_channels: int, grid: int, seed: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.stages = tuple(stages)
        self.grid = int(grid)
        names = backbone.info.stage_names
        in_channels = sum(backbone.info.channels[names.index(s)] for s in self.stages)
        self.register_buffer("projection", seeded_projection(in_channels, out_channels, seed))
        self.register_buffer("mean", torch.zeros(1, out_channels, 1, 1))
        self.register_buffer("std", torch.ones(1, out_channels, 1, 1))

    @property
    def out_channels(self) -> int:
        return int(self.projection.shape[0])

    @torch.no_grad()
    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """Projected features before the per-channel normalisation."""
        features = self.backbone(x, self.stages)
        size = (self.grid, self.grid)
        joined = torch.cat(
            [F.interpolate(features[s], size=size, mode="bilinear", align_corners=False) for s in self.stages], dim=1
        )
        smoothed = F.avg_pool2d(joined, kernel_size=3, stride=1, padding=1, count_include_pad=False)
        return F.conv2d(smoothed, self.projection)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.raw(x) - self.mean) / self.std

    @torch.no_grad()
    def fit_normalisation(self, batches) -> None:
        """Per-channel mean and std over every grid position of every image in ``batches``
        (an iterable of normalised image batches), accumulated in float64."""
        total, total_sq, count = None, None, 0
        for x in batches:
            f = self.raw(x).double()
            s, sq = f.sum(dim=(0, 2, 3)), (f * f).sum(dim=(0, 2, 3))
            total = s if total is None else total + s
            total_sq = sq if total_sq is None else total_sq + sq
            count += f.shape[0] * f.shape[2] * f.shape[3]
        if total is None:
            raise ValueError("teacher normalisation needs at least one image")
        mean = total / count
        std = (total_sq / count - mean * mean).clamp_min(1e-12).sqrt()
        self.mean.copy_(mean.float().view(1, -1, 1, 1))
        self.std.copy_(std.float().clamp_min(1e-6).view(1, -1, 1, 1))
