"""Logical Synthetic Anomaly (LSA) augmentation of a labelled image (thesis §5.3, CSAD).

One or two components (connected regions of one non-background class) are cut out by their
label masks, rotated by any angle and put down far from where they were, inside the object and
clear of the image border and of other parts; the hole is filled with the surrounding surface.
The label map is updated with the same pixels, so the pair stays consistent and the segmenter
learns to label parts wherever they lie, which is exactly what a logical anomaly looks like.

Decisions (the thesis gives only "random translation and rotation"):
- Allowed area: the convex hull of all non-background pixels (the object's extent) minus a
  border margin, so nothing lands on the empty table around the object or at the image edge.
- Parts larger than ``max_component_fraction`` of the image (trays, bottle bodies) are never
  moved. A moved part may lie on components at least ``surface_ratio`` times its size (a pin on
  a compartment floor); smaller ones are obstacles it keeps ``clearance`` px away from.
- Hole fill: the majority class around the hole (the moved class excluded) takes the hole in the
  label map; the image is filled inwards from that class's surrounding pixels (onion-peel
  diffusion, which continues lighting gradients) plus noise of their spread for texture. No
  OpenCV needed (it is not a declared dependency).
- A move is accepted only if each class keeps its number of components (``copy=True``: the
  moved class gains exactly one), which rejects pastes that merge, split or hide parts.
- The thesis pastes onto another image of ``D_L``; the public CSAD code, like this function,
  uses the same image (source and target equal). ``copy=True`` keeps the original as CSAD does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.morphology import convex_hull_image

_EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity, as the histogram branch counts parts
_EDGE_BAND = 2  # px around a removed part repainted with the fill (its anti-aliased rim)


@dataclass(frozen=True)
class LsaSettings:
    """How LSA picks, moves and pastes components.

    Attributes:
        min_components: fewest components moved per call (fewer if no valid place is found).
        max_components: most components moved per call.
        min_displacement: least centroid shift, as a fraction of the shorter image side.
        border_margin: band along the image border nothing is pasted into (fraction of the side).
        min_component_fraction: smaller components (specks) are never picked (fraction of image).
        max_component_fraction: larger components (trays, bottle bodies) are never picked.
        surface_ratio: a pasted part may cover components at least this many times its own area
            (surfaces it can lie on: a compartment floor, a label); smaller ones are obstacles.
        clearance: pixels kept free between a pasted part and any obstacle.
        attempts: random placements tried per component before giving up on it.
        copy: keep the original component (CSAD code) instead of cutting it out (thesis text).
        fill_noise: add Gaussian noise with the surrounding pixels' spread to the hole fill.
    """

    min_components: int = 1
    max_components: int = 2
    min_displacement: float = 0.25
    border_margin: float = 0.05
    min_component_fraction: float = 0.0005
    max_component_fraction: float = 0.1
    surface_ratio: float = 3.0
    clearance: int = 2
    attempts: int = 30
    copy: bool = False
    fill_noise: bool = True


def logical_synthetic_anomaly(
    image: np.ndarray, labels: np.ndarray, rng: np.random.Generator, settings: LsaSettings = LsaSettings()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move 1–2 components of a labelled image somewhere they do not belong.

    Args:
        image: RGB uint8 ``(H, W, 3)``.
        labels: integer label map ``(H, W)``, 0 = background.
        rng: the only source of randomness (same seed, same result).

    Returns:
        ``(image, labels, changed)``: new arrays of the same dtypes and a bool ``(H, W)`` mask of
        every pixel that changed (holes and pasted parts). When no component can be moved, the
        copies are returned unchanged with an empty mask.
    """
    if image.ndim != 3 or image.shape[:2] != labels.shape:
        raise ValueError(f"image {image.shape} and labels {labels.shape} do not match")
    out_img, out_lab = image.copy(), labels.copy()
    changed = np.zeros(labels.shape, dtype=bool)
    side = min(labels.shape)
    allowed = allowed_area(labels, int(round(settings.border_margin * side)))
    if not allowed.any():
        return out_img, out_lab, changed
    wanted = int(rng.integers(settings.min_components, settings.max_components + 1))
    expected = component_counts(labels)
    for _ in range(wanted):
        # Re-listed after every move: parts touched by a hole fill or a paste are no longer the
        # components they were, and moving them by their old masks would tear labels apart.
        fresh = [(c, m) for c, m in movable_components(out_lab, settings) if not (m & changed).any()]
        for index in rng.permutation(len(fresh)):
            cls, mask = fresh[index]
            result = _move_one(out_img, out_lab, cls, mask, allowed, expected, rng, settings)
            if result is not None:
                break
        else:
            break  # no part can be moved any more
        out_img, out_lab, region = result
        changed |= region
        if settings.copy:
            expected[cls] += 1
    return out_img, out_lab, changed


def component_counts(labels: np.ndarray) -> dict[int, int]:
    """Number of 8-connected components of every non-background class present in ``labels``."""
    return {int(c): ndimage.label(labels == c, structure=_EIGHT)[1] for c in np.unique(labels) if c != 0}


def movable_components(labels: np.ndarray, settings: LsaSettings) -> list[tuple[int, np.ndarray]]:
    """``(class, bool mask)`` of every component LSA may pick, in class then raster order."""
    lo = settings.min_component_fraction * labels.size
    hi = settings.max_component_fraction * labels.size
    return [(cls, m) for cls, m in _components(labels) if lo <= m.sum() <= hi]


def allowed_area(labels: np.ndarray, margin: int) -> np.ndarray:
    """Where pasted parts may lie: the convex hull of all parts, minus ``margin`` px at the border."""
    parts = labels != 0
    if not parts.any():
        return parts
    area = convex_hull_image(parts)
    if margin > 0:
        area[:margin], area[-margin:], area[:, :margin], area[:, -margin:] = False, False, False, False
    return area


def _components(labels: np.ndarray) -> list[tuple[int, np.ndarray]]:
    out = []
    for cls in np.unique(labels):
        if cls == 0:
            continue
        regions, n = ndimage.label(labels == cls, structure=_EIGHT)
        out.extend((int(cls), regions == i) for i in range(1, n + 1))
    return out


def _move_one(image, labels, cls, mask, allowed, expected, rng, settings):
    """Cut (or copy) one component and paste it elsewhere; ``None`` if no valid place was found."""
    lab = labels.copy()
    fill = None
    if settings.copy:
        expected = {**expected, cls: expected[cls] + 1}
    else:
        fill = _surrounding_class(labels, mask, cls)
        lab[mask] = fill
    obstacles = _obstacles(lab, int(mask.sum()), settings)
    min_shift = settings.min_displacement * min(labels.shape)
    points = np.argwhere(mask)
    centre = points.mean(axis=0)
    free = allowed & ~obstacles
    targets = np.argwhere(free)
    targets = targets[np.hypot(*(targets - centre).T) >= min_shift]
    if len(targets) == 0:
        return None
    for _ in range(settings.attempts):
        target, angle = targets[rng.integers(len(targets))], rng.uniform(0.0, 360.0)
        if not _quick_fit(points, centre, target, angle, free):
            continue
        placed = _rotated_placement(mask, points, centre, target, angle)
        if placed is None:
            continue
        (ys, xs), (sy, sx) = placed
        if not allowed[ys, xs].all() or obstacles[ys, xs].any():
            continue
        if np.hypot(ys.mean() - centre[0], xs.mean() - centre[1]) < min_shift:
            continue
        trial_lab = lab.copy()
        trial_lab[ys, xs] = cls
        if component_counts(trial_lab) != expected:
            continue
        # Only now the (slower) image work: paint the hole, then put the part down on top.
        img = image.copy()
        changed = np.zeros_like(mask)
        if fill is not None:
            changed |= _paint_hole(img, labels, mask, fill, rng, settings)
        img[ys, xs] = image[sy, sx]
        changed[ys, xs] = True
        return img, trial_lab, changed
    return None


def _surrounding_class(labels: np.ndarray, mask: np.ndarray, cls: int) -> int:
    """The majority label in a 3 px ring around ``mask``, ``cls`` itself left out (else 0)."""
    ring = ndimage.binary_dilation(mask, _EIGHT, iterations=3) & ~mask
    around = labels[ring]
    around = around[around != cls]
    return int(np.bincount(around.astype(np.int64)).argmax()) if around.size else 0


def _paint_hole(img, labels, mask, fill, rng, settings) -> np.ndarray:
    """Paint the hole from the ``fill`` class's pixels around it, in place; returns the painted area.

    The area is the hole plus an edge band of the fill class, because the removed part's
    anti-aliased rim lies just outside its label mask and would leave a ghost outline.
    """
    band = ndimage.binary_dilation(mask, _EIGHT, iterations=_EDGE_BAND)
    paint = mask | (band & (labels == fill))
    known = (labels == fill) & ~band
    if not known.any():
        known = ~paint
    rows, cols = _window(paint, 3 * _EDGE_BAND + 3)
    spread = _diffuse(img, paint, known, rows, cols)
    if settings.fill_noise:
        noise = rng.normal(0.0, 1.0, size=(int(paint.sum()), 3)).astype(np.float32) * spread
        img[paint] = np.clip(np.rint(img[paint] + noise), 0, 255).astype(img.dtype)
    return paint


def _window(mask: np.ndarray, pad: int) -> tuple[slice, slice]:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return (slice(max(ys.min() - pad, 0), min(ys.max() + pad + 1, h)),
            slice(max(xs.min() - pad, 0), min(xs.max() + pad + 1, w)))


def _diffuse(img, paint, known, rows, cols) -> np.ndarray:
    """Fill ``paint`` inwards from ``known`` pixels (onion peeling with 3×3 means), in place.

    A smooth continuation of the surrounding surface, lighting gradient included; returns the
    per-channel spread of the known pixels nearby (capped) for the noise that restores texture.
    """
    values = img[rows, cols].astype(np.float32)
    have, todo = known[rows, cols].copy(), paint[rows, cols].copy()
    have &= ~todo
    spread = _texture_spread(values, have)
    while todo.any():
        weight = ndimage.uniform_filter(have.astype(np.float32), 3, mode="constant")
        front = todo & (weight > 0)
        if not front.any():  # nothing known can reach these pixels: use the median colour
            values[todo] = np.median(values[have], axis=0) if have.any() else values[todo]
            break
        summed = np.stack([ndimage.uniform_filter(values[..., k] * have, 3, mode="constant") for k in range(3)], -1)
        values[front] = summed[front] / weight[front, None]
        have |= front
        todo &= ~front
    img[rows, cols][paint[rows, cols]] = np.clip(np.rint(values[paint[rows, cols]]), 0, 255).astype(img.dtype)
    return spread


def _texture_spread(values: np.ndarray, have: np.ndarray) -> np.ndarray:
    """Per-channel std of the known pixels minus their 3×3 mean: texture, not lighting gradients."""
    inner = ndimage.binary_erosion(have, _EIGHT)  # whole 3×3 neighbourhood known
    if not inner.any():
        return np.zeros(3, np.float32)
    local = np.stack([ndimage.uniform_filter(values[..., k], 3) for k in range(3)], -1)
    return np.minimum((values - local)[inner].std(axis=0), 25.0).astype(np.float32)


def _obstacles(labels: np.ndarray, area: int, settings: LsaSettings) -> np.ndarray:
    """Parts a pasted part of ``area`` px must keep clear of: all but the surfaces it may lie on."""
    blocked = np.zeros(labels.shape, dtype=bool)
    for _, m in _components(labels):
        if m.sum() < settings.surface_ratio * area:
            blocked |= m
    if settings.clearance > 0 and blocked.any():
        blocked = ndimage.binary_dilation(blocked, _EIGHT, iterations=settings.clearance)
    return blocked


def _quick_fit(points: np.ndarray, centre: np.ndarray, target: np.ndarray, angle: float, free: np.ndarray) -> bool:
    """Cheap pre-check: do the part's own pixels, mapped forwards, all land on ``free`` pixels?"""
    cos, sin = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    dy, dx = (points - centre).T
    ys = np.rint(target[0] + cos * dy + sin * dx).astype(np.int64)
    xs = np.rint(target[1] - sin * dy + cos * dx).astype(np.int64)
    h, w = free.shape
    if ys.min() < 0 or xs.min() < 0 or ys.max() >= h or xs.max() >= w:
        return False
    return bool(free[ys, xs].all())


def _rotated_placement(mask: np.ndarray, points: np.ndarray, centre: np.ndarray, target: np.ndarray, angle: float):
    """Pixels of ``mask`` (its ``points``) rotated by ``angle``° about ``centre``, moved to ``target``.

    Inverse mapping with nearest-neighbour sampling, so the result has no holes and every pasted
    pixel copies exactly one source pixel. Returns ``((rows, cols), (source_rows, source_cols))``
    of the pasted pixels, or ``None`` when part of it would fall outside the image.
    """
    radius = int(np.ceil(np.hypot(*(points - centre).T).max())) + 1
    ty, tx = int(target[0]), int(target[1])
    ys, xs = np.mgrid[ty - radius:ty + radius + 1, tx - radius:tx + radius + 1]
    cos, sin = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    dy, dx = ys - ty, xs - tx
    sy = np.rint(centre[0] + cos * dy - sin * dx).astype(np.int64)
    sx = np.rint(centre[1] + sin * dy + cos * dx).astype(np.int64)
    h, w = mask.shape
    inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
    hit = np.zeros_like(inside)
    hit[inside] = mask[sy[inside], sx[inside]]
    if not hit.any():
        return None
    ys, xs, sy, sx = ys[hit], xs[hit], sy[hit], sx[hit]
    if ys.min() < 0 or xs.min() < 0 or ys.max() >= h or xs.max() >= w:
        return None
    return (ys, xs), (sy, sx)
