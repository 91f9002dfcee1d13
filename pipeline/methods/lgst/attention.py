"""Single-head scaled dot-product self-attention over the positions of a feature map (thesis §4.7.1).

Each position of ``(N, C, H, W)`` is a token; every token attends to every other one, so the
output at one position depends on the whole map: the long-range context a convolution lacks.
The result is projected back to C channels and added to the input (residual), so the spatial
resolution is kept and the block starts close to the identity of its input.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal_positions(channels: int, height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """Fixed 2-D sine/cosine position code ``(1, channels, H, W)`` (half the channels for rows,
    half for columns). Attention alone is blind to where a token lies; a part in the wrong place
    is a logical anomaly, so queries and keys get this code. Any map size works, no parameters."""
    quarter = max(1, channels // 4)
    frequencies = torch.exp(torch.arange(quarter, dtype=torch.float32, device=device) * (-math.log(1e4) / quarter))
    rows = torch.arange(height, dtype=torch.float32, device=device)[:, None] * frequencies  # (H, q)
    cols = torch.arange(width, dtype=torch.float32, device=device)[:, None] * frequencies  # (W, q)
    row_code = torch.cat([rows.sin(), rows.cos()], dim=1).T[:, :, None].expand(-1, height, width)
    col_code = torch.cat([cols.sin(), cols.cos()], dim=1).T[:, None, :].expand(-1, height, width)
    code = torch.cat([row_code, col_code], dim=0)[:channels]
    if code.shape[0] < channels:  # odd channel counts: pad with zeros
        code = F.pad(code, (0, 0, 0, 0, 0, channels - code.shape[0]))
    return code[None]


class SelfAttention2d(nn.Module):
    """``x (N, C, H, W)`` → ``x + W_o · softmax(QKᵀ/√d) V`` with one head of width ``d``.

    Args:
        channels: C.
        key_fraction: d as a fraction of C (queries and keys are narrower than values, as in
            SAGAN-style blocks; values keep all C channels).
    """

    def __init__(self, channels: int, key_fraction: float = 0.5) -> None:
        super().__init__()
        self.key_dim = max(8, int(round(channels * key_fraction)))
        self.norm = nn.GroupNorm(1, channels)  # layer norm over C and positions: stable softmax inputs
        self.query = nn.Conv2d(channels, self.key_dim, 1)
        self.key = nn.Conv2d(channels, self.key_dim, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, HW, HW)`` softmax weights: row i says how much position i reads from each position."""
        q, k, _ = self._qkv(x)
        return torch.softmax(q @ k.transpose(1, 2) / math.sqrt(self.key_dim), dim=-1)

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n, c, h, w = x.shape
        normed = self.norm(x)
        located = normed + sinusoidal_positions(c, h, w, x.device).to(x.dtype)
        q = self.query(located).flatten(2).transpose(1, 2)  # (N, HW, d)
        k = self.key(located).flatten(2).transpose(1, 2)  # (N, HW, d)
        v = self.value(normed).flatten(2).transpose(1, 2)  # (N, HW, C)
        return q, k, v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self._qkv(x)
        mixed = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]  # (N, HW, C)
        return x + self.out(mixed.transpose(1, 2).reshape(n, c, h, w))
