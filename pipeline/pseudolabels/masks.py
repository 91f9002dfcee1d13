"""Pure mask filters of SPEC §5 step 2 and the instance map they end in.

Masks are bool arrays ``(P, H, W)`` (a stack of P masks over one image) unless said otherwise.
Nothing here knows where the masks came from: SAM, the classical segmenter or a user's brush.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.color import rgb2lab

from pipeline.pseudolabels.settings import MaskSettings


def min_area_pixels(shape: tuple[int, int], settings: MaskSettings) -> float:
    """``settings.min_area`` converted to pixels of an image of ``shape`` ``(H, W)``."""
    scale = (shape[0] * shape[1]) / float(settings.reference_side**2)
    return settings.min_area * scale


def scaled_length(shape: tuple[int, int], length: float, settings: MaskSettings) -> float:
    """A length given at ``settings.reference_side`` converted to pixels of an image of ``shape``."""
    return length * np.sqrt(shape[0] * shape[1]) / settings.reference_side


def background_filter(masks: np.ndarray, background: np.ndarray, overlap: float = 0.95) -> np.ndarray:
    """Bool ``(P,)``: True for masks to keep, i.e. less than ``overlap`` of their pixels in the
    bool ``(H, W)`` ``background``. Empty masks are not kept."""
    masks = _stack(masks)
    area = masks.sum(axis=(1, 2))
    inside = (masks & background[None]).sum(axis=(1, 2))
    return (area > 0) & (inside < overlap * np.maximum(area, 1))


def split_components(masks: np.ndarray, min_area: float) -> tuple[np.ndarray, np.ndarray]:
    """Split each mask into its 8-connected pieces and drop pieces of at most ``min_area`` pixels.

    Returns:
        ``(pieces, parent)``: bool ``(Q, H, W)`` pieces, each mask's pieces together and in
        label order, and int ``(Q,)`` the index of the mask each piece came from.
    """
    masks = _stack(masks)
    pieces, parent = [], []
    structure = np.ones((3, 3), bool)  # 8-connectivity: a diagonal step does not split a part
    for index, mask in enumerate(masks):
        labels, count = ndimage.label(mask, structure=structure)
        if count == 0:
            continue
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        for label in np.flatnonzero(sizes > min_area):
            if label > 0:
                pieces.append(labels == label)
                parent.append(index)
    return _as_stack(pieces, masks.shape[1:]), np.asarray(parent, dtype=np.int64)


def overlap_filter(
    masks: np.ndarray, covered_overlap: float = 0.9, kept: np.ndarray | None = None
) -> np.ndarray:
    """Bool ``(P,)``: walk the masks in order and keep each one unless at least
    ``covered_overlap`` of its pixels are covered by the union of those kept before it
    (``kept``, bool ``(H, W)``, seeds that union, e.g. the box-prompted masks)."""
    masks = _stack(masks)
    union = np.zeros(masks.shape[1:], bool) if kept is None else kept.copy()
    keep = np.zeros(len(masks), bool)
    for index, mask in enumerate(masks):
        area = int(mask.sum())
        if area == 0 or (mask & union).sum() >= covered_overlap * area:
            continue
        keep[index] = True
        union |= mask
    return keep


def size_filter(masks: np.ndarray, max_fraction: float) -> np.ndarray:
    """Bool ``(P,)``: True for masks covering at most ``max_fraction`` of the image."""
    masks = _stack(masks)
    total = masks.shape[1] * masks.shape[2]
    return masks.sum(axis=(1, 2)) <= max_fraction * total


def order_by_area(masks: np.ndarray) -> np.ndarray:
    """Indices that sort the masks small to large (stable), the order the overlap filter walks
    automatic proposals in: a mask merging several parts already kept is then the one dropped."""
    areas = _stack(masks).sum(axis=(1, 2))
    return np.argsort(areas, kind="stable")


def build_instances(masks: Sequence[np.ndarray] | np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """int32 ``(H, W)`` instance map: mask ``i`` (priority order) gets id ``i + 1``, 0 elsewhere.

    Where masks overlap the smaller one wins (small parts lie on top of the big ones they sit
    on); equal areas go to the earlier mask. A mask may end up with no pixel left.
    """
    stack = _as_stack(list(masks), shape)
    instances = np.zeros(shape, np.int32)
    areas = stack.reshape(len(stack), -1).sum(1) if len(stack) else []
    # Paint large first, so smaller (and, at equal area, earlier) masks overwrite them.
    for index in sorted(range(len(stack)), key=lambda i: (-areas[i], -i)):
        instances[stack[index]] = index + 1
    return instances


def compact_instances(instances: np.ndarray, min_area: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Drop ids with at most ``min_area`` visible pixels and renumber the rest 1..K in id order.

    Returns:
        ``(instances, kept_ids)``: the renumbered int32 map and the old id of each new one.
    """
    sizes = np.bincount(instances.ravel(), minlength=1)
    kept = np.array([i for i in range(1, len(sizes)) if sizes[i] > min_area and sizes[i] > 0], np.int64)
    lookup = np.zeros(len(sizes), np.int32)
    lookup[kept] = np.arange(1, len(kept) + 1, dtype=np.int32)
    return lookup[instances], kept


def fill_gaps(instances: np.ndarray, background: np.ndarray, max_distance: float) -> np.ndarray:
    """int32 ``(H, W)``: pixels that are neither background nor in a component (dropped tiny
    pieces such as a connector's contacts, absorbed edge strips) join the nearest component
    when it is at most ``max_distance`` pixels away; farther ones stay 0."""
    gaps = (instances == 0) & ~background
    if max_distance <= 0 or not gaps.any() or not instances.any():
        return instances
    distance, (rows, cols) = ndimage.distance_transform_edt(instances == 0, return_indices=True)
    fill = gaps & (distance <= max_distance)
    out = instances.copy()
    out[fill] = instances[rows[fill], cols[fill]]
    return out


def border_background(image: np.ndarray, settings: MaskSettings = MaskSettings()) -> np.ndarray:
    """Bool ``(H, W)``: the background when nothing names it, i.e. the pixels connected to the
    image border whose colour is within ``border_tolerance`` (CIELAB ΔE) of a colour seen on the
    border frame.

    Colour, not mere border contact, decides: a cable leaving the picture touches the border
    too, but its colour is not the backdrop's. The border colours are taken pixel-wise (after
    smoothing), so a lighting gradient along the border is covered.
    """
    lab = _smoothed_lab(image, settings.border_smoothing)
    prototypes = _border_prototypes(lab, settings.border_width, settings.border_tolerance, settings.border_support)
    distance = _distance_to_prototypes(lab, prototypes)
    similar = distance < settings.border_tolerance
    labels, _ = ndimage.label(similar, structure=np.ones((3, 3), bool))
    frame = _frame(similar.shape, settings.border_width)
    touching = np.unique(labels[frame & similar])
    background = np.isin(labels, touching[touching > 0])
    # Noise leaves pinholes in a backdrop; parts never are that small.
    return ndimage.binary_closing(background, iterations=1, border_value=1) | background


def _smoothed_lab(image: np.ndarray, sigma: float) -> np.ndarray:
    rgb = image.astype(np.float32) / 255.0
    if sigma > 0:
        rgb = ndimage.gaussian_filter(rgb, sigma=(sigma, sigma, 0))
    return rgb2lab(rgb).astype(np.float32)


def _frame(shape: tuple[int, int], width: int) -> np.ndarray:
    frame = np.zeros(shape, bool)
    width = max(1, min(width, min(shape) // 2))
    frame[:width], frame[-width:], frame[:, :width], frame[:, -width:] = True, True, True, True
    return frame


def _border_prototypes(lab: np.ndarray, width: int, tolerance: float, support: float, count: int = 256) -> np.ndarray:
    """Frame colours shared by at least ``support`` of the frame: the backdrop's colours, not
    those of a part that merely touches the border (a cable leaving the picture)."""
    colours = lab[_frame(lab.shape[:2], width)]
    step = max(1, len(colours) // count)  # an evenly spaced, deterministic sample
    sample = colours[::step]
    distance = np.sqrt(((sample[:, None, :] - sample[None, :, :]) ** 2).sum(-1))
    shared = (distance < tolerance).mean(1) >= support
    return sample[shared] if shared.any() else sample


def _distance_to_prototypes(lab: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    # A k-d tree instead of one pass per prototype: 5x faster on a 512 px image.
    distance, _ = cKDTree(prototypes.astype(np.float64)).query(lab.reshape(-1, 3).astype(np.float64), k=1)
    return distance.astype(np.float32).reshape(lab.shape[:2])


def _stack(masks: np.ndarray) -> np.ndarray:
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise ValueError(f"expected masks (P, H, W), got shape {masks.shape}")
    return masks


def _as_stack(masks: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    if not masks:
        return np.zeros((0, *shape), bool)
    return np.stack([np.asarray(m, dtype=bool) for m in masks])
