"""Pictures for the Masks and Clusters pages: colours, scaling for any image size, overlays."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.pseudolabels import render


def _scene(height: int = 600, width: int = 800) -> tuple[np.ndarray, np.ndarray]:
    """A grey image with two rectangular components (ids 1 and 2)."""
    image = np.full((height, width, 3), 100, np.uint8)
    instances = np.zeros((height, width), np.int32)
    instances[100:300, 100:300] = 1
    instances[350:500, 400:700] = 2
    return image, instances


def test_palette_is_distinct_and_stable():
    colours = render.palette(20)
    assert colours.shape == (21, 3) and colours[0].tolist() == [0, 0, 0]
    assert len({tuple(c) for c in colours[1:]}) == 20
    np.testing.assert_array_equal(render.palette(5), colours[:6])  # a cluster keeps its colour
    assert render.hex_colour(np.array([255, 16, 0])) == "#ff1000"


@pytest.mark.parametrize(("shape", "expected"), [
    ((3000, 5000), (614, 1024)),  # huge: shrunk to the display side
    ((128, 64), (512, 256)),  # tiny: enlarged so the numbers are readable
    ((600, 800), (600, 800)),  # in between: as is
])
def test_display_shape(shape, expected):
    assert render.display_shape(shape) == expected


def test_resize_nearest_keeps_ids():
    ids = np.array([[0, 1], [2, 3]])
    np.testing.assert_array_equal(render.resize_nearest(ids, (4, 4)), np.kron(ids, np.ones((2, 2), int)))
    assert set(np.unique(render.resize_nearest(np.arange(100).reshape(10, 10), (3, 3)))) <= set(range(100))


def test_component_overlay_colours_components_and_greys_rejected_ones():
    image, instances = _scene()
    picture = render.component_overlay(image, instances, rejected={2})
    assert picture.shape == image.shape and picture.dtype == np.uint8
    assert (picture[0:80, 0:80] == 100).all()  # background untouched
    corner_1, corner_2 = picture[105, 105], picture[355, 405]  # inside, away from the numbers
    assert corner_1.tolist() != [100, 100, 100]
    assert corner_2.tolist() == [114, 114, 114]  # half grey 128 over 100
    # The number is written at the component's centre: dark box and white text.
    centre = picture[190:210, 190:210]
    assert (centre == 255).any() and (centre == 0).any()


def test_overlays_of_a_huge_image_are_display_sized():
    image, instances = _scene(3000, 4000)
    assert render.component_overlay(image, instances).shape == (768, 1024, 3)
    labels = (instances > 0).astype(np.uint8) * 2
    assert render.label_map_overlay(image, labels, 2).shape == (768, 1024, 3)


def test_label_map_pictures():
    image, instances = _scene()
    labels = instances.astype(np.uint8)
    coloured = render.label_map_colours(labels, 2)
    colours = render.palette(2)
    np.testing.assert_array_equal(coloured, colours[labels])
    overlay = render.label_map_overlay(image, labels, 2)
    assert (overlay[labels == 0] == 100).all() and not (overlay[labels == 1] == 100).all()


def test_component_thumbnail_dims_the_surroundings():
    image, instances = _scene()
    image[instances == 0] = 200
    thumb = render.component_thumbnail(image, instances == 2, side=64)
    assert thumb.shape == (64, 64, 3)
    assert thumb[32, 32].tolist() == [100, 100, 100]  # the component itself
    assert thumb[2, 32].tolist() == [70, 70, 70]  # surroundings at 35%
    with pytest.raises(ValueError):
        render.component_thumbnail(image, np.zeros_like(instances, bool))
