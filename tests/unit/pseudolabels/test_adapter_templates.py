"""Template matching of drawn boxes: finds a moved part whatever its print colour, never a blob of
another colour, and lets the manual detector find a part the proposals cut into pieces."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from pipeline.pseudolabels.adapters import templates
from pipeline.pseudolabels.adapters.base import Box
from pipeline.pseudolabels.adapters.manual_boxes import ManualBoxDetector, ManualBoxSettings, box_iou

GREY = (128, 128, 128)


def banded_label(image: np.ndarray, y: int, x: int, colour) -> tuple[float, float, float, float]:
    """A 20×48 label: dark edges, two coloured bands and a paper band in the middle (a bottle label
    in miniature); returns its box."""
    ink = tuple(int(v * 0.4) for v in colour)
    image[y:y + 20, x:x + 48] = ink
    image[y + 2:y + 18, x + 2:x + 46] = colour
    image[y + 7:y + 13, x + 2:x + 46] = (235, 230, 215)
    return (x, y, x + 48, y + 20)


class ColourRegions:
    """Stand-in segmenter: each connected region of one colour is a proposal (so a label is three
    or more proposals, never one); a box's mask is its non-grey pixels."""

    name = "stand-in"

    def segment_boxes(self, image, boxes):
        foreground = np.abs(image.astype(int) - GREY).sum(-1) > 30
        masks = np.zeros((len(boxes), *image.shape[:2]), bool)
        for i, b in enumerate(boxes):
            masks[i, int(b.y0):int(b.y1), int(b.x0):int(b.x1)] = True
        return masks & foreground

    def propose(self, image):
        flat = image.astype(np.int64) @ np.array([1, 256, 65536])
        masks = []
        for value in np.unique(flat):
            parts, n = ndimage.label(flat == value)
            masks += [parts == k for k in range(1, n + 1)]
        return np.stack(masks)


def test_a_moved_part_is_found_where_it_is_in_another_colour():
    reference, other = np.full((96, 128, 3), GREY, np.uint8), np.full((96, 128, 3), GREY, np.uint8)
    drawn = banded_label(reference, 10, 10, (230, 120, 30))  # orange
    truth = banded_label(other, 60, 70, (120, 40, 160))  # purple, elsewhere
    template = templates.crop(templates.as_float(reference), drawn)
    [(score, found)] = templates.match_boxes(templates.as_float(other), template, 0.5, 5)
    assert found == truth and score > 0.8


def test_a_blob_of_another_colour_and_flat_or_oversized_templates_find_nothing():
    reference, other = np.full((64, 64, 3), GREY, np.uint8), np.full((64, 64, 3), GREY, np.uint8)
    reference[20:30, 20:30] = (220, 40, 40)  # red square on grey
    other[40:50, 5:15] = (40, 60, 210)  # blue square: as dark, but R goes the other way
    template = templates.crop(templates.as_float(reference), (16, 16, 34, 34))
    assert templates.match_boxes(templates.as_float(other), template, 0.5, 5) == []
    flat = templates.crop(templates.as_float(reference), (21, 21, 29, 29))  # all red: no pattern
    assert templates.match_boxes(templates.as_float(reference), flat, 0.5, 5) == []
    assert templates.match_boxes(templates.as_float(other)[:10, :10], template, 0.5, 5) == []


def test_several_copies_are_found_best_first_at_most_max_matches():
    image = np.full((80, 160, 3), GREY, np.uint8)
    boxes = [banded_label(image, 5, 5, (230, 120, 30)), banded_label(image, 50, 100, (200, 100, 30))]
    template = templates.crop(templates.as_float(image), boxes[0])
    found = templates.match_boxes(templates.as_float(image), template, 0.5, 5)
    assert [corners for _, corners in found] == boxes and found[0][0] == pytest.approx(1.0, abs=1e-4)
    assert len(templates.match_boxes(templates.as_float(image), template, 0.5, 1)) == 1


@pytest.mark.parametrize("template_score", [0.5, None])
def test_the_manual_detector_finds_a_part_the_proposals_cut_into_pieces(template_score):
    reference, other = np.full((96, 128, 3), GREY, np.uint8), np.full((96, 128, 3), GREY, np.uint8)
    drawn = {"ref": [Box(*banded_label(reference, 10, 10, (230, 120, 30)), tag="label")]}
    truth = banded_label(other, 60, 70, (120, 40, 160))
    detector = ManualBoxDetector(drawn, ColourRegions(), reference_images={"ref": reference},
                                 settings=ManualBoxSettings(template_score=template_score))
    boxes = detector.detect(other, "other", ["label"], [])
    if template_score is None:  # proposals alone: no single region looks like the whole label
        assert all(box_iou(b.as_array(), truth) < 0.8 for b in boxes)
    else:  # one box, the whole label: its bands' boxes lie inside it, so they are the same object
        assert [(b.tag, box_iou(b.as_array(), truth) > 0.95) for b in boxes] == [("label", True)]
        # As a background tag it is not looked for by its picture: a look-alike must stay a part.
        background = detector.detect(other, "other", [], ["label"])
        assert all(b.background and box_iou(b.as_array(), truth) < 0.8 for b in background)
