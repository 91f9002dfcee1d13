"""Zero-shot maths on CLIP embeddings: text anchors, per-patch abnormal probability, image score.

Pure tensor functions (no open_clip): the CLIP towers that produce the embeddings live in
``clip.py``. A feature is compared with two unit anchors, "normal" and "abnormal" (each the mean
of a prompt ensemble), and the softmax over the two cosine similarities gives the probability
that the feature is abnormal (WinCLIP / AnomalyCLIP / AA-CLIP scoring, without their training).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.methods.instant.torch_model import gaussian_blur

NORMAL, ABNORMAL = 0, 1
"""Rows of the anchor matrix."""


def mean_anchor(embeddings: torch.Tensor) -> torch.Tensor:
    """One unit anchor ``(D,)`` from prompt embeddings ``(P, D)``.

    Each prompt is normalised first so that a prompt with a long embedding does not outweigh
    the others; the mean is normalised again because similarities are cosines.
    """
    if embeddings.ndim != 2 or embeddings.shape[0] == 0:
        raise ValueError(f"expected prompt embeddings (P, D) with P >= 1, got {tuple(embeddings.shape)}")
    return F.normalize(F.normalize(embeddings.float(), dim=-1).mean(dim=0), dim=-1)


def text_anchors(normal: torch.Tensor, abnormal: torch.Tensor) -> torch.Tensor:
    """Anchor matrix ``(2, D)``: row ``NORMAL`` from the normal prompts, row ``ABNORMAL`` from the rest."""
    return torch.stack([mean_anchor(normal), mean_anchor(abnormal)])


def abnormal_probability(features: torch.Tensor, anchors: torch.Tensor, temperature: float) -> torch.Tensor:
    """``P(abnormal)`` of every feature ``(..., D)``: softmax over its two anchor cosines / temperature."""
    cosines = F.normalize(features.float(), dim=-1) @ anchors.float().T
    return torch.softmax(cosines / temperature, dim=-1)[..., ABNORMAL]


def patch_maps(
    layer_tokens: list[torch.Tensor], grid: tuple[int, int], anchors: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Patch-grid maps ``(N, h, w)``: each layer's ``(N, h*w, D)`` tokens scored, layers averaged."""
    if not layer_tokens:
        raise ValueError("patch_maps needs the tokens of at least one layer")
    h, w = grid
    maps = []
    for tokens in layer_tokens:
        if tokens.shape[1] != h * w:
            raise ValueError(f"{tokens.shape[1]} patch tokens do not fill a {h}x{w} grid")
        maps.append(abnormal_probability(tokens, anchors, temperature).reshape(-1, h, w))
    return torch.stack(maps).mean(dim=0)


def upsample_maps(maps: torch.Tensor, size: int, blur_sigma: float) -> torch.Tensor:
    """Patch-grid maps ``(N, h, w)`` -> ``(N, size, size)``: bilinear, then Gaussian-smoothed.

    Smoothing after upsampling removes the patch-grid blockiness that would otherwise show as
    squares in the heat map (AnomalyCLIP smooths with sigma 4 at 518 px)."""
    up = F.interpolate(maps[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    return gaussian_blur(up, blur_sigma)


def top_mean(maps: torch.Tensor, fraction: float) -> torch.Tensor:
    """Mean of each map's highest ``fraction`` of pixels ``(N,)``: a max that one noisy pixel cannot make."""
    flat = maps.flatten(1)
    k = max(1, int(round(fraction * flat.shape[1])))
    return flat.topk(k, dim=1).values.mean(dim=1)


def image_scores(
    maps: torch.Tensor, global_probability: torch.Tensor, top_fraction: float, global_weight: float
) -> torch.Tensor:
    """Image score ``(N,)``: the image token's P(abnormal) blended with the map's top-pixel mean.

    The image token sees the whole part (a missing component), the patches see local damage;
    both are probabilities in [0, 1], so a weighted mean needs no further normalisation."""
    return global_weight * global_probability + (1.0 - global_weight) * top_mean(maps, top_fraction)
