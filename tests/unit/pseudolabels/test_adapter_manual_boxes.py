"""Manual box detector: drawn boxes come back as drawn and propagate to look-alike objects."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from pipeline.pseudolabels.adapters.base import Box
from pipeline.pseudolabels.adapters.manual_boxes import (
    ManualBoxDetector,
    ManualBoxSettings,
    box_iou,
    region_features,
)

GREY, RED, BLUE, GREEN = (128, 128, 128), (220, 40, 40), (40, 60, 210), (40, 190, 60)


def disc(image: np.ndarray, cy: int, cx: int, r: int, colour) -> tuple[float, float, float, float]:
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    image[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = colour
    return (cx - r, cy - r, cx + r + 1, cy + r + 1)


def square(image: np.ndarray, y: int, x: int, side: int, colour) -> tuple[float, float, float, float]:
    image[y : y + side, x : x + side] = colour
    return (x, y, x + side, y + side)


def blank() -> np.ndarray:
    return np.full((96, 128, 3), GREY, np.uint8)


class ColourRegions:
    """Stand-in segmenter: non-grey connected regions (and the grey background) are the proposals;
    a box's mask is its non-grey pixels."""

    name = "stand-in"

    def segment_boxes(self, image, boxes):
        foreground = (np.abs(image.astype(int) - GREY).sum(-1) > 30)
        masks = np.zeros((len(boxes), *image.shape[:2]), bool)
        for i, b in enumerate(boxes):
            masks[i, int(b.y0) : int(b.y1), int(b.x0) : int(b.x1)] = True
        return masks & foreground

    def propose(self, image):
        foreground = (np.abs(image.astype(int) - GREY).sum(-1) > 30)
        labels, n = ndimage.label(foreground)
        return np.stack([~foreground] + [labels == k for k in range(1, n + 1)])


@pytest.fixture
def pair():
    """Reference image with one drawn pin (red disc) and cap (blue square); a second image with
    two pins and a cap elsewhere, plus a small red disc and a green square nobody drew."""
    reference, other = blank(), blank()
    pin = Box(*disc(reference, 25, 30, 9, RED), tag="Pin")
    drawn = {"ref": [pin, Box(*square(reference, 50, 80, 16, BLUE), tag="cap")]}
    truth = {
        "pin": [disc(other, 70, 20, 9, RED), disc(other, 20, 100, 9, RED)],
        "cap": [square(other, 10, 40, 16, BLUE)],
    }
    disc(other, 75, 75, 4, RED)  # same colour, much smaller: another part
    square(other, 60, 100, 14, GREEN)
    return reference, other, drawn, truth


def matched(boxes, truth_boxes) -> bool:
    """One box per true object, each true object covered by a box with IoU > 0.8."""
    best = [max((box_iou(b.as_array(), t) for b in boxes), default=0.0) for t in truth_boxes]
    return len(boxes) == len(truth_boxes) and min(best) > 0.8


def test_drawn_boxes_come_back_on_their_own_image(pair):
    reference, _, drawn, _ = pair
    detector = ManualBoxDetector(drawn, ColourRegions())
    boxes = detector.detect(reference, "ref", ["pin", "cap"], [])
    assert [(b.tag, b.as_array().tolist(), b.score, b.background) for b in boxes] == [
        ("pin", [21, 16, 40, 35], 1.0, False), ("cap", [80, 50, 96, 66], 1.0, False)]
    assert [b.tag for b in detector.detect(reference, "ref", ["cap"], ["pin"]) if b.background] == ["pin"]


def test_boxes_propagate_to_the_same_kind_of_objects_only(pair):
    reference, other, drawn, truth = pair
    detector = ManualBoxDetector(drawn, ColourRegions(), reference_images={"ref": reference})
    boxes = detector.detect(other, "other", ["pin", "cap"], [])
    pins, caps = [b for b in boxes if b.tag == "pin"], [b for b in boxes if b.tag == "cap"]
    assert len(boxes) == 3 and matched(pins, truth["pin"]) and matched(caps, truth["cap"])
    assert all(0.5 <= b.score <= 1 and not b.background for b in boxes)


def test_requested_tags_limits_and_background(pair):
    reference, other, drawn, truth = pair
    detector = ManualBoxDetector(drawn, ColourRegions(), settings=ManualBoxSettings(max_per_tag=1))
    detector.detect(reference, "ref", [], [])  # learns the examples from the reference itself
    boxes = detector.detect(other, "other", [], ["pin"])
    assert len(boxes) == 1 and boxes[0].tag == "pin" and boxes[0].background


def test_custom_embedding_is_used(pair):
    reference, other, drawn, truth = pair
    calls = []

    def mean_colour(image, mask):
        calls.append(mask.sum())
        return image[mask].mean(0)

    detector = ManualBoxDetector(drawn, ColourRegions(), embed=mean_colour, reference_images=lambda key: reference)
    boxes = detector.detect(other, "other", ["pin"], [])
    # Colour alone cannot tell the small red disc from the pins: size was what separated them.
    assert len(boxes) == 3 and {b.tag for b in boxes} == {"pin"} and len(calls) == 2 + 6


def test_region_features_describe_colour_size_and_shape():
    image = blank()
    small, big, bar = np.zeros((3, 96, 128), bool)
    small[10:20, 10:20] = big[40:60, 40:60] = bar[80:84, 10:50] = True
    f_small, f_big, f_bar = (region_features(image, m) for m in (small, big, bar))
    assert f_big[6] - f_small[6] == pytest.approx(0.5)  # twice the side: +0.5
    assert f_small[7] == pytest.approx(1.0) and abs(f_small[8]) < 1e-6  # full box, round
    assert f_bar[8] > 0.5  # elongated
    np.testing.assert_allclose(f_small[:3], 128 / 255, rtol=1e-6)


def test_errors_are_clear(pair):
    _, other, drawn, _ = pair
    with pytest.raises(ValueError, match="at least one box"):
        ManualBoxDetector({"ref": []}, ColourRegions())
    with pytest.raises(ValueError, match="reference_images"):
        ManualBoxDetector(drawn, ColourRegions()).detect(other, "other", ["pin"], [])


def test_works_with_the_classical_segmenter(pair):
    classic = pytest.importorskip("pipeline.pseudolabels.adapters.classic")
    reference, other, drawn, truth = pair
    detector = ManualBoxDetector(drawn, classic.ClassicSegmenter(), reference_images={"ref": reference})
    boxes = detector.detect(other, "other", ["pin", "cap"], [])
    assert matched([b for b in boxes if b.tag == "pin"], truth["pin"])
    assert matched([b for b in boxes if b.tag == "cap"], truth["cap"])
