"""The local student: a PDN-M-shaped shallow CNN (EfficientAD) with two 1×1 heads (SPEC §5 step 8).

Two 4×4 convolutions each followed by 2×2 average pooling, then 1×1, 3×3 and 4×4 convolutions:
a receptive field of 33 px, so each output position only sees a small patch and reproduces the
teacher there; a scratch it never saw in training is where it fails. One head regresses the
teacher, the other the global student (thesis eq. 4.12, the map that catches logical anomalies).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

def receptive_field() -> int:
    """Receptive field of the trunk in input px, from its layer list (kernel, stride) pairs."""
    layers = [(4, 1), (2, 2), (4, 1), (2, 2), (1, 1), (3, 1), (4, 1)]
    field, jump = 1, 1
    for kernel, stride in layers:
        field += (kernel - 1) * jump
        jump *= stride
    return field


class AveragePool2x2(nn.Module):
    """``nn.AvgPool2d(2, 2, padding=1)`` (zeros in the padding counted) computed as a depthwise
    convolution with weights 1/4: the same numbers, but about 3× faster forward and backward on
    CPU (oneDNN), where the two poolings took a tenth of an LGST training step."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        # Not persistent: checkpoints hold exactly the parameters they held with nn.AvgPool2d.
        self.register_buffer("weight", torch.full((int(channels), 1, 2, 2), 0.25), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, stride=2, padding=1, groups=self.weight.shape[0])


class LocalStudent(nn.Module):
    """``x (N, 3, S, S)`` → ``(teacher_like, global_like)``, each ``(N, C, grid, grid)``.

    Args:
        out_channels: C, the teacher's channel count.
        widths: (first, second) conv widths (EfficientAD PDN-M: 256, 512).
        grid: output side; the trunk's map (about S/4 + 6 with padding) is resized to it.
    """

    def __init__(self, out_channels: int, widths: tuple[int, int] = (256, 512), grid: int = 64,
                 norm: bool = False) -> None:
        super().__init__()
        w1, w2 = int(widths[0]), int(widths[1])
        self.grid = int(grid)

        def act(width: int) -> list[nn.Module]:
            # GroupNorm (per image, so batch size and eval mode don't matter) speeds up short runs.
            return ([nn.GroupNorm(8, width)] if norm else []) + [nn.ReLU(inplace=True)]

        # Zero padding as in CSAD's padded PDN, so border parts are scored too.
        self.trunk = nn.Sequential(
            nn.Conv2d(3, w1, 4, padding=3), *act(w1), AveragePool2x2(w1),
            nn.Conv2d(w1, w2, 4, padding=3), *act(w2), AveragePool2x2(w2),
            nn.Conv2d(w2, w2, 1), *act(w2),
            nn.Conv2d(w2, w2, 3, padding=1), *act(w2),
            nn.Conv2d(w2, w2, 4, padding=3), *act(w2),
        )
        self.teacher_head = nn.Conv2d(w2, out_channels, 1)
        self.global_head = nn.Conv2d(w2, out_channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = F.interpolate(self.trunk(x), size=(self.grid, self.grid), mode="bilinear", align_corners=False)
        return self.teacher_head(hidden), self.global_head(hidden)
