"""Component features (SPEC §5 step 3): a square crop around each component, its rotations and
flips, the backbone's deepest stage, global average pooling, the average over the variants.

Every crop goes through ``to_tensor_batch``, the project's one resizer and normaliser.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.errors import SettingsError
from pipeline.models.preprocess import IMAGENET_MEAN, IMAGENET_STD, to_tensor_batch
from pipeline.pseudolabels.settings import FeatureSettings
from pipeline.pseudolabels.types import ImageComponents

MASK_FILLS = ("mean", "black", "none")


def component_features(
    image: np.ndarray,
    components: ImageComponents,
    backbone: torch.nn.Module,
    settings: FeatureSettings = FeatureSettings(),
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """float32 ``(K, D)``: one row per component ``1..K`` of ``components.instances``.

    Args:
        image: uint8 RGB ``(H, W, 3)``, the image the components were found in.
        backbone: a frozen ``Backbone`` (forward returns ``{stage: (N, C, h, w)}``).
        device: where the crops are run.
    """
    if settings.mask_fill not in MASK_FILLS:
        raise SettingsError(f"unknown mask_fill {settings.mask_fill!r}; choose one of {MASK_FILLS}")
    count = components.count
    stage = settings.stage or backbone.info.stage_names[-1]
    if count == 0:
        return np.zeros((0, _output_dim(backbone, stage, settings)), np.float32)
    crops = [component_crop(image, components.instances == k, settings) for k in range(1, count + 1)]
    rows = []
    for start in range(0, count, settings.batch_size):
        batch = to_tensor_batch(crops[start:start + settings.batch_size], settings.crop_size)
        rows.append(_pooled(backbone, batch.to(device), stage, settings))
    features = torch.cat(rows).cpu().numpy().astype(np.float32)
    return project(features, settings)


def component_colours(image: np.ndarray, components: ImageComponents) -> np.ndarray:
    """float32 ``(K, 3)``: each component's mean CIELAB colour (L*, a*, b*), components 1..K."""
    from skimage.color import rgb2lab

    count = components.count
    if count == 0:
        return np.zeros((0, 3), np.float32)
    lab = rgb2lab(image).reshape(-1, 3)
    index = components.instances.reshape(-1)
    sums = np.stack([np.bincount(index, weights=lab[:, c], minlength=count + 1)[1:count + 1] for c in range(3)], 1)
    sizes = np.bincount(index, minlength=count + 1)[1:count + 1]
    return (sums / np.maximum(sizes, 1)[:, None]).astype(np.float32)


def component_crop(image: np.ndarray, mask: np.ndarray, settings: FeatureSettings = FeatureSettings()) -> np.ndarray:
    """uint8 RGB ``(S, S, 3)``: the square around ``mask``'s bounding box (centred on it, side =
    its longer side plus ``crop_padding`` on each side), pixels outside the mask replaced as
    ``mask_fill`` says; parts of the square outside the image count as outside the mask."""
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        raise ValueError("cannot crop an empty component")
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    extent = np.hypot(y1 - y0, x1 - x0) if settings.crop_side == "diagonal" else max(y1 - y0, x1 - x0)
    side = int(np.ceil(max(extent * (1 + 2 * settings.crop_padding), settings.min_crop * max(mask.shape))))
    top, left = (y0 + y1 - side) // 2, (x0 + x1 - side) // 2
    crop = _window(image, top, left, side).astype(np.float32)
    inside = _window(mask[..., None], top, left, side)[..., 0].astype(bool)
    if settings.colour_invariance > 0:
        # Shift the component's mean colour towards neutral grey: what stays is its shape and
        # inner contrast, which is what a part type shares across colour variants.
        shift = crop[inside].mean(0) - np.array(IMAGENET_MEAN, np.float32) * 255
        crop = crop - settings.colour_invariance * shift
    if settings.mask_fill != "none":
        crop = np.where(inside[..., None], crop, _fill_colour(settings.mask_fill))
    return np.ascontiguousarray(np.clip(np.round(crop), 0, 255), dtype=np.uint8)


def project(features: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """The features times a fixed Gaussian matrix ``(D, projection_dim)`` drawn from
    ``settings.seed`` (an unseeded projection made cluster counts swing between runs)."""
    if not settings.projection_dim:
        return features
    rng = np.random.default_rng(settings.seed)
    matrix = rng.standard_normal((features.shape[1], settings.projection_dim)) / np.sqrt(settings.projection_dim)
    return (features @ matrix).astype(np.float32)


def variants(batch: torch.Tensor, rotations: int = 4, fill: torch.Tensor | None = None) -> list[torch.Tensor]:
    """The ``2 × rotations`` rotations/flips of a square batch ``(N, C, S, S)``: rotations by
    ``k · 360° / rotations`` of the batch and of its mirror image. With 4 rotations these are
    the 8 symmetries of the square (they contain the horizontal and vertical flips); the set is
    closed under 90° rotation, so the average is exactly invariant to it. Angles between the
    right angles are resampled bilinearly, the corners filled with ``fill`` ``(C,)`` (default 0).
    """
    if rotations % 4:
        raise SettingsError(f"rotations must be a multiple of 4, got {rotations}")
    out = []
    for image in (batch, torch.flip(batch, dims=(3,))):
        for step in range(rotations // 4):
            turned = _rotate(image, 360.0 * step / rotations, fill)
            out += [torch.rot90(turned, k, dims=(2, 3)) for k in range(4)]
    return out


def _rotate(batch: torch.Tensor, degrees: float, fill: torch.Tensor | None) -> torch.Tensor:
    """``batch`` rotated about its centre (bilinear); uncovered corners get ``fill``."""
    if degrees == 0:
        return batch
    angle = torch.tensor(np.deg2rad(degrees), dtype=batch.dtype)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros(())]), torch.stack([sin, cos, torch.zeros(())])])
    grid = torch.nn.functional.affine_grid(theta.expand(len(batch), 2, 3), list(batch.shape), align_corners=False)
    if fill is None:
        return torch.nn.functional.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    shifted = batch - fill.view(1, -1, 1, 1)  # zero padding then means padding with ``fill``
    turned = torch.nn.functional.grid_sample(shifted, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return turned + fill.view(1, -1, 1, 1)


def _pooled(backbone: torch.nn.Module, batch: torch.Tensor, stage: str, settings: FeatureSettings) -> torch.Tensor:
    inputs = variants(batch, settings.rotations, _fill_tensor(settings)) if settings.variants else [batch]
    with torch.no_grad():
        stacked = torch.cat(inputs)
        pooled = backbone(stacked, stages=[stage])[stage].mean(dim=(2, 3))
    return pooled.view(len(inputs), len(batch), -1).mean(0)


def _output_dim(backbone: torch.nn.Module, stage: str, settings: FeatureSettings) -> int:
    if settings.projection_dim:
        return settings.projection_dim
    return backbone.info.channels[backbone.info.stage_names.index(stage)]


def _fill_tensor(settings: FeatureSettings) -> torch.Tensor | None:
    """The normalised value of the crops' fill colour, for the corners rotations uncover."""
    if settings.mask_fill != "black":
        return None  # the mean colour normalises to zero, grid_sample's own padding
    return -torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD)


def _fill_colour(mode: str) -> np.ndarray:
    if mode == "black":
        return np.zeros(3, np.uint8)
    return np.round(np.array(IMAGENET_MEAN) * 255).astype(np.uint8)  # zero after normalisation


def _window(array: np.ndarray, top: int, left: int, side: int) -> np.ndarray:
    """``array[top:top+side, left:left+side]`` with zeros where the window leaves the array."""
    out = np.zeros((side, side, array.shape[2]), array.dtype)
    height, width = array.shape[:2]
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + side, height), min(left + side, width)
    if y1 > y0 and x1 > x0:
        out[y0 - top:y1 - top, x0 - left:x1 - left] = array[y0:y1, x0:x1]
    return out
