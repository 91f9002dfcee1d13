"""Drawing helpers of the Masks page: canvas boxes back to image pixels, typed rectangles as masks."""

from __future__ import annotations

import numpy as np

from app.drawing import boxes_in_image, rectangle_mask
from pipeline.pseudolabels.adapters.base import Box


def test_canvas_boxes_become_image_boxes_inside_the_image():
    drawn = [
        {"label": "pin", "left": 10, "top": 20, "width": 30, "height": 40},
        {"label": "", "left": -8, "top": 90, "width": 20, "height": 30},  # dragged past two edges
        {"label": "cap", "left": 50, "top": 50, "width": 0, "height": 10},  # a click, not a box
    ]
    # The picture shows a 200 x 240 image at half size.
    assert boxes_in_image(drawn, 0.5, (200.0, 240.0), "divider") == [
        Box(20.0, 40.0, 80.0, 120.0, "pin"),
        Box(0.0, 180.0, 24.0, 240.0, "divider"),
    ]


def test_rectangle_mask():
    mask = rectangle_mask((5, 6, 3), (1, 2, 4, 5))
    assert mask.shape == (5, 6) and mask.sum() == 9 and mask[2:5, 1:4].all()
    assert not rectangle_mask((5, 6), (4, 2, 1, 5)).any()  # corners in the wrong order: empty
