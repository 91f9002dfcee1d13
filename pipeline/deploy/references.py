"""Reference architectures for the benchmark, from their published layer shapes, random weights.

- EfficientAD (Batzner et al., 2024): PDN-S / PDN-M teacher (384 channels), a student PDN of the
  same shape with 768 outputs (384 regress the teacher, 384 the autoencoder), and the
  convolutional autoencoder (six stride-2 encoder convs down to 1×1, bilinear upsampling decoder
  to 56×56). Inference: both maps, quantile normalisation, sum, padded and resized to the image,
  score = maximum. Layer shapes as in the authors' reference code (``get_pdn_small``,
  ``get_pdn_medium``, ``get_autoencoder``).
- PatchCore (Roth et al., 2022): WideResNet-50-2 ``layer2`` + ``layer3``, 3×3 neighbourhood
  averaging, ``layer3`` upsampled to the ``layer2`` grid, channels pooled to 1024, nearest
  neighbour (L2) to a memory bank of 10% of the training patches, score map upsampled and blurred
  (σ = 4), score = maximum. Exhaustive search (its default without FAISS on CPU).

Timings do not depend on weight values, so random weights stand in for the trained ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.methods.instant.torch_model import gaussian_blur, nearest_distances

EFFICIENTAD_CHANNELS = 384


def pdn_small(out_channels: int = EFFICIENTAD_CHANNELS) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 128, 4), nn.ReLU(inplace=True), nn.AvgPool2d(2, 2),
        nn.Conv2d(128, 256, 4), nn.ReLU(inplace=True), nn.AvgPool2d(2, 2),
        nn.Conv2d(256, 256, 3), nn.ReLU(inplace=True),
        nn.Conv2d(256, out_channels, 4),
    )


def pdn_medium(out_channels: int = EFFICIENTAD_CHANNELS) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 256, 4), nn.ReLU(inplace=True), nn.AvgPool2d(2, 2),
        nn.Conv2d(256, 512, 4), nn.ReLU(inplace=True), nn.AvgPool2d(2, 2),
        nn.Conv2d(512, 512, 1), nn.ReLU(inplace=True),
        nn.Conv2d(512, 512, 3), nn.ReLU(inplace=True),
        nn.Conv2d(512, out_channels, 4), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 1),
    )


def efficientad_autoencoder(out_channels: int = EFFICIENTAD_CHANNELS) -> nn.Sequential:
    def up(size: int) -> list[nn.Module]:
        return [nn.Upsample(size=size, mode="bilinear"), nn.Conv2d(64, 64, 4, 1, 2), nn.ReLU(inplace=True),
                nn.Dropout(0.2)]

    encoder = [nn.Conv2d(3, 32, 4, 2, 1), nn.ReLU(inplace=True), nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(inplace=True),
               nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(inplace=True), nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU(inplace=True),
               nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU(inplace=True), nn.Conv2d(64, 64, 8)]
    decoder = [m for size in (3, 8, 15, 32, 63, 127) for m in up(size)]
    decoder += [nn.Upsample(size=56, mode="bilinear"), nn.Conv2d(64, 64, 3, 1, 1), nn.ReLU(inplace=True),
                nn.Conv2d(64, out_channels, 3, 1, 1)]
    return nn.Sequential(*encoder, *decoder)


class EfficientAD(nn.Module):
    """``x (N, 3, 256, 256)`` normalised → ``(score (N,), map (N, 256, 256))``."""

    def __init__(self, size: str = "m") -> None:
        super().__init__()
        pdn = {"s": pdn_small, "m": pdn_medium}[size]
        c = EFFICIENTAD_CHANNELS
        self.teacher, self.student, self.autoencoder = pdn(c), pdn(2 * c), efficientad_autoencoder(c)
        self.register_buffer("teacher_mean", torch.zeros(1, c, 1, 1))
        self.register_buffer("teacher_std", torch.ones(1, c, 1, 1))
        self.q = (0.0, 1.0, 0.0, 1.0)  # quantiles of the st and ae maps (fitted on validation)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = EFFICIENTAD_CHANNELS
        teacher = (self.teacher(x) - self.teacher_mean) / self.teacher_std
        student = self.student(x)
        ae = self.autoencoder(x)
        map_st = (teacher - student[:, :c]).pow(2).mean(dim=1, keepdim=True)
        map_ae = (ae - student[:, c:]).pow(2).mean(dim=1, keepdim=True)
        qa_st, qb_st, qa_ae, qb_ae = self.q
        combined = 0.5 * 0.1 * (map_st - qa_st) / (qb_st - qa_st) + 0.5 * 0.1 * (map_ae - qa_ae) / (qb_ae - qa_ae)
        combined = F.interpolate(F.pad(combined, (4, 4, 4, 4)), size=x.shape[-2:], mode="bilinear")
        return combined.amax(dim=(1, 2, 3)), combined[:, 0]


class PatchCore(nn.Module):
    """``x (N, 3, 256, 256)`` normalised → ``(score (N,), map (N, 256, 256))``."""

    def __init__(self, bank_rows: int, dim: int = 1024, seed: int = 0) -> None:
        super().__init__()
        import torchvision

        wrn = torchvision.models.wide_resnet50_2(weights=None).eval()
        self.stem = nn.Sequential(wrn.conv1, wrn.bn1, wrn.relu, wrn.maxpool, wrn.layer1)
        self.layer2, self.layer3 = wrn.layer2, wrn.layer3
        self.dim = dim
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("bank", torch.randn(bank_rows, dim, generator=generator))

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        f2 = self.layer2(self.stem(x))
        f3 = self.layer3(f2)
        grid = f2.shape[-2:]
        parts = [F.avg_pool2d(f, 3, 1, 1) for f in (f2, f3)]
        parts[1] = F.interpolate(parts[1], size=grid, mode="bilinear", align_corners=False)
        joined = torch.cat(parts, dim=1)  # (N, 1536, h, w)
        n, c, h, w = joined.shape
        patches = joined.permute(0, 2, 3, 1).reshape(n * h * w, 1, c)
        return F.adaptive_avg_pool1d(patches, self.dim).reshape(n, h, w, self.dim)

    @torch.no_grad()
    def score(self, patches: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        n, h, w, d = patches.shape
        dist = nearest_distances(patches.reshape(-1, d), self.bank).view(n, 1, h, w)
        full = F.interpolate(dist, size=size, mode="bilinear", align_corners=False)[:, 0]
        full = gaussian_blur(full, 4.0)
        return full.amax(dim=(1, 2)), full

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.score(self.features(x), x.shape[-2:])
