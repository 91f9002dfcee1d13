"""Boxes and masks of one image → its kept components (SPEC §5 step 2).

object/background prompts → boxes → box-prompted masks ``M_G`` (background masks set aside) →
automatic proposals ``M_S`` → background-intersection filter → connected components (tiny
pieces dropped) → support filter → object-overlap filter → instance map. Without a detector,
or without a background prompt, the background is the border-connected backdrop.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pipeline.pseudolabels import masks as mask_ops
from pipeline.pseudolabels.adapters.base import Box, BoxDetector, Segmenter
from pipeline.pseudolabels.settings import MaskSettings
from pipeline.pseudolabels.types import ImageComponents


def extract_components(
    image: np.ndarray,
    image_key: str,
    detector: BoxDetector | None,
    segmenter: Segmenter,
    tags: Sequence[str],
    background_tags: Sequence[str],
    settings: MaskSettings = MaskSettings(),
) -> ImageComponents:
    """The kept components of ``image`` (uint8 RGB ``(H, W, 3)``).

    Args:
        image_key: the sample key, passed to the detector (a manual one looks up drawn boxes).
        detector: finds boxes for ``tags`` and ``background_tags``; None = automatic proposals only.
        segmenter: box-prompted masks and automatic proposals.
        tags, background_tags: object and background prompts.
    """
    shape = image.shape[:2]
    object_masks, object_sources, background = _box_masks(image, image_key, detector, segmenter, tags,
                                                          background_tags)
    if not background.any() and settings.border_background:
        background = mask_ops.border_background(image, settings)
    proposals = np.asarray(segmenter.propose(image), bool).reshape(-1, *shape)
    masks = np.concatenate([object_masks, proposals])
    sources = list(object_sources) + ["auto"] * len(proposals)
    keep = mask_ops.background_filter(masks, background, settings.background_overlap)
    masks, sources = masks[keep], [s for s, k in zip(sources, keep) if k]
    pieces, parent = mask_ops.split_components(masks, mask_ops.min_area_pixels(shape, settings))
    sources = [sources[p] for p in parent]
    keep = mask_ops.size_filter(pieces, settings.max_area_fraction)
    if not keep.all():  # a support (plate, table) is background, not a part
        background = background | pieces[~keep].any(axis=0)
    pieces, sources = pieces[keep], [s for s, k in zip(sources, keep) if k]
    order = _priority(pieces, sources)
    pieces, sources = pieces[order], [sources[i] for i in order]
    keep = mask_ops.overlap_filter(pieces, settings.covered_overlap)
    pieces, sources = pieces[keep], [s for s, k in zip(sources, keep) if k]
    instances, kept = _visible_pieces(pieces, shape, settings)
    instances = mask_ops.fill_gaps(instances, background, mask_ops.scaled_length(shape, settings.fill_distance, settings))
    return ImageComponents(image_key, instances, background, tuple(sources[i] for i in kept))


def _box_masks(
    image: np.ndarray, image_key: str, detector: BoxDetector | None, segmenter: Segmenter,
    tags: Sequence[str], background_tags: Sequence[str],
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``(object masks M_G, their sources, background union)`` from the detector's boxes."""
    shape = image.shape[:2]
    empty = np.zeros((0, *shape), bool)
    if detector is None:
        return empty, [], np.zeros(shape, bool)
    boxes: list[Box] = list(detector.detect(image, image_key, list(tags), list(background_tags)))
    if not boxes:
        return empty, [], np.zeros(shape, bool)
    masks = np.asarray(segmenter.segment_boxes(image, boxes), bool).reshape(len(boxes), *shape)
    is_background = np.array([b.background or b.tag in background_tags for b in boxes], bool)
    background = masks[is_background].any(axis=0) if is_background.any() else np.zeros(shape, bool)
    sources = [f"box:{b.tag}" for b, bg in zip(boxes, is_background) if not bg]
    return masks[~is_background], sources, background


def _priority(pieces: np.ndarray, sources: list[str]) -> np.ndarray:
    """Box-prompted pieces first (they carry a prompt's meaning), then the automatic ones; each
    group small to large, so a mask that merely merges parts already kept is the one dropped."""
    by_area = mask_ops.order_by_area(pieces)
    boxed = [i for i in by_area if sources[i] != "auto"]
    automatic = [i for i in by_area if sources[i] == "auto"]
    return np.asarray(boxed + automatic, dtype=np.int64)


def _visible_pieces(pieces: np.ndarray, shape: tuple[int, int], settings: MaskSettings) -> tuple[np.ndarray, list[int]]:
    """Paint the kept pieces (smaller on top), split what stays visible of each into connected
    pieces, drop the tiny ones, and number them 1..K; also returns each one's index in ``pieces``."""
    painted = mask_ops.build_instances(pieces, shape)
    visible = np.stack([painted == i + 1 for i in range(len(pieces))]) if len(pieces) else pieces
    split, parent = mask_ops.split_components(visible, mask_ops.min_area_pixels(shape, settings))
    instances = mask_ops.build_instances(split, shape)  # disjoint pieces: order is id order
    return instances, [int(p) for p in parent]
