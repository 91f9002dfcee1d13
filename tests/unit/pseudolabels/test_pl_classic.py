"""The classical offline segmenter: proposals, edge-strip absorption, GrabCut in boxes, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.pseudolabels.adapters.base import Box
from pipeline.pseudolabels.adapters.classic import ClassicSegmenter, absorb_thin
from pipeline.pseudolabels.settings import ClassicSettings


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A grey backdrop with a yellow square and a blue disc, light noise: (image, square, disc)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :96]
    square = (yy >= 20) & (yy < 50) & (xx >= 15) & (xx < 45)
    disc = (yy - 65) ** 2 + (xx - 65) ** 2 < 14**2
    image = np.full((96, 96, 3), (90, 95, 100), np.float64)
    image[square] = (220, 190, 40)
    image[disc] = (40, 70, 200)
    image += rng.normal(0, 2, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), square, disc


def _best_iou(masks: np.ndarray, target: np.ndarray) -> float:
    inter = (masks & target[None]).reshape(len(masks), -1).sum(1)
    union = (masks | target[None]).reshape(len(masks), -1).sum(1)
    return float((inter / np.maximum(union, 1)).max())


@pytest.mark.parametrize("method", ["felzenszwalb", "slic", "both"])
def test_proposals_find_the_parts_and_are_deterministic(method):
    image, square, disc = _scene()
    segmenter = ClassicSegmenter(ClassicSettings(method=method, work_side=0, slic_segments=30))
    masks = segmenter.propose(image)
    assert masks.dtype == bool and masks.shape[1:] == (96, 96) and len(masks) >= 3
    if method != "slic":  # superpixels cut parts into pieces by design
        assert _best_iou(masks, square) > 0.85 and _best_iou(masks, disc) > 0.85
    np.testing.assert_array_equal(masks, ClassicSegmenter(segmenter.settings).propose(image))  # a fresh one


def test_the_last_images_proposals_are_reused_as_copies_and_a_new_image_gets_its_own():
    image, square, _ = _scene()
    segmenter = ClassicSegmenter(ClassicSettings(work_side=0))
    first = segmenter.propose(image)
    first[:] = False  # a caller changing its result must not change the next caller's
    np.testing.assert_array_equal(segmenter.propose(image), ClassicSegmenter(segmenter.settings).propose(image))
    moved = np.roll(image, 10, axis=1)
    np.testing.assert_array_equal(segmenter.propose(moved), ClassicSegmenter(segmenter.settings).propose(moved))
    assert _best_iou(segmenter.propose(moved), np.roll(square, 10, axis=1)) > 0.85


def test_proposals_at_another_resolution_map_back_to_the_image():
    image, square, _ = _scene()
    masks = ClassicSegmenter(ClassicSettings(work_side=48)).propose(image)
    assert masks.shape[1:] == (96, 96)
    assert _best_iou(masks, square) > 0.8


def test_absorb_thin_gives_edge_strips_to_a_neighbour():
    labels = np.zeros((20, 20), np.int64)
    labels[:, 10:] = 2
    labels[:, 9] = 1  # a one-pixel strip between two regions
    image = np.zeros((20, 20, 3), np.uint8)
    image[:, 9:] = 200  # the strip has the right-hand region's colour
    out = absorb_thin(labels, image, min_thickness=2.0)
    assert set(np.unique(out)) == {0, 2}
    assert (out[:, 9] == 2).all()
    assert (absorb_thin(labels, image, 0) == labels).all()


@pytest.mark.parametrize("backend", ["opencv", "skimage"])
def test_segment_boxes_separates_the_part_from_the_box_frame(backend):
    pytest.importorskip("cv2") if backend == "opencv" else None
    image, square, disc = _scene()
    boxes = [Box(10, 15, 50, 55, "square"), Box(48, 48, 83, 83, "disc"), Box(0, 0, 1, 1, "dot")]
    segmenter = ClassicSegmenter(ClassicSettings(grabcut_backend=backend))
    masks = segmenter.segment_boxes(image, boxes)
    assert masks.shape == (3, 96, 96) and masks.dtype == bool
    assert _best_iou(masks[:1], square) > 0.85 and _best_iou(masks[1:2], disc) > 0.8
    assert not masks[0][:, 60:].any()  # nothing outside its box
    np.testing.assert_array_equal(masks, segmenter.segment_boxes(image, boxes))
    assert segmenter.segment_boxes(image, []).shape == (0, 96, 96)


def test_invalid_settings_are_rejected():
    with pytest.raises(ValueError):
        ClassicSegmenter(ClassicSettings(method="watershed"))
    with pytest.raises(ValueError):
        ClassicSegmenter(ClassicSettings(grabcut_backend="magic"))


def _bar_image() -> np.ndarray:
    """A 7-px brass bar (5-px core, 1-px outline of a floor-leaning blend) on a pale floor."""
    image = np.full((30, 30, 3), 220, np.uint8)
    image[5:25, 11:18] = (205, 190, 160)
    image[6:24, 12:17] = (190, 140, 50)
    return image


def _bar_labels() -> np.ndarray:
    labels = np.zeros((30, 30), np.int64)
    labels[5:25, 11:18] = 2
    labels[6:24, 12:17] = 1
    return labels


def test_thickest_first_keeps_a_bar_that_simultaneous_merging_loses():
    image, labels = _bar_image(), _bar_labels()
    lost = absorb_thin(labels, image, min_thickness=2.5)  # outline -> floor, core -> outline
    assert set(np.unique(lost)) == {0}
    kept = absorb_thin(labels, image, min_thickness=2.5, order="thickest_first")
    assert len(np.unique(kept)) == 2 and (kept[5:25, 11:18] != 0).all()


def test_refined_proposals_are_deterministic_and_checked():
    image, _, _ = _scene()
    segmenter = ClassicSegmenter(ClassicSettings(work_side=0, absorb_order="thickest_first", refine_iterations=1))
    masks = segmenter.propose(image)
    np.testing.assert_array_equal(masks, segmenter.propose(image))
    assert (masks.sum(0) == 1).all()  # still one partition: every pixel in exactly one region
    with pytest.raises(ValueError):
        ClassicSegmenter(ClassicSettings(absorb_order="random"))
    with pytest.raises(ValueError):
        absorb_thin(np.zeros((4, 4), np.int64), np.zeros((4, 4, 3), np.uint8), 2.0, order="random")
