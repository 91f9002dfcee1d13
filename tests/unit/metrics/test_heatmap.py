import numpy as np

from pipeline.metrics.heatmap import (
    ABOVE_THRESHOLD_COLOUR,
    above_level_outline,
    colorize,
    draw_outline,
    mask_outline,
    overlay,
)


def test_colorize_is_dark_at_vmin_bright_at_vmax_and_clips():
    rgb = colorize(np.array([[0.0, 1.0, 2.0, -5.0]]), vmin=0.0, vmax=1.0)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 4, 3)
    assert rgb[0, 0].sum() < 20 and rgb[0, 1].sum() > 600
    assert (rgb[0, 2] == rgb[0, 1]).all() and (rgb[0, 3] == rgb[0, 0]).all()


def test_overlay_resizes_the_map_to_the_image_and_respects_opacity():
    image = np.full((40, 60, 3), 100, np.uint8)
    amap = np.zeros((8, 8), np.float32)
    assert overlay(image, amap, 0.0, 1.0, opacity=0.0).tolist() == image.tolist()
    out = overlay(image, amap, 0.0, 1.0, opacity=1.0)
    assert out.shape == image.shape and out.max() < 10


def test_outline_is_the_border_of_the_region():
    mask = np.zeros((7, 7), bool)
    mask[1:6, 1:6] = True
    edge = mask_outline(mask)
    assert edge.sum() == 16 and not edge[3, 3] and edge[1, 3]
    drawn = draw_outline(np.zeros((7, 7, 3), np.uint8), mask, width=1)
    assert (drawn[edge] == (0, 255, 255)).all() and drawn[~edge].max() == 0


def test_regions_above_the_level_are_outlined_at_the_image_resolution():
    amap = np.zeros((4, 4), np.float32)
    amap[1:3, 1:3] = 5.0  # a 2x2 hot block on a 4x4 map: pixels 8..23 of a 32 px image
    image = np.full((32, 32, 3), 100, np.uint8)
    out = above_level_outline(image, amap, level=2.0)
    green = (out == ABOVE_THRESHOLD_COLOUR).all(axis=2)
    assert green.any() and not green[:6].any() and not green[26:].any()  # only around the block
    assert not green[14:18, 14:18].any()  # an outline, not a fill
    np.testing.assert_array_equal(above_level_outline(image, amap, level=9.0), image)  # nothing above


def test_region_boxes_outline_each_box_in_white_and_leave_the_inside():
    from pipeline.metrics.heatmap import REGION_COLOUR, region_boxes

    image = np.zeros((40, 60, 3), np.uint8)
    assert region_boxes(image, ()) is image
    out = region_boxes(image, [(0.5, 0.0, 1.0, 0.5)], width=2)  # the bottom-left quarter
    white = np.all(out == REGION_COLOUR, axis=-1)
    assert white[20, 0:30].all() and white[39, 0:30].all() and white[20:40, 0].all() and white[20:40, 29].all()
    assert not white[23:37, 3:27].any()  # inside the box
    assert not white[:19].any() and not white[:, 31:].any()  # outside it
