"""Template matching for drawn boxes: where a reference box's picture reappears in another image.

A part the automatic proposals cut into pieces (a label printed in bands) never shows up as one
proposal, so matching proposals cannot find it; its picture still can be found. The score is the
normalised cross-correlation of each colour channel, averaged: it follows a part's pattern of
light and dark in every channel, so a part printed in another colour (another flavour of label)
or under other lighting still matches, while a dark blob of another colour does not. It finds
moved parts, not rotated or rescaled ones.
"""

from __future__ import annotations

import numpy as np

Corners = tuple[float, float, float, float]


def as_float(image: np.ndarray) -> np.ndarray:
    """A uint8 RGB image ``(H, W, 3)`` as float32 in [0, 1], the form the functions below take."""
    return image[..., :3].astype(np.float32) / 255.0


def crop(image: np.ndarray, corners: Corners) -> np.ndarray:
    """The part of ``image`` (``(H, W, C)``) inside the pixel box ``x0, y0, x1, y1``, clipped."""
    height, width = image.shape[:2]
    x0, y0 = max(int(np.floor(corners[0])), 0), max(int(np.floor(corners[1])), 0)
    x1, y1 = min(int(np.ceil(corners[2])), width), min(int(np.ceil(corners[3])), height)
    return image[y0:y1, x0:x1]


def match_boxes(image: np.ndarray, template: np.ndarray, min_score: float, max_matches: int) -> list[tuple[float, Corners]]:
    """``(score, box)`` of the best places where ``template`` matches ``image``, best first.

    Both are float ``(H, W, 3)`` (``as_float``). Score: the channels' mean normalised
    cross-correlation over the channels where the template has contrast, in [-1, 1]; only peaks
    reaching ``min_score`` count, at least half a template apart. A flat template (nothing to
    match) or one larger than the image finds nothing."""
    from skimage.feature import match_template, peak_local_max  # lazy: scikit-image import

    height, width = template.shape[:2]
    # A channel without contrast in the template has no pattern to correlate (and divides by ~0).
    channels = [c for c in range(template.shape[2]) if template[..., c].std() >= 1e-3]
    if height < 3 or width < 3 or height > image.shape[0] or width > image.shape[1] or not channels:
        return []
    scores = np.mean([match_template(image[..., c], template[..., c]) for c in channels], axis=0)
    peaks = peak_local_max(scores, min_distance=max(1, min(height, width) // 2), threshold_abs=min_score,
                           num_peaks=max_matches, exclude_border=False)
    return [(float(scores[r, c]), (float(c), float(r), float(c + width), float(r + height))) for r, c in peaks]
