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


def to_tensor_batch(images: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """Stack RGB uint8 images ``(H, W, 3)`` of any sizes into a normalised ``(N, 3, size, size)`` batch.

    Resizing is bilinear with antialiasing (torch ``F.interpolate``), done in float on [0, 1]
    values, per image so the result does not depend on what else is in the batch.
    The aspect ratio is not kept: the whole image is always seen, nothing is cropped.
    """
    if len(images) == 0:
        raise ValueError("to_tensor_batch needs at least one image")
    resized = [_resize_image(_check_image(image, i), size) for i, image in enumerate(images)]
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


def _resize_image(image: np.ndarray, size: int) -> torch.Tensor:
    # np.array copies: cached images are read-only and torch warns on those.
    tensor = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None].float() / 255.0
    if tensor.shape[-2:] == (size, size):
        return tensor
    return F.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


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
