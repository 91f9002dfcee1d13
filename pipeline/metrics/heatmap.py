"""Heat-map colouring and overlays (numpy only, so reports and the CLI need no plotting library)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pipeline.models.preprocess import resize_map

# Anchor colours of an inferno-like map: dark (normal) -> yellow (anomalous).
_ANCHORS = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164]],
    dtype=np.float64,
)


def colorize(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Float map (H, W) -> uint8 RGB (H, W, 3), ``vmin`` dark, ``vmax`` and above bright."""
    span = max(vmax - vmin, 1e-12)
    t = np.clip((np.asarray(values, dtype=np.float64) - vmin) / span, 0.0, 1.0) * (len(_ANCHORS) - 1)
    lo = np.floor(t).astype(int)
    hi = np.minimum(lo + 1, len(_ANCHORS) - 1)
    frac = (t - lo)[..., None]
    rgb = _ANCHORS[lo] * (1 - frac) + _ANCHORS[hi] * frac
    return rgb.round().astype(np.uint8)


def overlay(image: np.ndarray, anomaly_map: np.ndarray, vmin: float, vmax: float, opacity: float = 0.5) -> np.ndarray:
    """Blend the coloured map, resized to the image's own resolution, over the RGB image."""
    full = resize_map(anomaly_map, image.shape[:2])
    heat = colorize(full, vmin, vmax).astype(np.float64)
    alpha = float(np.clip(opacity, 0.0, 1.0))
    return (image.astype(np.float64) * (1 - alpha) + heat * alpha).round().astype(np.uint8)


def mask_outline(mask: np.ndarray) -> np.ndarray:
    """Bool (H, W) -> bool outline of the mask's regions (1 px, inside the region)."""
    m = mask.astype(bool)
    inner = m.copy()
    inner[1:, :] &= m[:-1, :]
    inner[:-1, :] &= m[1:, :]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return m & ~inner


def draw_outline(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = (0, 255, 255), width: int = 2) -> np.ndarray:
    """Image with the ground-truth mask outline drawn on it."""
    edge = mask_outline(mask)
    for _ in range(width - 1):
        grown = edge.copy()
        grown[1:, :] |= edge[:-1, :]
        grown[:, 1:] |= edge[:, :-1]
        edge = grown & mask.astype(bool) | edge
    out = image.copy()
    out[edge] = colour
    return out


ABOVE_THRESHOLD_COLOUR = (0, 255, 0)
"""Outline of the regions above the threshold's map level (green; the ground truth is cyan)."""


def above_level_outline(image: np.ndarray, anomaly_map: np.ndarray, level: float, width: int = 2) -> np.ndarray:
    """``image`` with the regions where the map, resized to the image, exceeds ``level`` outlined."""
    above = resize_map(anomaly_map, image.shape[:2]) > level
    if not above.any():
        return image
    return draw_outline(image, above, ABOVE_THRESHOLD_COLOUR, width)


REGION_COLOUR = (255, 255, 255)
REGION_COLOUR_NAME = "white"
"""Boxes of the named regions (histogram grid cells whose part counts are off): white, apart from
the ground truth (cyan) and the above-threshold outline (green)."""


def region_boxes(image: np.ndarray, boxes: Sequence[tuple[float, float, float, float]], width: int = 2) -> np.ndarray:
    """``image`` with each ``(top, left, bottom, right)`` box (fractions of its size) outlined."""
    if not boxes:
        return image
    h, w = image.shape[:2]
    mask = np.zeros((h, w), bool)
    for top, left, bottom, right in boxes:
        y0, x0 = int(round(top * h)), int(round(left * w))
        y1, x1 = max(int(round(bottom * h)), y0 + 1), max(int(round(right * w)), x0 + 1)
        mask[y0:y1, x0:x1] = True
    inside = np.zeros_like(mask)  # a box's own edges, also where two boxes touch
    for top, left, bottom, right in boxes:
        y0, x0 = int(round(top * h)) + width, int(round(left * w)) + width
        y1, x1 = int(round(bottom * h)) - width, int(round(right * w)) - width
        inside[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = True
    out = image.copy()
    out[mask & ~inside] = REGION_COLOUR
    return out
