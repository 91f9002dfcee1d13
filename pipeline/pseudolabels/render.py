"""Pictures of the pseudo-labels for the Masks and Clusters pages: components coloured and
numbered over the image, label maps coloured by cluster, component thumbnails.

Pure NumPy/PIL (no Streamlit). Every picture is scaled to at most ``max_side`` pixels first,
so a 5000 px photo costs the browser what a 1000 px one does, and small images are enlarged to
``MIN_SIDE`` so the component numbers stay readable; ids are unchanged by the scaling
(nearest-neighbour sampling).
"""

from __future__ import annotations

import colorsys
from collections.abc import Collection

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.pseudolabels.features import component_crop
from pipeline.pseudolabels.settings import FeatureSettings

DISPLAY_SIDE = 1024
"""Longest side of a picture sent to the browser."""
MIN_SIDE = 512
"""Longest side small images are enlarged to (a 128 px image with 20 numbers is unreadable)."""

REJECTED_GREY = np.array([128, 128, 128], np.uint8)


def palette(n: int) -> np.ndarray:
    """uint8 ``(n + 1, 3)``: colour ``k`` for id ``k``; 0 (background/none) is black.

    Hues step by the golden ratio, so neighbouring ids get clearly different colours and
    colour ``k`` is the same whatever ``n`` is (a cluster keeps its colour when others appear).
    """
    colours = np.zeros((n + 1, 3), np.uint8)
    for k in range(1, n + 1):
        hue = (k * 0.618033988749895) % 1.0
        value = 0.95 if k % 2 else 0.75  # alternate brightness: two close hues still differ
        colours[k] = np.round(np.array(colorsys.hsv_to_rgb(hue, 0.85, value)) * 255)
    return colours


def hex_colour(colour: np.ndarray) -> str:
    return "#" + "".join(f"{int(c):02x}" for c in colour[:3])


def display_shape(shape: tuple[int, ...], max_side: int = DISPLAY_SIDE) -> tuple[int, int]:
    """``(height, width)`` scaled so the longer side is at most ``max_side``; images shorter than
    ``MIN_SIDE`` (or ``max_side`` if smaller) are enlarged to it."""
    height, width = int(shape[0]), int(shape[1])
    longest = max(height, width, 1)
    scale = min(max_side / longest, max(1.0, min(MIN_SIDE, max_side) / longest))
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_nearest(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``array`` (2-D or H×W×C) sampled to ``shape`` by nearest neighbour (ids stay ids)."""
    rows = (np.arange(shape[0]) * array.shape[0] // shape[0]).clip(0, array.shape[0] - 1)
    cols = (np.arange(shape[1]) * array.shape[1] // shape[1]).clip(0, array.shape[1] - 1)
    return array[rows][:, cols]


def display_image(image: np.ndarray, max_side: int = DISPLAY_SIDE) -> np.ndarray:
    """The RGB image at its display size (``display_shape``): area-averaged when shrunk, pixels
    kept sharp when enlarged (so they line up with the enlarged masks)."""
    height, width = display_shape(image.shape, max_side)
    if (height, width) == image.shape[:2]:
        return image
    if height < image.shape[0]:
        return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BOX))
    return resize_nearest(image, (height, width))


def component_overlay(
    image: np.ndarray, instances: np.ndarray, rejected: Collection[int] = (), alpha: float = 0.5,
    max_side: int = DISPLAY_SIDE,
) -> np.ndarray:
    """The image with each component filled in its own colour and numbered with its id.

    Rejected components are drawn grey with their number, so the user still sees what they
    rejected and can restore it. Returns uint8 RGB at most ``max_side`` pixels on a side.
    """
    small = display_image(image, max_side)
    ids = resize_nearest(np.asarray(instances), small.shape[:2])
    colours = palette(int(ids.max(initial=0)))
    for k in rejected:
        if 0 < k < len(colours):
            colours[k] = REJECTED_GREY
    blended = _blend(small, colours[ids], ids > 0, alpha)
    return _numbers(blended, ids, rejected)


def label_map_overlay(
    image: np.ndarray, label_map: np.ndarray, n_clusters: int, alpha: float = 0.6, max_side: int = DISPLAY_SIDE,
) -> np.ndarray:
    """The image with each pixel coloured by its cluster (``palette(n_clusters)``); background kept."""
    small = display_image(image, max_side)
    labels = resize_nearest(np.asarray(label_map), small.shape[:2])
    colours = palette(max(n_clusters, int(labels.max(initial=0))))
    return _blend(small, colours[labels], labels > 0, alpha)


def label_map_colours(label_map: np.ndarray, n_clusters: int, max_side: int = DISPLAY_SIDE) -> np.ndarray:
    """The label map alone, coloured by cluster (background black)."""
    labels = resize_nearest(np.asarray(label_map), display_shape(label_map.shape, max_side))
    return palette(max(n_clusters, int(labels.max(initial=0))))[labels]


def component_thumbnail(image: np.ndarray, mask: np.ndarray, side: int = 96) -> np.ndarray:
    """A square crop around the component (the crop the features see, with its surroundings
    dimmed instead of blanked, so the user sees where the part sits)."""
    settings = FeatureSettings(mask_fill="none", crop_padding=0.15)
    crop = component_crop(image, mask, settings)
    inside = component_crop(np.repeat(mask[..., None], 3, axis=2).astype(np.uint8) * 255, mask, settings)[..., 0] > 0
    dimmed = np.where(inside[..., None], crop, (crop * 0.35).astype(np.uint8))
    return np.asarray(Image.fromarray(dimmed).resize((side, side), Image.Resampling.BILINEAR))


def _blend(image: np.ndarray, colour: np.ndarray, where: np.ndarray, alpha: float) -> np.ndarray:
    out = image.astype(np.float32)
    out[where] = (1 - alpha) * out[where] + alpha * colour[where]
    return np.round(out).astype(np.uint8)


def _numbers(image: np.ndarray, ids: np.ndarray, rejected: Collection[int]) -> np.ndarray:
    """Write each component's id at a point inside it (white on a dark box, readable on any colour)."""
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=max(11, max(image.shape[:2]) // 40))
    for k in np.unique(ids[ids > 0]).tolist():
        y, x = _inside_point(ids == k)
        text = f"({k})" if k in rejected else str(k)
        left, top, right, bottom = draw.textbbox((x, y), text, font=font, anchor="mm")
        draw.rectangle((left - 2, top - 1, right + 2, bottom + 1), fill=(0, 0, 0))
        draw.text((x, y), text, fill=(255, 255, 255), font=font, anchor="mm")
    return np.asarray(picture)


def _inside_point(mask: np.ndarray) -> tuple[int, int]:
    """The centroid when it lies in the mask, else the mask pixel nearest to it (rings, L shapes)."""
    rows, cols = np.nonzero(mask)
    cy, cx = rows.mean(), cols.mean()
    if mask[int(round(cy)), int(round(cx))]:
        return int(round(cy)), int(round(cx))
    nearest = int(np.argmin((rows - cy) ** 2 + (cols - cx) ** 2))
    return int(rows[nearest]), int(cols[nearest])
