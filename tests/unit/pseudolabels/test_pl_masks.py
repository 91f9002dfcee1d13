"""Mask filters of SPEC §5 step 2 on hand-built masks, the instance map and the border background."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.pseudolabels import masks as mask_ops
from pipeline.pseudolabels.settings import MaskSettings


def _mask(shape, rows, cols) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[rows, cols] = True
    return mask


def test_background_filter_drops_96_percent_inside_keeps_94():
    background = np.zeros((10, 100), bool)
    background[:, :96] = True
    inside_96 = _mask((10, 100), slice(0, 1), slice(0, 100))  # 96 of 100 pixels in the background
    background_b = np.zeros((10, 100), bool)
    background_b[:, :94] = True
    keep = mask_ops.background_filter(inside_96[None], background, 0.95)
    keep_b = mask_ops.background_filter(inside_96[None], background_b, 0.95)
    assert keep.tolist() == [False] and keep_b.tolist() == [True]
    assert mask_ops.background_filter(np.zeros((1, 10, 100), bool), background).tolist() == [False]


def test_split_components_drops_40_pixel_piece_and_keeps_order():
    mask = _mask((40, 40), slice(0, 5), slice(0, 8))  # 40 px: dropped at min_area 50
    mask |= _mask((40, 40), slice(20, 30), slice(20, 30))  # 100 px: kept
    other = _mask((40, 40), slice(10, 18), slice(0, 8))  # 64 px: kept
    pieces, parent = mask_ops.split_components(np.stack([mask, other]), 50)
    assert parent.tolist() == [0, 1]
    assert [int(p.sum()) for p in pieces] == [100, 64]


def test_split_components_uses_eight_connectivity():
    diagonal = np.eye(60, dtype=bool)  # one part touching only at corners stays one piece
    pieces, _ = mask_ops.split_components(diagonal[None], 50)
    assert len(pieces) == 1 and pieces[0].sum() == 60


def test_min_area_scales_with_pixel_count():
    settings = MaskSettings(min_area=50, reference_side=256)
    assert mask_ops.min_area_pixels((256, 256), settings) == pytest.approx(50)
    assert mask_ops.min_area_pixels((512, 512), settings) == pytest.approx(200)
    assert mask_ops.min_area_pixels((128, 256), settings) == pytest.approx(25)


def test_overlap_filter_drops_mask_91_percent_covered():
    kept = _mask((10, 100), slice(0, 1), slice(0, 91))
    covered_91 = _mask((10, 100), slice(0, 1), slice(0, 100))
    covered_89 = _mask((10, 100), slice(1, 2), slice(0, 100)) | _mask((10, 100), slice(0, 1), slice(0, 89))
    keep = mask_ops.overlap_filter(np.stack([kept, covered_91]), 0.9)
    assert keep.tolist() == [True, False]
    assert mask_ops.overlap_filter(np.stack([covered_89]), 0.9, kept=kept).tolist() == [True]


def test_overlap_filter_union_of_several_kept_masks_counts():
    left = _mask((10, 10), slice(0, 10), slice(0, 5))
    right = _mask((10, 10), slice(0, 10), slice(5, 10))
    whole = np.ones((10, 10), bool)  # merges two parts already kept: dropped
    assert mask_ops.overlap_filter(np.stack([left, right, whole]), 0.9).tolist() == [True, True, False]


def test_size_filter_drops_supports():
    plate = _mask((10, 10), slice(0, 10), slice(0, 5))
    part = _mask((10, 10), slice(0, 2), slice(0, 2))
    assert mask_ops.size_filter(np.stack([plate, part]), 0.35).tolist() == [False, True]


def test_build_instances_puts_smaller_masks_on_top():
    big = _mask((10, 10), slice(0, 10), slice(0, 10))
    small = _mask((10, 10), slice(2, 4), slice(2, 4))
    instances = mask_ops.build_instances([big, small], (10, 10))
    assert instances.dtype == np.int32
    assert (instances[2:4, 2:4] == 2).all() and (instances == 1).sum() == 96
    # The order given is the id order, whatever the areas.
    swapped = mask_ops.build_instances([small, big], (10, 10))
    assert (swapped[2:4, 2:4] == 1).all() and (swapped == 2).sum() == 96
    assert mask_ops.build_instances([], (3, 4)).tolist() == np.zeros((3, 4), int).tolist()


def test_compact_instances_renumbers_and_drops_small():
    instances = np.zeros((10, 10), np.int32)
    instances[0:5, 0:5] = 3
    instances[6:7, 6:7] = 5
    out, kept = mask_ops.compact_instances(instances, min_area=1)
    assert kept.tolist() == [3] and set(np.unique(out)) == {0, 1}


def test_fill_gaps_joins_near_pixels_to_nearest_component_only():
    instances = np.zeros((20, 20), np.int32)
    instances[5:10, 5:10] = 1
    background = np.zeros((20, 20), bool)
    background[:, 15:] = True
    filled = mask_ops.fill_gaps(instances, background, max_distance=3)
    assert filled[4, 7] == 1 and filled[10, 11] == 1  # within 3 px
    assert filled[0, 0] == 0  # too far
    assert (filled[:, 15:] == 0).all()  # background never filled
    assert (mask_ops.fill_gaps(instances, background, 0) == instances).all()


def _scene(with_cable: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = np.zeros((64, 64, 3), np.float64)
    ramp = np.linspace(0.9, 1.1, 64)[None, :, None]
    image[:] = np.array([70, 110, 90]) * ramp  # green-grey backdrop with a lighting gradient
    part = _mask((64, 64), slice(20, 40), slice(20, 44))
    image[part] = (220, 220, 215)
    if with_cable:  # a blue cable from the part to the bottom border
        cable = _mask((64, 64), slice(40, 64), slice(30, 34))
        image[cable] = (40, 60, 200)
        part |= cable
    image += rng.normal(0, 2, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), part


@pytest.mark.parametrize("with_cable", [False, True])
def test_border_background_is_the_backdrop_not_what_touches_the_border(with_cable):
    image, part = _scene(with_cable)
    background = mask_ops.border_background(image, MaskSettings())
    assert background[~part].mean() > 0.97
    assert background[part].mean() < 0.03
