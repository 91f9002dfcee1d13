"""The offline segmenter: classical region proposals instead of SAM (SPEC §4).

Automatic proposals are the regions of felzenszwalb graph partitions (one per scale) and/or
SLIC superpixels; box prompts are segmented with GrabCut (OpenCV) or, without OpenCV, by
keeping the regions in the box whose colour differs from the box frame's. Everything is
deterministic: same image and settings, same masks.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage.color import rgb2lab
from skimage.segmentation import felzenszwalb, find_boundaries, slic

from pipeline.errors import SettingsError
from pipeline.pseudolabels.adapters.base import Box
from pipeline.pseudolabels.adapters.regions import absorb_thin_regions, refine_boundaries
from pipeline.pseudolabels.masks import border_background
from pipeline.pseudolabels.settings import ClassicSettings, MaskSettings

__all__ = ["ClassicSegmenter", "ClassicSettings"]

ABSORB_ORDERS = ("simultaneous", "thickest_first")


class ClassicSegmenter:
    """``Segmenter`` from felzenszwalb/SLIC regions and GrabCut; needs no weights."""

    name = "classic"

    def __init__(self, settings: ClassicSettings = ClassicSettings()) -> None:
        if settings.method not in ("felzenszwalb", "slic", "both"):
            raise SettingsError(f"unknown classic method {settings.method!r}; choose felzenszwalb, slic or both")
        if settings.absorb_order not in ABSORB_ORDERS:
            raise SettingsError(f"unknown absorb order {settings.absorb_order!r}; choose one of {ABSORB_ORDERS}")
        if settings.grabcut_backend not in ("auto", "opencv", "skimage"):
            raise SettingsError(f"unknown GrabCut backend {settings.grabcut_backend!r}")
        self.settings = settings
        self._last: tuple[bytes, np.ndarray] | None = None

    def propose(self, image: np.ndarray) -> np.ndarray:
        """Bool ``(P, H, W)``: every region of every partition (regions of one partition are
        disjoint; partitions at several scales overlap).

        The last image's proposals are kept: the manual detector and the mask stage both ask for
        the same image's (a quarter of the time per image with drawn boxes). Callers get a copy."""
        digest = hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).digest() + bytes(str(image.shape), "ascii")
        if self._last is None or self._last[0] != digest:
            self._last = (digest, self._propose(image))
        return self._last[1].copy()

    def _propose(self, image: np.ndarray) -> np.ndarray:
        small = _resize_image(image, self.settings.work_side)
        partitions = [_upsample_labels(self._clean(labels, small), image.shape[:2]) for labels in self._partitions(small)]
        masks = [labels == value for labels in partitions for value in np.unique(labels)]
        if not masks:
            return np.zeros((0, *image.shape[:2]), bool)
        return np.stack(masks)

    def segment_boxes(self, image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        """Bool ``(len(boxes), H, W)``: the foreground GrabCut finds inside each box."""
        out = np.zeros((len(boxes), *image.shape[:2]), bool)
        for index, box in enumerate(boxes):
            x0, y0, x1, y1 = _box_pixels(box, image.shape[:2])
            if x1 - x0 < 3 or y1 - y0 < 3:
                out[index, y0:y1, x0:x1] = True  # too small to tell inside from outside
                continue
            out[index] = self._segment_box(image, (x0, y0, x1, y1))
        return out

    def _clean(self, labels: np.ndarray, image: np.ndarray) -> np.ndarray:
        """Edge strips merged into their neighbours, then edge pixels given to the nearer side."""
        s = self.settings
        labels = absorb_thin(labels, image, s.min_thickness, s.merge_colour_scale, order=s.absorb_order)
        return refine_edges(labels, image, s.refine_iterations)

    def _partitions(self, image: np.ndarray) -> list[np.ndarray]:
        s = self.settings
        partitions = []
        if s.method in ("felzenszwalb", "both"):
            for scale in s.felzenszwalb_scales:
                partitions.append(felzenszwalb(image, scale=scale, sigma=s.felzenszwalb_sigma,
                                               min_size=s.felzenszwalb_min_size))
        if s.method in ("slic", "both"):
            partitions.append(slic(image, n_segments=s.slic_segments, compactness=s.slic_compactness,
                                   start_label=0))
        return partitions

    def _segment_box(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        backend = self.settings.grabcut_backend
        if backend in ("auto", "opencv"):
            try:
                import cv2  # optional: installed with groundingdino-py, not required
            except ImportError:
                if backend == "opencv":
                    raise
            else:
                return _grabcut(cv2, image, box, self.settings)
        return _regions_in_box(image, box)


def absorb_thin(
    labels: np.ndarray, image: np.ndarray, min_thickness: float, colour_scale: float = 5.0, rounds: int = 6,
    order: str = "simultaneous",
) -> np.ndarray:
    """Merge regions thinner than ``min_thickness`` (largest inscribed radius, in pixels) into
    the adjacent region of the most similar mean colour, until none is left (or ``rounds``).

    Graph partitions cut anti-aliased edges, outlines, shading lines and ridges (a cap's
    grooves) into strips one or two pixels wide; as components they are noise, while their
    pixels belong to a part next to them. Returns a label map with a subset of the input's ids.
    ``order="thickest_first"`` merges one region at a time instead of all thin ones per round
    (``regions.absorb_thin_regions``; ``rounds`` then does not apply).
    """
    if order not in ABSORB_ORDERS:
        raise SettingsError(f"unknown absorb order {order!r}; choose one of {ABSORB_ORDERS}")
    if min_thickness <= 0:
        return labels
    colours = rgb2lab(image.astype(np.float32) / 255.0)
    if order == "thickest_first":
        return absorb_thin_regions(labels, colours, min_thickness, colour_scale)
    for _ in range(rounds):
        ids = np.unique(labels)
        edges = find_boundaries(labels, mode="inner")
        depth = ndimage.distance_transform_edt(~edges) + edges  # boundary pixels count as depth 1
        thin = ids[np.asarray(ndimage.maximum(depth, labels, ids)) < min_thickness]
        if len(thin) == 0 or len(ids) < 2:
            break
        means = np.stack([ndimage.mean(colours[..., c], labels, ids) for c in range(3)], 1)
        target = _most_similar_neighbour(labels, ids, means, thin, colour_scale)
        if not target:
            break
        labels = _merge(labels, ids, target)
    return labels


def _most_similar_neighbour(
    labels: np.ndarray, ids: np.ndarray, means: np.ndarray, thin: np.ndarray, colour_scale: float
) -> dict[int, int]:
    """Thin region id → the adjacent region it shares the most boundary with, discounted by
    the difference of their mean colours (ΔE / ``colour_scale``): a groove joins the ridges
    beside it, an outline the part it outlines rather than the backdrop."""
    pairs = np.concatenate([
        np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], 1),
        np.stack([labels[:-1, :].ravel(), labels[1:, :].ravel()], 1),
    ])
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    pairs, length = np.unique(np.concatenate([pairs, pairs[:, ::-1]]), axis=0, return_counts=True)
    position = np.searchsorted(ids, pairs)
    distance = np.linalg.norm(means[position[:, 0]] - means[position[:, 1]], axis=1)
    score = length / (1.0 + distance / colour_scale)
    target: dict[int, int] = {}
    for source in thin:
        rows = np.flatnonzero(pairs[:, 0] == source)
        if len(rows):
            target[int(source)] = int(pairs[rows[np.argmax(score[rows])], 1])
    return target


def _merge(labels: np.ndarray, ids: np.ndarray, target: dict[int, int]) -> np.ndarray:
    """Relabel so every region and the one it merges into (transitively) share one id: that
    of the group's first region that is not merging away (a thin strip takes its host's id)."""
    position = {int(i): k for k, i in enumerate(ids)}
    rows = [position[a] for a in target]
    cols = [position[b] for b in target.values()]
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(ids), len(ids)))
    _, group = connected_components(graph, directed=False)
    keep: dict[int, int] = {}
    for k, region in enumerate(ids):
        if int(region) not in target:
            keep.setdefault(group[k], int(region))
    for k, region in enumerate(ids):  # a group of thin regions only keeps its first id
        keep.setdefault(group[k], int(region))
    lookup = np.zeros(int(ids.max()) + 1, dtype=labels.dtype)
    lookup[ids] = [keep[g] for g in group]
    return lookup[labels]


def refine_edges(labels: np.ndarray, image: np.ndarray, iterations: int) -> np.ndarray:
    """Edge pixels to the adjacent region of the nearest mean CIELAB colour
    (``regions.refine_boundaries``); 0 iterations leave the labels as they are."""
    if iterations <= 0:
        return labels
    return refine_boundaries(labels, rgb2lab(image.astype(np.float32) / 255.0), iterations)


def _grabcut(cv2, image: np.ndarray, box: tuple[int, int, int, int], settings: ClassicSettings) -> np.ndarray:
    x0, y0, x1, y1 = box
    mask = np.zeros(image.shape[:2], np.uint8)
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(settings.seed)  # GrabCut's GMMs start from k-means on OpenCV's global RNG
    bgr = np.ascontiguousarray(image[:, :, ::-1])
    cv2.grabCut(bgr, mask, (x0, y0, x1 - x0, y1 - y0), background, foreground,
                settings.grabcut_iterations, cv2.GC_INIT_WITH_RECT)
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def _regions_in_box(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    # Without OpenCV: whatever in the box does not match the colours of the box's own frame
    # and connect to it is foreground, the same rule as the image-border background.
    x0, y0, x1, y1 = box
    crop = image[y0:y1, x0:x1]
    inside = ~border_background(crop, MaskSettings(border_width=1, border_support=0.0))
    out = np.zeros(image.shape[:2], bool)
    out[y0:y1, x0:x1] = inside
    return out


def _box_pixels(box: Box, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    height, width = shape
    x0 = int(np.clip(np.floor(box.x0), 0, width))
    y0 = int(np.clip(np.floor(box.y0), 0, height))
    x1 = int(np.clip(np.ceil(box.x1), x0, width))
    y1 = int(np.clip(np.ceil(box.y1), y0, height))
    return x0, y0, x1, y1


def _resize_image(image: np.ndarray, side: int) -> np.ndarray:
    height, width = image.shape[:2]
    if side <= 0 or max(height, width) == side:
        return image
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))


def _upsample_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if labels.shape == tuple(shape):
        return labels
    resized = Image.fromarray(labels.astype(np.int32)).resize((shape[1], shape[0]), Image.Resampling.NEAREST)
    return np.asarray(resized)
