"""The global student: a convolutional encoder–decoder that reconstructs the teacher's features
from the image alone (SPEC §5 step 8, thesis §4.6.3–4.7).

Encoder: five 4×4 stride-2 convolutions (S → S/32). Decoder: bilinear upsampling with 3×3
convolutions back to the teacher grid, then a 1×1 projection to C channels. No skip connections:
everything the decoder knows passes through the narrow middle, so it can only reproduce what is
typical of good images.

- ``attention=True`` (AeCSAD): single-head self-attention blocks in the encoder after the
  stride-16 and stride-32 convolutions (16×16 and 8×8 for a 256 px input) and in the decoder at
  the same resolutions; the middle stays an S/32 map, never pooled to 1×1, so where parts lie is
  kept while every position can relate to every other.
- ``attention=False`` (CSAD): a plain CNN autoencoder whose middle is squeezed to 1×1 by an
  S/32-wide convolution and expanded back, the baseline the thesis compares against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.errors import SettingsError
from pipeline.methods.lgst.attention import SelfAttention2d


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.ReLU(inplace=True))


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True))


class GlobalStudent(nn.Module):
    """``x (N, 3, S, S)`` → ``(N, C, grid, grid)`` reconstructed teacher features.

    Args:
        out_channels: C.
        image_size: S (a multiple of 32); fixes the 1×1 bottleneck kernel of the CSAD variant.
        grid: output side (the teacher grid).
        width: base channel count w; the encoder widens to 4w.
        attention: AeCSAD (True) or CSAD (False), see the module docstring.
        key_fraction: query/key width of the attention blocks as a fraction of their channels.
    """

    def __init__(self, out_channels: int, image_size: int = 256, grid: int = 64, width: int = 64,
                 attention: bool = True, key_fraction: float = 0.5) -> None:
        super().__init__()
        if image_size % 32:
            raise SettingsError(f"the global student needs an image side divisible by 32, got {image_size}")
        w = int(width)
        self.grid, self.attention = int(grid), bool(attention)
        self.bottom = image_size // 32
        self.encoder = nn.ModuleList([_down(3, w), _down(w, 2 * w), _down(2 * w, 2 * w),
                                      _down(2 * w, 4 * w), _down(4 * w, 4 * w)])
        if self.attention:
            self.enc_attn = nn.ModuleDict({"16": SelfAttention2d(4 * w, key_fraction), "32": SelfAttention2d(4 * w, key_fraction)})
            self.dec_attn = nn.ModuleDict({"32": SelfAttention2d(4 * w, key_fraction), "16": SelfAttention2d(4 * w, key_fraction)})
        else:
            self.squeeze = nn.Conv2d(4 * w, 4 * w, self.bottom)  # S/32 × S/32 → 1×1
        self.decoder = nn.ModuleList([_conv(4 * w, 4 * w), _conv(4 * w, 4 * w), _conv(4 * w, 2 * w), _conv(2 * w, 2 * w)])
        self.project = nn.Conv2d(2 * w, out_channels, 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The S/32 middle map (AeCSAD) or the 1×1 code (CSAD)."""
        for index, block in enumerate(self.encoder):
            x = block(x)
            stride = 2 ** (index + 1)
            if self.attention and str(stride) in self.enc_attn:
                x = self.enc_attn[str(stride)](x)
        return x if self.attention else F.relu(self.squeeze(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Middle map → ``(N, C, grid, grid)``: strides 32 → 16 → 8 → 4, then the grid size."""
        x = z if self.attention else F.interpolate(z, size=(self.bottom, self.bottom), mode="nearest")
        x = self.decoder[0](x)
        if self.attention:
            x = self.dec_attn["32"](x)
        for block, stride in zip(self.decoder[1:], (16, 8, 4)):
            x = block(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))
            if self.attention and stride == 16:
                x = self.dec_attn["16"](x)
        x = F.interpolate(x, size=(self.grid, self.grid), mode="bilinear", align_corners=False)
        return self.project(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
