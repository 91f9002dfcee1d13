"""The one image resizer and normaliser, used by training and inference alike.

A reproduction lost 5 AUROC points by resizing with one library in training and another at test
time (SPEC §5 end), so every image that reaches a network goes through ``to_tensor_batch`` and
every map shown at image resolution through ``resize_map``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""Per-channel RGB mean of ImageNet in [0, 1], expected by every bundled backbone."""

IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel RGB standard deviation of ImageNet in [0, 1]."""


ASPECT_STEP = 32
"""The long side of an aspect-keeping input is a multiple of this (the coarsest backbone stride),
so every stage's grid covers the image without a ragged edge."""


def aspect_shape(shape: tuple[int, ...], size: int, max_aspect: float = 1.0) -> tuple[int, int]:
    """Network input ``(H, W)`` for an image of ``shape``: the short side is ``size`` and the long
    side keeps the image's aspect ratio up to ``max_aspect`` × ``size`` (rounded to ``ASPECT_STEP``).
    ``max_aspect = 1`` is the square ``(size, size)``; a square image always gets it.

    Why: squeezing a 500×1250 photo into a square shrinks it 5× along its length, and a crack a
    few pixels wide across that direction vanishes (KolektorSDD: retrieval AUROC 0.70 square,
    0.82 at 256×640)."""
    height, width = int(shape[0]), int(shape[1])
    ratio = min(max(height, width) / max(min(height, width), 1), max(float(max_aspect), 1.0))
    long_side = max(size, int(round(size * ratio / ASPECT_STEP)) * ASPECT_STEP)
    return (long_side, size) if height > width else (size, long_side) if width > height else (size, size)


def to_tensor_batch(images: Sequence[np.ndarray], size: int | tuple[int, int]) -> torch.Tensor:
    """Stack RGB uint8 images ``(H, W, 3)`` of any sizes into a normalised ``(N, 3, h, w)`` batch,
    ``(h, w)`` = ``size`` (an int: a square).

    Resizing is bilinear with antialiasing (torch ``F.interpolate``), done in float on [0, 1]
    values, per image so the result does not depend on what else is in the batch.
    The aspect ratio is not kept: the whole image is always seen, nothing is cropped.
    """
    if len(images) == 0:
        raise ValueError("to_tensor_batch needs at least one image")
    size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    resized = [resize_image_tensor(_check_image(image, i), size) for i, image in enumerate(images)]
    batch = torch.cat(resized)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (batch - mean) / std


def _check_image(image: np.ndarray, index: int) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ValueError(f"image {index}: expected uint8 RGB (H, W, 3), got {dtype} {shape}")
    return image


def resize_image_tensor(image: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """One RGB uint8 image as a ``(1, 3, h, w)`` float tensor in 0..1 at ``size`` (``to_tensor_batch``'s resize)."""
    # np.array copies: cached images are read-only and torch warns on those.
    tensor = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None].float() / 255.0
    if tuple(tensor.shape[-2:]) == size:
        return tensor
    return F.interpolate(tensor, size=size, mode="bilinear", antialias=True, align_corners=False)


def resize_map(m: np.ndarray | torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """Resize a float map ``(h, w)`` to ``shape`` ``(H, W)`` bilinearly; returns float32 NumPy.

    Same interpolation as ``to_tensor_batch`` so a map lines up with the image it came from.
    """
    tensor = torch.as_tensor(m).detach().to("cpu", torch.float32)
    if tensor.ndim != 2:
        raise ValueError(f"resize_map expects a 2-D map (h, w), got shape {tuple(tensor.shape)}")
    height, width = int(shape[0]), int(shape[1])
    if tuple(tensor.shape) != (height, width):
        tensor = F.interpolate(
            tensor[None, None], size=(height, width), mode="bilinear", antialias=True, align_corners=False
        )[0, 0]
    return np.array(tensor.numpy(), dtype=np.float32)  # a copy: never alias the caller's array
